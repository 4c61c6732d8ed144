/**
 * `tproxy drain` and `tproxy undrain`: take a gateway out of service on purpose, and back.
 *
 * Draining makes the daemon not ready (/readyz 503, `status --ready` 1), so whatever announces it
 * (a routing daemon's health check, a Kubernetes readiness probe) withdraws it. The listeners go on
 * accepting: behind ECMP the routers need a moment to converge, and a flow that still arrives
 * meanwhile is served, not refused. Flows in progress are never touched; they finish on their own.
 */
import { HELP_OPTION } from '../../core/cli-options.js';
import { requestDrain } from '../../daemon/operations.js';
import { readinessText } from '../../daemon/readiness.js';
import { DEFAULT_ADMIN_SOCKET } from '../../daemon/discover.js';
import { type Command, defineCommand } from '../io.js';
import { adminSocket } from './status.js';

const OPTIONS = [
  { name: 'socket', metavar: 'PATH', help: `the daemon's admin socket; without it, ${DEFAULT_ADMIN_SOCKET}, else the admin socket of the tproxy run daemon found in this network namespace` },
  { name: 'json', help: "the daemon's readiness after, as JSON" },
  HELP_OPTION,
] as const;

function drainCommandOf(on: boolean): Command {
  const name = on ? 'drain' : 'undrain';
  const synopsis = [`tproxy ${name} [--socket PATH] [--json]`];
  const description = on
    ? `Take a running daemon out of service on purpose: it reports not ready (/readyz answers 503,
tproxy status --ready exits 1) until tproxy undrain, so a routing daemon withdraws its route and
Kubernetes its endpoint. The listeners keep accepting (flows that still arrive while the routers
converge are served) and flows in progress are untouched: wait for them (tproxy status shows the
active flows), then stop the daemon. A drain lasts until undrain or the process ends; a reload
keeps it.
`
    : `Put a drained daemon back in service: it reports ready again when everything else holds
(tproxy status --ready says what does not).
`;
  return defineCommand({
    name,
    summary: on ? 'take a running daemon out of service (not ready; flows finish, new ones still served)' : 'put a drained daemon back in service',
    synopsis,
    description,
    options: OPTIONS,
    async run({ values }, io): Promise<number> {
      const where = await adminSocket(values.socket);
      const readiness = await requestDrain(where.path, on);
      io.out(values.json ? `${JSON.stringify({ adminSocket: where, ...readiness }, null, 2)}\n` : `${on ? 'drained' : 'undrained'} (admin socket ${where.path})\n${readinessText(readiness)}`);
      return 0;
    },
  });
}

export const drainCommand = drainCommandOf(true);
export const undrainCommand = drainCommandOf(false);
