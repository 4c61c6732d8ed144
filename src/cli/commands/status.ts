/** `tproxy status`: ask a running daemon over its admin socket. */
import { parseInteger } from '../../core/config/intercept.js';
import { TproxyError } from '../../core/errors.js';
import { DEFAULT_TOP_FLOWS } from '../../daemon/admin-protocol.js';
import { MAX_FLOWS_LIMIT } from '../../dataplane/tcp/flows.js';
import { fetchStatus } from '../../daemon/operations.js';
import type { CliIo, Command } from '../io.js';
import { renderStatus } from '../status-text.js';
import { parseCommandLine } from '../args.js';

export const DEFAULT_ADMIN_SOCKET = '/run/tproxy/admin.sock';

const USAGE = `Usage: tproxy status [--socket PATH] [--top N] [--json]

Show a running daemon (tproxy run --admin-socket PATH): its listeners, whether its kernel rules
are in place with their counters, its counters, and the busiest TCP flows in progress.

  --socket PATH  the daemon's admin socket, default ${DEFAULT_ADMIN_SOCKET}
  --top N        busiest flows to show, default ${DEFAULT_TOP_FLOWS} (0: none, at most ${MAX_FLOWS_LIMIT})
  --json         the daemon's answer as JSON
  --help         this help

The socket is owner-only (mode 0600): run as the daemon's user, or as root.
`;

export const statusCommand: Command = {
  name: 'status',
  summary: 'show listeners, rules, counters and busiest flows of a running daemon',
  usage: USAGE,
  async run(argv: string[], io: CliIo): Promise<number> {
    const { values } = parseCommandLine({
      args: argv,
      options: { socket: { type: 'string', default: DEFAULT_ADMIN_SOCKET }, top: { type: 'string', default: `${DEFAULT_TOP_FLOWS}` }, json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } },
      strict: true,
    });
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    const top = parseInteger('top', values.top, 0);
    if (top > MAX_FLOWS_LIMIT) throw new TproxyError('ERR_INVALID_ARGUMENT', `--top ${top}: at most ${MAX_FLOWS_LIMIT}`);
    const status = await fetchStatus(values.socket, top);
    io.out(values.json ? `${JSON.stringify(status, null, 2)}\n` : renderStatus(status, top));
    return 0;
  },
};
