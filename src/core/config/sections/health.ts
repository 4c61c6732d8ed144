/** `health:` what /readyz and `tproxy status --ready` judge besides rules, listeners and drain. */
import { type Infer, boolean, milliseconds, section } from '../schema.js';

export const HEALTH = section({
  help: 'Readiness (/readyz on the metrics endpoint, tproxy status --ready): a routing daemon or Kubernetes withdraws a gateway that is not ready.',
  fields: {
    rulesCheckMs: milliseconds({ min: 0, default: 2000, help: 'A read of the kernel rules serves readiness checks for this long (checks arriving meanwhile share it); 0: read at every check.' }),
    checkUpstreams: boolean({ default: false, help: 'Also require every socks5 / http outbound proxy to accept a TCP connection (tried at most once per rulesCheckMs).', flag: { name: 'ready-check-upstreams' } }),
    upstreamTimeoutMs: milliseconds({ min: 1, default: 1000, help: 'How long the upstream check waits for each proxy to accept.' }),
  },
});

export type HealthSettings = Infer<typeof HEALTH>;
