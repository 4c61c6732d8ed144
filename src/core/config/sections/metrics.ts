/** `metrics:` Prometheus metrics over HTTP (opt-in). */
import { LISTEN_ADDRESS_FORM, readListenAddress, type ListenAddress } from '../listen-address.js';
import { type Infer, optional, refused, section, text, type Refusal } from '../schema.js';

function listenAddress(t: string): ListenAddress | Refusal {
  const address = readListenAddress(t);
  if (!('why' in address)) return address;
  // Not even HOST:PORT: `allowed` says it all; otherwise say which part is wrong first.
  return address.why === 'not HOST:PORT' ? refused() : refused(`${address.why}; use ${LISTEN_ADDRESS_FORM}`);
}

export const METRICS = section({
  help: 'Prometheus metrics over HTTP (off unless listen is set).',
  fields: {
    listen: optional(
      text({
        type: 'HOST:PORT',
        allowed: 'HOST:PORT with an IPv4 address, [IPv6] or localhost, e.g. 127.0.0.1:9464 or [::1]:9464',
        example: '127.0.0.1:9464',
        help: 'Serve Prometheus metrics at http://HOST:PORT/metrics; absent: no metrics endpoint.',
        flag: { name: 'metrics-address', metavar: 'HOST:PORT' },
        parse: listenAddress,
      }),
    ),
  },
});

export type MetricsSettings = Infer<typeof METRICS>;
