/** `tproxy explain PACKET`: what the kernel does with one packet, and why, from the live host or a snapshot. */
import { readFile } from 'node:fs/promises';
import { HELP_OPTION } from '../../core/cli-options.js';
import { TproxyError } from '../../core/errors.js';
import { checkExplainRequest, explainRequest, type ExplainRequest } from '../../core/model/explain-request.js';
import { PACKET_FORM } from '../../core/model/packet-text.js';
import { checkSnapshot, worldFromSnapshot, type Snapshot } from '../../core/model/snapshot.js';
import { describeRuleSources, explanationToJson, formatExplanation } from '../../core/model/format.js';
import { ProcessRunner, type CommandRunner } from '../../sys/exec.js';
import { takeSnapshot } from '../../sys/snapshot.js';
import { type CliIo, type Command, defineCommand } from '../io.js';
import { configFrom } from '../selection.js';
import net from 'node:net';
import { parseIp } from '../../core/net/address.js';
import { mmproxyReplyPath, replySummary } from '../../core/model/mmproxy-reply.js';
import { parseHostPort } from '../../core/config/sections/mmproxy.js';

const OPTIONS = [
  { name: 'snapshot', metavar: 'FILE', help: 'explain against a saved state (tproxy snapshot > FILE) instead of this host' },
  { name: 'config', metavar: 'FILE', help: "also the route and outbound the flow takes (tproxy run's configuration file): on the listener the packet reaches (its socket's port), else the one that intercepts its port, or --listener NAME" },
  { name: 'listener', metavar: 'NAME', help: 'the listener whose routes to follow (with --config)' },
  { name: 'sni', metavar: 'NAME', help: 'the name the client asks for in its TLS ClientHello, for name routes' },
  { name: 'host', metavar: 'NAME', help: 'the name the client asks for in its HTTP Host header, for name routes' },
  { name: 'mmproxy', metavar: 'NAME', help: "instead of PACKET, CLIENT (ADDR:PORT): the reply of mmproxy listener NAME's backend to that client, followed to the listener's connection (with --config)" },
  { name: 'json', help: 'print the explanation as JSON (outcome, socket, oif, packet, trace; route)' },
  HELP_OPTION,
] as const;

const SYNOPSIS = ['tproxy explain [--json] [--snapshot FILE] [--config FILE [--sni NAME | --host NAME] [--listener NAME]] PACKET', 'tproxy explain [--json] [--snapshot FILE] --config FILE --mmproxy NAME CLIENT'];

const DESCRIPTION = `Follows one packet through this host's netfilter hooks, policy routing and socket lookup, as the
kernel would (rules of nftables, iptables-nft and iptables-legacy, whoever wrote them; the first
line says which were read), and says where it ends: delivered to which socket, forwarded out of which
interface, or dropped and by what; with the packet as it leaves and every step on the way.

PACKET: ${PACKET_FORM}
  tcp 198.51.100.10:40000 -> 203.0.113.20:80 iif eth0 syn
  udp [2001:db8:1::10]:5353 -> [2001:db8:2::20]:53 iif eth0 mark 0x1
  tcp 192.0.2.1:40000 -> 203.0.113.20:443 local        (sent by a process on this host)

With --mmproxy NAME CLIENT: the first reply (SYN-ACK) of the backend of mmproxy listener NAME to
CLIENT (ADDR:PORT, the address a PROXY header names), followed back to the listener's connection
(bound transparently to CLIENT; assumed when no such flow exists now), and the ip rule and route
that bring it there: the loopback rule for a backend on loopback, the divert rule and fwmark rule
for one elsewhere. For a protocol: udp listener, the backend's reply datagram (from the backend to
CLIENT) followed to the listener's session socket (transparent, bound to CLIENT, connected to the
backend).
  tproxy explain --config tproxy.yaml --mmproxy web 198.51.100.10:40000
`;

async function stateOf(runner: CommandRunner, file: string | undefined): Promise<Snapshot> {
  if (file === undefined) return takeSnapshot(runner);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `cannot read snapshot ${file}: ${(error as Error).message}`, {}, { cause: error });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `snapshot ${file} is not JSON: ${(error as Error).message}`, {}, { cause: error });
  }
  return checkSnapshot(parsed);
}

