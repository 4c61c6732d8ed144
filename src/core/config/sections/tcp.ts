/** `tcp:` how TCP is relayed, for every listener. */
import { type Infer, oneOf, refused, section, type ValueSetting } from '../schema.js';

export const TCP_ENGINE_CHOICES = ['splice', 'stream', 'uring'] as const;

const workers: ValueSetting<number | 'auto'> = {
  kind: 'value',
  type: 'integer | auto',
  allowed: 'auto or an integer of at least 0',
  default: 'auto',
  help: 'TCP worker processes with SO_REUSEPORT listeners (auto: one per core but one, at least one; 0: TCP in the main process).',
  flag: { name: 'workers', metavar: 'N', toRaw: (t) => (/^\d+$/.test(t) ? Number(t) : t) },
  parse: (raw) => (raw === 'auto' || (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 && raw <= 1024) ? raw : refused()),
};

export const TCP = section({
  help: 'How TCP flows are relayed.',
  fields: {
    workers,
    engine: oneOf(TCP_ENGINE_CHOICES, { default: 'splice', help: 'splice: bytes move kernel to kernel; stream: Node streams; uring: io_uring (prototype: falls back to splice where io_uring is refused).', flag: { name: 'tcp-engine', metavar: 'ENGINE' } }),
  },
});

export type TcpSettings = Infer<typeof TCP>;
