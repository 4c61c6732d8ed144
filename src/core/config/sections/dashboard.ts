/** `dashboard:` the live dashboard (a page and its JSON API) on the metrics HTTP address (opt-in). */
import { boolean, type Infer, optional, refused, section, text } from '../schema.js';

/** Where the dashboard is served when it is enabled and metrics.listen is not set: loopback only. */
export const DASHBOARD_DEFAULT_LISTEN = { host: '127.0.0.1', port: 9464 } as const;

/** Shorter tokens are guessable by a page that keeps trying. */
const MIN_TOKEN_LENGTH = 16;

export const DASHBOARD = section({
  help: 'The live dashboard in the browser and its JSON API (docs/dashboard.md); off unless enabled.',
  fields: {
    enabled: boolean({ default: false, help: `Serve the dashboard at / and its API at /api/ on metrics.listen (without it: ${DASHBOARD_DEFAULT_LISTEN.host}:${DASHBOARD_DEFAULT_LISTEN.port}); turns on per-flow events (the flow table is fed by them).` }),
    token: optional(
      text({
        type: 'secret',
        allowed: `at least ${MIN_TOKEN_LENGTH} characters of A-Z a-z 0-9 - _ . ~ (e.g. from openssl rand -hex 16)`,
        example: 'b3f0c1d2e4a5968778695a4b3c2d1e0f',
        shown: () => '(secret)',
        help: 'Allows the actions (close a flow, reload) to requests that carry it in the X-Tproxy-Token header; absent: the dashboard is read-only.',
        parse: (t) => (t.length >= MIN_TOKEN_LENGTH && /^[A-Za-z0-9._~-]+$/.test(t) ? t : refused()),
      }),
    ),
  },
});

export type DashboardSettings = Infer<typeof DASHBOARD>;
