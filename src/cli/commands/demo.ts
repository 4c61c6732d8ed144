/** `tproxy demo`: the classic TPROXY relay end to end in network namespaces. */
import { HELP_OPTION } from '../../core/cli-options.js';
import { parseFamily, parsePortOption } from '../../core/config/intercept.js';
import { TproxyError } from '../../core/errors.js';
import type { Transport } from '../../core/net/constants.js';
import { runDemo } from '../../demo/run-demo.js';
import { runGatewaysDemo } from '../../demo/gateways-demo.js';
import type { GatewayLab } from '../../lab/gateways.js';
import { parseInteger } from '../../core/config/intercept.js';
import type { Lab } from '../../lab/topology.js';
import { type CliIo, defineCommand } from '../io.js';

const OPTIONS = [
  { name: 'upstream', metavar: 'MODE', choices: ['direct', 'transparent'], default: 'transparent', help: 'the server sees the router (direct) or the client (transparent, the classic relay)' },
  { name: 'listen', metavar: 'PORT', default: '8000', help: 'proxy port on the router' },
  { name: 'family', metavar: 'FAMILY', choices: ['4', '6', 'both'], default: 'both', help: 'IPv4, IPv6 or both' },
  { name: 'transport', metavar: 'PROTO', choices: ['tcp', 'udp', 'both'], default: 'both', help: 'TCP, UDP or both' },
  { name: 'gateways', metavar: 'N', help: 'instead: N tproxy gateways (2 to 8) behind an ECMP edge, announced by BIRD while /readyz is good; kills one and shows the others taking every new flow (needs bird2)' },
  { name: 'json', help: 'print the result as JSON at the end' },
  HELP_OPTION,
] as const;

const SYNOPSIS = ['tproxy demo [options]', 'tproxy demo --gateways N [--json]'];

const DESCRIPTION = `Reproduce the classic TPROXY relay in three network namespaces (client, router, server): intercept
TCP and UDP to port 80 on the router with a mangle-priority tproxy rule, deliver it to the proxy's
IP_TRANSPARENT sockets through fwmark policy routing, relay it to the server and back, and prove
every step. Needs root. Leaves nothing behind.

With --gateways N: clients behind an edge router, N gateway namespaces each running tproxy and
BIRD (BGP with BFD to the edge; each announces the intercepted prefix while its /readyz is good),
a server behind them. The edge installs one ECMP route with per-flow L4 hashing. The demo shows
flows spread over the gateways, kills gateway 1's proxy, and shows the route withdrawn and every
new flow on the survivors, whose flows in progress go on (see docs/gateways.md).
`;

export const demoCommand = defineCommand({
  name: 'demo',
  summary: 'run the classic TPROXY relay end to end in network namespaces',
  synopsis: SYNOPSIS,
  description: DESCRIPTION,
  options: OPTIONS,
  async run({ values }, io): Promise<number> {
    if (values.gateways !== undefined) return runGateways(parseInteger('gateways', values.gateways, 2), values.json === true, io);
    const upstream = values.upstream;
    if (upstream !== 'direct' && upstream !== 'transparent') throw new TproxyError('ERR_INVALID_ARGUMENT', `--upstream ${upstream}: use direct or transparent`);
    const transports: Transport[] = values.transport === 'both' ? ['tcp', 'udp'] : values.transport === 'tcp' || values.transport === 'udp' ? [values.transport] : [];
    if (transports.length === 0) throw new TproxyError('ERR_INVALID_ARGUMENT', `--transport ${values.transport}: use tcp, udp or both`);
    const result = await removedOnInterrupt(io, (onLab) =>
      runDemo({
        upstream,
        listenPort: parsePortOption('listen', values.listen),
        families: parseFamily(values.family),
        transports,
        report: (line) => (values.json ? io.err : io.out)(`${line}\n`),
        onLab,
      }),
    );
    if (values.json) io.out(`${JSON.stringify({ ok: true, ...result }, null, 2)}\n`);
    else io.out(`demo passed: ${result.flows.length} flows intercepted, relayed and answered from their original destination\n`);
    return 0;
  },
});

async function runGateways(gateways: number, json: boolean, io: CliIo): Promise<number> {
  const result = await removedOnInterrupt(io, (onLab) => runGatewaysDemo(gateways, (line) => (json ? io.err : io.out)(`${line}\n`), onLab));
  if (json) io.out(`${JSON.stringify({ ok: true, ...result }, null, 2)}\n`);
  const ok = result.held.broken === (result.spread.gw1 ?? 0) && result.after.gw1 === undefined;
  if (!json) io.out(ok ? `demo passed: gw1 withdrawn after ${result.withdrawnMs} ms; new flows avoid it; only its own flows broke\n` : 'demo FAILED: see above\n');
  return ok ? 0 : 1;
}

/**
 * Run a demo whose namespaces SIGINT / SIGTERM remove (exit 130) until it returns: `onLab` hands
 * over the lab as soon as it exists.
 */
async function removedOnInterrupt<T>(io: CliIo, demo: (onLab: (lab: Lab | GatewayLab) => void) => Promise<T>): Promise<T> {
  let lab: Lab | GatewayLab | undefined;
  const interrupt = (): void => {
    io.err('\ninterrupted: removing the namespaces\n');
    lab?.destroySync();
    process.exit(130);
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    return await demo((l) => (lab = l));
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
  }
}
