/** `tproxy status`: ask a running daemon over its admin socket. */
import { HELP_OPTION } from '../../core/cli-options.js';
import { parseInteger } from '../../core/config/intercept.js';
import { TproxyError } from '../../core/errors.js';
import { DEFAULT_TOP_FLOWS } from '../../daemon/admin-protocol.js';
import { MAX_FLOWS_LIMIT } from '../../dataplane/tcp/flows.js';
import { fetchReadiness, fetchStatus } from '../../daemon/operations.js';
import { readinessText } from '../../daemon/readiness.js';
import { DEFAULT_ADMIN_SOCKET, discoverDaemon } from '../../daemon/discover.js';
import { ProcessRunner } from '../../sys/exec.js';
import { defineCommand } from '../io.js';
import { renderStatus } from '../status-text.js';


const OPTIONS = [
  { name: 'socket', metavar: 'PATH', help: `the daemon's admin socket; without it, ${DEFAULT_ADMIN_SOCKET}, else the admin socket of the tproxy run daemon found in this network namespace` },
  { name: 'top', metavar: 'N', default: `${DEFAULT_TOP_FLOWS}`, help: `busiest flows to show; 0: none, at most ${MAX_FLOWS_LIMIT}` },
  { name: 'json', help: "the daemon's answer as JSON" },
  { name: 'ready', help: 'only whether the daemon is ready for new flows (what /readyz says), with the reasons; exit 0 ready, 1 not ready, 2 cannot ask' },
  HELP_OPTION,
] as const;

const SYNOPSIS = ['tproxy status [--socket PATH] [--top N] [--json]', 'tproxy status --ready [--socket PATH] [--json]'];

const DESCRIPTION = `Show a running daemon (tproxy run --admin-socket PATH): its listeners, whether its kernel rules
are in place with their counters, its counters, and the busiest TCP flows in progress.

With --ready, for scripts and health checkers: ready means running, not drained (tproxy drain),
the kernel rules in place as applied, every listener accepting (TCP workers, UDP relay loop) and,
with health.checkUpstreams, every upstream proxy reachable. Exit status 0 ready, 1 not ready (the
reasons on stdout), 2 the daemon could not be asked (no socket, no answer, not allowed).

The socket is owner-only (mode 0600): run as the daemon's user, or as root.
`;

/** The socket given; else the default one when a daemon answers there; else the one found in this network namespace. */
export async function adminSocket(given: string | undefined): Promise<{ path: string; how: string }> {
  if (given !== undefined) return { path: given, how: 'given' };
  const found = await discoverDaemon(new ProcessRunner());
  if (found) return { path: found.socket, how: found.socket === DEFAULT_ADMIN_SOCKET ? 'the default' : `found: tproxy run pid ${found.config.pid} in this network namespace` };
  return { path: DEFAULT_ADMIN_SOCKET, how: 'the default' };
}

export const statusCommand = defineCommand({
  name: 'status',
  summary: 'show listeners, rules, counters and busiest flows of a running daemon',
  synopsis: SYNOPSIS,
  description: DESCRIPTION,
  options: OPTIONS,
  async run({ values }, io): Promise<number> {
    if (values.ready) {
      let where: { path: string; how: string };
      let readiness;
      try {
        where = await adminSocket(values.socket);
        readiness = await fetchReadiness(where.path);
      } catch (error) {
        io.err(`tproxy status --ready: cannot ask the daemon: ${(error as Error).message}\n`);
        return 2;
      }
      io.out(values.json ? `${JSON.stringify({ adminSocket: where, ...readiness }, null, 2)}\n` : readinessText(readiness));
      return readiness.ready ? 0 : 1;
    }
    const top = parseInteger('top', values.top, 0);
    if (top > MAX_FLOWS_LIMIT) throw new TproxyError('ERR_INVALID_ARGUMENT', `--top ${top}: at most ${MAX_FLOWS_LIMIT}`);
    const { path, how } = await adminSocket(values.socket);
    const status = await fetchStatus(path, top);
    const source = `admin socket: ${path} (${how})`;
    io.out(values.json ? `${JSON.stringify({ adminSocket: { path, how }, ...status }, null, 2)}\n` : `${source}\n${renderStatus(status, top)}`);
    return 0;
  },
});