/** `--mmproxy NAME CLIENT`: the backend's reply to CLIENT, followed to the listener's connection. */
async function explainMmproxyReply(io: CliIo, runner: CommandRunner, values: { mmproxy?: string; config?: string; snapshot?: string; json?: boolean }, positionals: readonly string[]): Promise<number> {
  if (values.config === undefined) throw new TproxyError('ERR_INVALID_ARGUMENT', '--mmproxy needs --config FILE (the listener and its backend are in it)');
  if (positionals.length !== 1) throw new TproxyError('ERR_INVALID_ARGUMENT', `--mmproxy ${values.mmproxy}: give the client as one ADDR:PORT (e.g. 198.51.100.10:40000 or [2001:db8::10]:40000)`);
  const config = await configFrom({ config: values.config });
  const listener = config.mmproxy.find((l) => l.name === values.mmproxy);
  if (!listener) throw new TproxyError('ERR_INVALID_ARGUMENT', `--mmproxy ${values.mmproxy}: no such mmproxy listener in ${values.config} (${config.mmproxy.map((l) => l.name).join(', ') || 'it has none'})`);
  let client: { address: string; port: number };
  try {
    client = parseHostPort(positionals[0]!);
  } catch {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `${JSON.stringify(positionals[0])} is not a client ADDR:PORT (e.g. 198.51.100.10:40000 or [2001:db8::10]:40000)`);
  }
  const family = net.isIPv4(client.address) ? 4 : 6;
  const backend = family === 4 ? listener.backend4 : listener.backend6;
  if (!backend) throw new TproxyError('ERR_INVALID_ARGUMENT', `mmproxy ${listener.name} has no backend${family}: an IPv${family} client reaches the destination its header names; explain that packet instead (tproxy explain ${listener.protocol} DEST -> ${positionals[0]} local, or iif IFACE)`);
  const snapshot = await stateOf(runner, values.snapshot);
  const world = worldFromSnapshot(snapshot);
  const path = mmproxyReplyPath(world, { transport: listener.protocol, client: { addr: parseIp(client.address), port: client.port }, backend: { addr: parseIp(backend.address), port: backend.port }, upstreamMark: listener.upstreamMark });
  const summary = replySummary(world, path);
  const source = `${values.snapshot !== undefined ? `state: snapshot ${values.snapshot}` : 'state: this host'}; rules read from ${describeRuleSources(world.ruleset)}`;
  if (values.json) io.out(`${JSON.stringify({ mmproxy: { listener: listener.name, place: path.place, reaches: path.reaches, assumedSocket: path.assumed, summary }, ...explanationToJson(path.explanation), source }, null, 2)}\n`);
  else io.out(`${source}\n${summary.join('\n')}\n${formatExplanation(path.reply, path.explanation)}`);
  for (const [what, reason] of Object.entries(snapshot.errors)) io.err(`tproxy explain: could not read ${what}: ${reason}\n`);
  return 0;
}

export function explainCommand(runner: CommandRunner = new ProcessRunner()): Command {
  return defineCommand({
    name: 'explain',
    summary: 'explain step by step what the kernel does with a packet and whether it reaches the proxy',
    synopsis: SYNOPSIS,
    description: DESCRIPTION,
    options: OPTIONS,
    operand: 'PACKET',
    operands: true,
    async run({ values, positionals }, io): Promise<number> {
      if (values.mmproxy !== undefined) return explainMmproxyReply(io, runner, values, positionals);
      if (positionals.length === 0) throw new TproxyError('ERR_INVALID_ARGUMENT', `tproxy explain needs a packet: ${PACKET_FORM}`);
      const request: ExplainRequest = { packet: positionals.join(' '), ...(values.sni !== undefined ? { sni: values.sni } : {}), ...(values.host !== undefined ? { host: values.host } : {}), ...(values.listener !== undefined ? { listener: values.listener } : {}) };
      // Refused before the host is read (explainRequest checks it again).
      checkExplainRequest(request, values.config !== undefined);
      const config = values.config === undefined ? undefined : await configFrom({ config: values.config });
      const snapshot = await stateOf(runner, values.snapshot);
      const answer = explainRequest(snapshot, values.snapshot !== undefined ? `state: snapshot ${values.snapshot}` : 'state: this host', request, config);
      if (values.json) io.out(`${JSON.stringify(answer.json, null, 2)}\n`);
      else io.out(answer.text);
      for (const [source, reason] of Object.entries(snapshot.errors)) io.err(`tproxy explain: could not read ${source}: ${reason}\n`);
      return 0;
    },
  });
}
