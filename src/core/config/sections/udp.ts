/** `udp:` how UDP is relayed, for every listener. */
import { oneOf, section, type Infer } from '../schema.js';

export const UDP_ENGINE_SETTING_CHOICES = ['epoll', 'uring'] as const;

export const UDP = section({
  help: 'How UDP datagrams are relayed.',
  fields: {
    engine: oneOf(UDP_ENGINE_SETTING_CHOICES, { default: 'epoll', help: 'epoll: epoll_wait with recvmmsg/sendmmsg; uring: io_uring (multishot recvmsg into provided buffers, sends queued, one system call per loop turn; falls back to epoll where io_uring is refused).', flag: { name: 'udp-engine', metavar: 'ENGINE' } }),
  },
});

export type UdpSettings = Infer<typeof UDP>;
