/** `tproxy status`: ask a running daemon over its admin socket. */
import { HELP_OPTION, parseCommandLine } from '../../core/cli-options.js';
import { parseInteger } from '../../core/config/intercept.js';
import { TproxyError } from '../../core/errors.js';
import { DEFAULT_TOP_FLOWS } from '../../daemon/admin-protocol.js';
import { MAX_FLOWS_LIMIT } from '../../dataplane/tcp/flows.js';
import { fetchStatus } from '../../daemon/operations.js';
import { type CliIo, type Command, usageText } from '../io.js';
import { renderStatus } from '../status-text.js';

export const DEFAULT_ADMIN_SOCKET = '/run/tproxy/admin.sock';

const OPTIONS = [
  { name: 'socket', metavar: 'PATH', default: DEFAULT_ADMIN_SOCKET, help: "the daemon's admin socket" },
  { name: 'top', metavar: 'N', default: `${DEFAULT_TOP_FLOWS}`, help: `busiest flows to show; 0: none, at most ${MAX_FLOWS_LIMIT}` },
  { name: 'json', help: "the daemon's answer as JSON" },
  HELP_OPTION,
] as const;

const SYNOPSIS = ['tproxy status [--socket PATH] [--top N] [--json]'];

const DESCRIPTION = `Show a running daemon (tproxy run --admin-socket PATH): its listeners, whether its kernel rules
are in place with their counters, its counters, and the busiest TCP flows in progress.

The socket is owner-only (mode 0600): run as the daemon's user, or as root.
`;

const USAGE = usageText(SYNOPSIS, DESCRIPTION, OPTIONS);

export const statusCommand: Command = {
  name: 'status',
  summary: 'show listeners, rules, counters and busiest flows of a running daemon',
  usage: USAGE,
  synopsis: SYNOPSIS,
  description: DESCRIPTION,
  options: OPTIONS,
  async run(argv: string[], io: CliIo): Promise<number> {
    const { values } = parseCommandLine(argv, OPTIONS);
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
