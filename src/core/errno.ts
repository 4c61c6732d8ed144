/**
 * Linux errno numbers (x86_64 / generic) to names, and the advice we give for the ones a user of a
 * transparent proxy meets. Pure: no I/O.
 */

const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: 'EPERM', 2: 'ENOENT', 4: 'EINTR', 9: 'EBADF', 11: 'EAGAIN', 12: 'ENOMEM', 13: 'EACCES',
  14: 'EFAULT', 16: 'EBUSY', 19: 'ENODEV', 22: 'EINVAL', 23: 'ENFILE', 24: 'EMFILE', 28: 'ENOSPC',
  32: 'EPIPE', 90: 'EMSGSIZE', 92: 'ENOPROTOOPT', 93: 'EPROTONOSUPPORT', 95: 'EOPNOTSUPP',
  97: 'EAFNOSUPPORT', 98: 'EADDRINUSE', 99: 'EADDRNOTAVAIL', 100: 'ENETDOWN', 101: 'ENETUNREACH',
  103: 'ECONNABORTED', 104: 'ECONNRESET', 105: 'ENOBUFS', 106: 'EISCONN', 107: 'ENOTCONN',
  110: 'ETIMEDOUT', 111: 'ECONNREFUSED', 113: 'EHOSTUNREACH', 114: 'EALREADY', 115: 'EINPROGRESS',
};

export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `E${errno}`;
}

/** Options that need CAP_NET_ADMIN when set (man 7 ip, man 7 socket). */
const PRIVILEGED_OPTIONS = new Set(['IP_TRANSPARENT', 'IPV6_TRANSPARENT', 'SO_MARK']);

/**
 * A sentence telling the user what to do about `errno` from `call` (for example
 * `setsockopt(IP_TRANSPARENT)`), or the empty string when we have nothing better than strerror.
 */
export function errnoAdvice(call: string, errno: string): string {
  const option = /\((\w+)\)/.exec(call)?.[1] ?? '';
  switch (errno) {
    case 'EPERM':
    case 'EACCES':
      if (PRIVILEGED_OPTIONS.has(option)) {
        return `${option} needs CAP_NET_ADMIN (the kernel also accepts CAP_NET_RAW): run as root or grant the capability (setcap cap_net_admin+ep, or AmbientCapabilities=CAP_NET_ADMIN in systemd)`;
      }
      if (call.startsWith('bind')) return 'binding a port below 1024 needs CAP_NET_BIND_SERVICE, or choose a higher port';
      return 'operation not permitted: run as root or with CAP_NET_ADMIN';
    case 'EADDRINUSE':
      return 'the address and port are already in use by another socket: stop the other program or choose another port';
    case 'EADDRNOTAVAIL':
      return 'the address is not assigned to this host: use an address of this host, or enable IP_TRANSPARENT/IP_FREEBIND';
    case 'ENOPROTOOPT':
      return `the kernel does not support ${option || 'this socket option'}: enable it in the kernel (for TPROXY: CONFIG_NETFILTER_XT_TARGET_TPROXY / CONFIG_NFT_TPROXY)`;
    case 'EAFNOSUPPORT':
      return 'the address family is not supported: is IPv6 disabled on this host (net.ipv6.conf.all.disable_ipv6)?';
    case 'EMFILE':
    case 'ENFILE':
      return 'out of file descriptors: raise the limit (ulimit -n, LimitNOFILE=) or lower the connection cap';
    case 'ECONNREFUSED':
      return 'nothing listens on the destination port';
    case 'ENETUNREACH':
    case 'EHOSTUNREACH':
      return 'no route to the destination';
    default:
      return '';
  }
}
