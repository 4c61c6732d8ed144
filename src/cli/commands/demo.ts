/** `tproxy demo`: the classic TPROXY relay end to end in network namespaces. */
import { parseFamily, parsePortOption } from '../../core/config/intercept.js';
import { TproxyError } from '../../core/errors.js';
import type { Transport } from '../../core/net/constants.js';
import { runDemo } from '../../demo/run-demo.js';
import type { Lab } from '../../lab/topology.js';
import type { CliIo, Command } from '../io.js';
import { parseCommandLine } from '../args.js';

const USAGE = `Usage: tproxy demo [options]

Reproduce the classic TPROXY relay in three network namespaces (client, router, server): intercept
TCP and UDP to port 80 on the router with a mangle-priority tproxy rule, deliver it to the proxy's
IP_TRANSPARENT sockets through fwmark policy routing, relay it to the server and back, and prove
every step. Needs root. Leaves nothing behind.

  --upstream direct|transparent  the server sees the router (direct) or the client (transparent,
                         the classic relay; default)
  --listen PORT          proxy port on the router, default 8000
  --family 4|6|both      default both
  --transport tcp|udp|both  default both
  --json                 print the result as JSON at the end
  --help                 this help
`;

export const demoCommand: Command = {
  name: 'demo',
  summary: 'run the classic TPROXY relay end to end in network namespaces',
  usage: USAGE,
  async run(argv: string[], io: CliIo): Promise<number> {
    const { values } = parseCommandLine({
      args: argv,
      options: {
        upstream: { type: 'string', default: 'transparent' },
        listen: { type: 'string', default: '8000' },
        family: { type: 'string', default: 'both' },
        transport: { type: 'string', default: 'both' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    });
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    const upstream = values.upstream;
    if (upstream !== 'direct' && upstream !== 'transparent') throw new TproxyError('ERR_INVALID_ARGUMENT', `--upstream ${upstream}: use direct or transparent`);
    const transports: Transport[] = values.transport === 'both' ? ['tcp', 'udp'] : values.transport === 'tcp' || values.transport === 'udp' ? [values.transport] : [];
    if (transports.length === 0) throw new TproxyError('ERR_INVALID_ARGUMENT', `--transport ${values.transport}: use tcp, udp or both`);

    let lab: Lab | undefined;
    const interrupt = (): void => {
      io.err('\ninterrupted: removing the namespaces\n');
      lab?.destroySync();
      process.exit(130);
    };
    process.once('SIGINT', interrupt);
    process.once('SIGTERM', interrupt);
    try {
      const result = await runDemo({
        upstream,
        listenPort: parsePortOption('listen', values.listen),
        families: parseFamily(values.family),
        transports,
        report: (line) => (values.json ? io.err : io.out)(`${line}\n`),
        onLab: (l) => (lab = l),
      });
      if (values.json) io.out(`${JSON.stringify({ ok: true, ...result }, null, 2)}\n`);
      else io.out(`demo passed: ${result.flows.length} flows intercepted, relayed and answered from their original destination\n`);
      return 0;
    } finally {
      process.off('SIGINT', interrupt);
      process.off('SIGTERM', interrupt);
    }
  },
};
