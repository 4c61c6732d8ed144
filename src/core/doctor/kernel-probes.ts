/**
 * Kernel features doctor probes without changing the host: each rule is put in a throwaway table
 * and passed to `nft --check -f -`, which the kernel validates (loading modules as it would for a
 * real apply) and then discards. Pure data: src/sys runs them.
 */
export interface KernelProbe {
  readonly id: string;
  /** One rule of a prerouting filter chain at mangle priority in an inet table. */
  readonly rule: string;
  /** What it proves, and the module that provides it. */
  readonly what: string;
  readonly module: string;
}

export const KERNEL_PROBES: readonly KernelProbe[] = [
  { id: 'nft.tproxy.ipv4', rule: 'meta nfproto ipv4 meta l4proto tcp tproxy ip to :1', what: 'nftables tproxy for IPv4', module: 'nft_tproxy' },
  { id: 'nft.tproxy.ipv6', rule: 'meta nfproto ipv6 meta l4proto tcp tproxy ip6 to :1', what: 'nftables tproxy for IPv6', module: 'nft_tproxy' },
  { id: 'nft.socket', rule: 'socket transparent 1 socket wildcard 0 accept', what: 'nftables socket expression (divert of flows the proxy owns)', module: 'nft_socket' },
  { id: 'nft.fib', rule: 'fib daddr type local return', what: 'nftables fib expression (bypass of local destinations)', module: 'nft_fib_inet' },
];
