/**
 * The differential runner: builds a scenario's world on a lab router (nft or iptables rules, ip
 * rules and routes, sysctls, sockets, connections), sends real packets from the client (or the
 * router itself), observes what the kernel did, reads the world back into the model and compares.
 *
 * Observed per probe (by its source port): which router socket received it (the socket agent),
 * whether it reached the router's input hook (a dynamic set at input priority 1000 records
 * sport . mark . dscp . ttl), whether it reached the server (the same set in the server's
 * prerouting: dscp and ttl as forwarded), and, for UDP-only scenarios, which rule counters moved.
 */
import { Lab, LAB_ADDRESSES } from '../../src/lab/topology.js';
import { JsonLines } from '../../src/lab/json-lines.js';
import { explainPacket, type Explanation } from '../../src/core/model/explain.js';
import { formatExplanation } from '../../src/core/model/format.js';
import { parseIp, sameIp } from '../../src/core/net/address.js';
import { DSCP_NAMES } from '../../src/core/net/dscp.js';
import { TCP_FLAGS, type Packet } from '../../src/core/model/packet.js';
import { worldFromSnapshot, type Snapshot } from '../../src/core/model/snapshot.js';
import { parseIptablesSave } from '../../src/core/model/iptables-save.js';
import { takeSnapshot } from '../../src/sys/snapshot.js';
import type { ProbeSpec, SocketSpec } from './model-agent.js';
import { fileURLToPath } from 'node:url';

export const MODEL_AGENT = fileURLToPath(new URL('./model-agent.js', import.meta.url));
const OBS = 'tpxobs';

export type Observed = 'delivered' | 'forwarded' | 'input-no-socket' | 'dropped';

export interface Probe extends ProbeSpec {
  /** Sent by a process on the router (local traffic) instead of the client. */
  readonly from?: 'client' | 'router';
  /** Data on a connection held open by the setup (same sport): a non-SYN packet of an established flow. */
  readonly data?: boolean;
  /** What the scenario is built to show; checked against the kernel so no scenario agrees vacuously. */
  readonly expect: Observed;
  /** For delivered: the id of the socket that must receive it. */
  readonly socket?: string;
}

export interface Scenario {
  readonly name: string;
  readonly nft?: string;
  readonly iptables?: { readonly ipv4?: string; readonly ipv6?: string };
  /** standard: fwmark 0x1 -> table 100 with local default routes (both families). */
  readonly routing?: 'standard' | 'no-rule' | 'no-route' | 'none';
  readonly ip?: readonly string[];
  readonly ip6?: readonly string[];
  readonly sysctls?: readonly string[];
  /** nft script for the client's own namespace (e.g. to hold back its resets). */
  readonly clientNft?: string;
  readonly sockets?: readonly SocketSpec[];
  readonly setup?: readonly ProbeSpec[];
  readonly probes: readonly Probe[];
}

export interface ProbeReport {
  readonly probe: Probe;
  readonly model: Explanation;
  readonly modelClass: Observed;
  readonly modelSocket?: string;
  readonly kernel: Observed;
  readonly kernelSocket?: string;
  readonly problems: string[];
}

interface Tuple {
  sport: number;
  mark: number;
  dscp: number;
  ttl: number;
}

// `ip6 dscp` as a dynamic set key reads 0 (nft 1.0.6 on Linux 6.18: the shifted 16-bit load), so
// IPv6 uses one set per DSCP value, selected by an `ip6 dscp N` match, which does read correctly.
const DSCP_VALUES = Array.from({ length: 64 }, (_, i) => i);
// The client's last datagram of a batch; seen in the router's first prerouting chain, it means the
// probes sent before it have been through the router (negative outcomes need no fixed wait).
const FENCE_PORT = 9;
const CLIENT_FENCE = 40999;
const ROUTER_FENCE = 40998;
const OBS_TABLE = (hook: 'input' | 'prerouting', priority: number, dropAfter: boolean): string => `
table inet ${OBS} {
  set s4 { typeof th sport . meta mark . ip dscp . ip ttl; flags dynamic; }
${DSCP_VALUES.map((d) => `  set s6d${d} { typeof th sport . meta mark . ip6 hoplimit; flags dynamic; }`).join('\n')}
  set fence { typeof udp sport; flags dynamic; }
  chain fence { type filter hook prerouting priority -1000; policy accept;
    udp dport ${FENCE_PORT} add @fence { udp sport }
  }
  chain obs { type filter hook ${hook} priority ${priority}; policy accept;
    meta l4proto { tcp, udp } meta nfproto ipv4 add @s4 { th sport . meta mark . ip dscp . ip ttl }
${DSCP_VALUES.map((d) => `    meta l4proto { tcp, udp } meta nfproto ipv6 ip6 dscp ${d} add @s6d${d} { th sport . meta mark . ip6 hoplimit }`).join('\n')}
  }
  ${dropAfter ? 'chain sink { type filter hook input priority 0; policy accept; meta l4proto { tcp, udp } th sport != 22 drop; }' : ''}
}
`;

function classify(e: Explanation): Observed {
  switch (e.outcome.kind) {
    case 'delivered':
      return 'delivered';
    case 'forwarded':
    case 'sent':
      return 'forwarded';
    case 'answered-by-time-wait':
      return 'input-no-socket';
    case 'dropped':
      return e.outcome.stage === 'socket' ? 'input-no-socket' : 'dropped';
  }
}

function withoutObserver(snapshot: Snapshot): Snapshot {
  const doc = snapshot.nft as { nftables?: Record<string, Record<string, unknown>>[] } | null;
  if (!doc?.nftables) return snapshot;
  const nftables = doc.nftables.filter((item) => {
    const body = Object.values(item)[0];
    return !(body && (body.table === OBS || (item.table !== undefined && body.name === OBS)));
  });
  return { ...snapshot, nft: { nftables } };
}

async function readTuples(lab: Lab, host: 'router' | 'server'): Promise<Tuple[]> {
  const out = await lab.run(host, ['nft', '-j', 'list', 'table', 'inet', OBS]);
  const doc = JSON.parse(out.stdout) as { nftables: Record<string, { name?: string; elem?: { concat: unknown[] }[] }>[] };
  const tuples: Tuple[] = [];
  for (const item of doc.nftables) {
    const v6 = /^s6d(\d+)$/.exec(item.set?.name ?? '');
    if (item.set?.name === 'fence') {
      for (const e of (item.set.elem ?? []) as unknown[]) tuples.push({ sport: Number(e), mark: -1, dscp: -1, ttl: -1 });
      continue;
    }
    for (const e of item.set?.elem ?? []) {
      if (v6) {
        const [sport, mark, ttl] = e.concat;
        tuples.push({ sport: Number(sport), mark: Number(mark), dscp: Number(v6[1]), ttl: Number(ttl) });
        continue;
      }
      const [sport, mark, dscp, ttl] = e.concat;
      const d = typeof dscp === 'string' ? (DSCP_NAMES[dscp] ?? Number(dscp)) : Number(dscp);
      tuples.push({ sport: Number(sport), mark: Number(mark), dscp: d, ttl: Number(ttl) });
    }
  }
  return tuples;
}

type Counters = Map<string, number>;

async function readCounters(lab: Lab): Promise<Counters> {
  const counters: Counters = new Map();
  const doc = JSON.parse((await lab.run('router', ['nft', '-j', 'list', 'ruleset'])).stdout) as { nftables: Record<string, Record<string, unknown>>[] };
  for (const item of doc.nftables) {
    const r = item.rule;
    // iptables-nft tables show up here too; their counters are read from iptables-save below.
    if (!r || r.table === OBS || (r.table === 'mangle' && (r.family === 'ip' || r.family === 'ip6'))) continue;
    for (const e of r.expr as Record<string, { packets?: number }>[]) if (e.counter?.packets !== undefined) counters.set(`${String(r.family)} ${String(r.table)} ${String(r.chain)} #${Number(r.handle)}`, e.counter.packets);
  }
  for (const [fam, bin] of [[4, 'iptables-save'], [6, 'ip6tables-save']] as const) {
    const out = await lab.run('router', [bin, '-c', '-t', 'mangle'], { check: false });
    const table = parseIptablesSave(out.stdout, fam);
    for (const chain of table?.chains ?? []) {
      chain.rules.forEach((rule, index) => {
        for (const e of rule.expressions) if (e.kind === 'counter') counters.set(`${fam === 4 ? 'ip' : 'ip6'} mangle ${chain.name} @${index}`, e.packets ?? 0);
      });
    }
  }
  return counters;
}

/**
 * Permanent neighbour entries on every link, both ways: IPv6 neighbour discovery packets cross
 * the router's prerouting hook (ARP does not) whenever an entry goes stale, which on a loaded
 * machine can land inside a scenario and move a counter of a rule that matches any packet
 * (`iifname != "to-client" counter`, `fib daddr type local counter`) that no probe moved.
 */
async function pinNeighbours(lab: Lab): Promise<void> {
  const mac = async (host: 'client' | 'router' | 'server', dev: string): Promise<string> => {
    const links = JSON.parse((await lab.run(host, ['ip', '-j', 'link', 'show', 'dev', dev])).stdout) as { address: string }[];
    return links[0]!.address;
  };
  const A = LAB_ADDRESSES;
  const [routerClient, routerServer, client, server] = await Promise.all([mac('router', 'to-client'), mac('router', 'to-server'), mac('client', 'eth0'), mac('server', 'eth0')]);
  const pin = (address: string, lladdr: string, dev: string): string => `neigh replace ${address} lladdr ${lladdr} dev ${dev} nud permanent`;
  const batch = (lines: string[]): string => lines.join('\n') + '\n';
  await lab.run('router', ['ip', '-batch', '-'], { input: batch([pin(A.client.ipv4, client, 'to-client'), pin(A.client.ipv6, client, 'to-client'), pin(A.server.ipv4, server, 'to-server'), pin(A.server.ipv6, server, 'to-server')]) });
  await lab.run('client', ['ip', '-batch', '-'], { input: batch([pin(A.routerClientSide.ipv4, routerClient, 'eth0'), pin(A.routerClientSide.ipv6, routerClient, 'eth0')]) });
  await lab.run('server', ['ip', '-batch', '-'], { input: batch([pin(A.routerServerSide.ipv4, routerServer, 'eth0'), pin(A.routerServerSide.ipv6, routerServer, 'eth0')]) });
}

export class DifferentialLab {
  private constructor(readonly lab: Lab) {}

  static async create(): Promise<DifferentialLab> {
    const lab = await Lab.create();
    try {
      await lab.run('server', ['nft', '-f', '-'], { input: OBS_TABLE('prerouting', -500, true) });
      await pinNeighbours(lab);
    } catch (error) {
      await lab.destroy();
      throw error;
    }
    return new DifferentialLab(lab);
  }

  destroy(): Promise<void> {
    return this.lab.destroy();
  }

  private async flushObservations(host: 'router' | 'server'): Promise<void> {
    const sets = ['s4', 'fence', ...DSCP_VALUES.map((d) => `s6d${d}`)];
    await this.lab.run(host, ['nft', '-f', '-'], { input: sets.map((s) => `flush set inet ${OBS} ${s}`).join('\n') + '\n' });
  }

  private async reset(s: Scenario): Promise<void> {
    const routing = s.routing ?? 'standard';
    const v4: string[] = ['rule flush', 'rule add pref 32766 lookup main', 'rule add pref 32767 lookup default', 'route flush table 100', 'route flush table 200'];
    const v6: string[] = ['rule flush', 'rule add pref 32766 lookup main', 'route flush table 100', 'route flush table 200'];
    if (routing === 'standard' || routing === 'no-route') {
      v4.push('rule add fwmark 0x1/0x1 lookup 100 pref 100');
      v6.push('rule add fwmark 0x1/0x1 lookup 100 pref 100');
    }
    if (routing === 'standard' || routing === 'no-rule') {
      v4.push('route add local 0.0.0.0/0 dev lo table 100');
      v6.push('route add local ::/0 dev lo table 100');
    }
    await this.lab.run('router', ['ip', '-4', '-batch', '-'], { input: [...v4, ...(s.ip ?? [])].join('\n') + '\n' });
    await this.lab.run('router', ['ip', '-6', '-batch', '-'], { input: [...v6, ...(s.ip6 ?? [])].join('\n') + '\n' });
    await this.lab.run('router', ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1', ...(s.sysctls ?? [])]);
    await this.lab.run('router', ['nft', '-f', '-'], { input: `flush ruleset\n${OBS_TABLE('input', 1000, false)}\n${s.nft ?? ''}\n` });
    if (s.iptables?.ipv4) await this.lab.run('router', ['iptables-restore', '--noflush'], { input: s.iptables.ipv4 });
    if (s.iptables?.ipv6) await this.lab.run('router', ['ip6tables-restore', '--noflush'], { input: s.iptables.ipv6 });
    await this.lab.run('client', ['nft', '-f', '-'], { input: `flush ruleset\n${s.clientNft ?? ''}\n` });
    await this.flushObservations('server');
  }

  private modelPacket(p: Probe): { packet: Packet; origin: 'wire' | 'local' } {
    const daddr = parseIp(p.daddr);
    const fam = daddr.family;
    const local = p.from === 'router';
    const saddr = parseIp(p.saddr ?? (local ? (fam === 4 ? LAB_ADDRESSES.routerServerSide.ipv4 : LAB_ADDRESSES.routerServerSide.ipv6) : fam === 4 ? LAB_ADDRESSES.client.ipv4 : LAB_ADDRESSES.client.ipv6));
    const flags = p.proto === 'udp' ? 0 : p.data ? TCP_FLAGS.ack! | TCP_FLAGS.psh! : TCP_FLAGS.syn!;
    const packet: Packet = {
      family: fam,
      l4proto: p.proto,
      saddr,
      daddr,
      sport: p.sport,
      dport: p.dport,
      tcpFlags: flags,
      ...(local ? {} : { iif: 'to-client' }),
      mark: 0,
      dscp: 0,
      ecn: 0,
      ttl: p.ttl ?? 64,
      ctState: p.data ? 'established' : 'new',
    };
    return { packet, origin: local ? 'local' : 'wire' };
  }

  /** Run one scenario; returns a report per probe (problems empty when the model agreed). */
  async run(s: Scenario): Promise<ProbeReport[]> {
    await this.reset(s);
    const spawned: { child: import('node:child_process').ChildProcess }[] = [];
    const kill = (): void => {
      for (const p of spawned) p.child.kill('SIGKILL');
    };
    try {
      const agent = this.lab.spawn('router', [process.execPath, MODEL_AGENT, 'sockets', JSON.stringify(s.sockets ?? [])]);
      spawned.push(agent);
      const events = new JsonLines<{ event: string; id?: string; sport?: number }>(agent.child.stdout!);
      await events.waitFor((l) => l.event === 'ready', 60_000, 'socket agent ready');
      let setupProc: { child: import('node:child_process').ChildProcess } | undefined;
      if (s.setup?.length) {
        setupProc = this.lab.spawn('client', [process.execPath, MODEL_AGENT, 'probe', JSON.stringify(s.setup)]);
        spawned.push(setupProc);
        const lines = new JsonLines<{ event: string; sport?: number; result?: string }>(setupProc.child.stdout!);
        for (const p of s.setup) {
          await lines.waitFor((l) => l.event === 'probe' && l.sport === p.sport, 5000, `setup connection from port ${p.sport}`);
          if (p.mode === 'time-wait') await lines.waitFor((l) => l.event === 'closed' && l.sport === p.sport, 5000, `setup connection ${p.sport} closed`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      const mark = events.items.length;
      await this.flushObservations('router');
      const snapshot = withoutObserver(await takeSnapshot(this.lab.runnerFor('router')));
      const world = worldFromSnapshot(snapshot);
      const predictions = s.probes.map((p) => {
        const { packet, origin } = this.modelPacket(p);
        return { p, packet, model: explainPacket(world, packet, { origin }) };
      });
      const compareCounters = s.probes.every((p) => p.proto === 'udp') && !s.setup?.length;
      const before = compareCounters ? await readCounters(this.lab) : undefined;
      const fromClient = s.probes.filter((p) => p.from !== 'router' && !p.data);
      const fromRouter = s.probes.filter((p) => p.from === 'router');
      // Data on held connections first, then the probes and a fence from each sender: the client's
      // reaches the router from outside, the router's own loops through lo into prerouting.
      if (s.probes.some((p) => p.data)) setupProc?.child.stdin?.write('data\n');
      spawned.push(this.lab.spawn('client', [process.execPath, MODEL_AGENT, 'probe', JSON.stringify(fromClient), `${LAB_ADDRESSES.routerClientSide.ipv4}:${FENCE_PORT}/${CLIENT_FENCE}`]));
      if (fromRouter.length) spawned.push(this.lab.spawn('router', [process.execPath, MODEL_AGENT, 'probe', JSON.stringify(fromRouter), `127.0.0.1:${FENCE_PORT}/${ROUTER_FENCE}`]));
      const fences = fromRouter.length ? [CLIENT_FENCE, ROUTER_FENCE] : [CLIENT_FENCE];
      // Wait for the fence (the probes went first; agents start slowly at nice 19 on a loaded
      // machine: a scenario took 54 s under a load average of 10, hence the long bound), then
      // for everything the model expects to be seen, at most 10 s more; then a short settle for
      // the agents to report. Polling is kept slow: these tests share two cores with the
      // data-plane load tests.
      const fenced = (tuples: Tuple[]): boolean => fences.every((f) => tuples.some((t) => t.sport === f && t.mark === -1));
      let routerTuples: Tuple[] = [];
      let serverTuples: Tuple[] = [];
      const fenceDeadline = Date.now() + 60_000;
      while (Date.now() < fenceDeadline && !fenced(routerTuples)) {
        await new Promise((r) => setTimeout(r, 250));
        routerTuples = await readTuples(this.lab, 'router');
      }
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const accepted = events.items.slice(mark);
        routerTuples = await readTuples(this.lab, 'router');
        serverTuples = await readTuples(this.lab, 'server');
        const seen = predictions.every(({ p, model }) => {
          const c = classify(model);
          if (c === 'delivered') return accepted.some((l) => l.sport === p.sport && (p.data ? l.event === 'data' : l.event !== 'data')) && routerTuples.some((t) => t.sport === p.sport);
          if (c === 'forwarded') return serverTuples.some((t) => t.sport === p.sport);
          if (c === 'input-no-socket') return routerTuples.some((t) => t.sport === p.sport);
          return true;
        });
        if (seen) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      await new Promise((r) => setTimeout(r, 250));
      // Events first, then the sets: a packet a socket received has been through the hooks before
      // the sets are read, so a late probe cannot look delivered yet unseen at the input hook.
      const newEvents = events.items.slice(mark);
      routerTuples = await readTuples(this.lab, 'router');
      serverTuples = await readTuples(this.lab, 'server');
      const fenceProblem = fenced(routerTuples) ? undefined : `the fence datagram (sent after the probes) never reached the router within 60 s: the probes may not all have been sent`;
      const after = compareCounters ? await readCounters(this.lab) : undefined;
      const reports = predictions.map(({ p, packet, model }) => {
        const problems: string[] = fenceProblem ? [fenceProblem] : [];
        const got = newEvents.find((l) => l.sport === p.sport && (l.event === 'accept' || l.event === 'datagram' || l.event === 'data') && (p.data ? l.event === 'data' : l.event !== 'data'));
        const kernel: Observed = got ? 'delivered' : serverTuples.some((t) => t.sport === p.sport) ? 'forwarded' : routerTuples.some((t) => t.sport === p.sport) ? 'input-no-socket' : 'dropped';
        const modelClass = classify(model);
        if (kernel !== p.expect) problems.push(`scenario expects ${p.expect} but the kernel shows ${kernel}`);
        if (kernel !== modelClass) problems.push(`kernel: ${kernel}, model: ${modelClass}`);
        let modelSocket: string | undefined;
        if (modelClass === 'delivered' && model.socket) {
          const sk = model.socket;
          const spec = (s.sockets ?? []).find((x) => x.proto === sk.l4proto && x.port === sk.local.port && sameIp(parseIp(x.address), sk.local.addr));
          modelSocket = spec?.id ?? (sk.state === 'established' ? 'established' : `unknown ${sk.local.port}`);
          if (got && spec && got.id !== spec.id) problems.push(`kernel delivered to socket ${got.id ?? '?'}, model to ${spec.id}`);
          if (p.socket && got && got.id !== p.socket) problems.push(`scenario expects socket ${p.socket}, kernel used ${got.id ?? '?'}`);
        }
        const fam = packet.family;
        if (kernel === 'delivered' && modelClass === 'delivered') {
          const mine = routerTuples.filter((t) => t.sport === p.sport);
          const want = { mark: model.packet.mark, dscp: model.packet.dscp, ttl: model.packet.ttl };
          if (!mine.some((t) => t.mark === want.mark && t.dscp === want.dscp && t.ttl === want.ttl)) problems.push(`at the router's input the kernel saw ${JSON.stringify(mine)}, the model predicts ${JSON.stringify(want)} (IPv${fam})`);
        }
        if (kernel === 'forwarded' && modelClass === 'forwarded') {
          const mine = serverTuples.filter((t) => t.sport === p.sport);
          const want = { dscp: model.packet.dscp, ttl: model.packet.ttl };
          if (!mine.some((t) => t.dscp === want.dscp && t.ttl === want.ttl)) problems.push(`at the server the kernel saw ${JSON.stringify(mine)}, the model predicts ${JSON.stringify(want)}`);
        }
        return { probe: p, model, modelClass, ...(modelSocket ? { modelSocket } : {}), kernel, ...(got?.id ? { kernelSocket: got.id } : {}), problems };
      });
      if (before && after) {
        const predicted = new Set(predictions.flatMap(({ model }) => model.counted.map((r) => `${r.chain} ${r.handle !== undefined ? `#${r.handle}` : `@${r.index}`}`)));
        for (const [key, value] of after) {
          const moved = value > (before.get(key) ?? 0);
          if (moved !== predicted.has(key)) reports[0]?.problems.push(`counter of ${key}: kernel ${moved ? 'moved' : 'did not move'}, model ${predicted.has(key) ? 'predicts it moves' : 'predicts no change'}`);
        }
      }
      for (const r of reports) if (r.problems.length) r.problems.push(`model trace:\n${formatExplanation(predictions.find((x) => x.p === r.probe)!.packet, r.model)}`);
      return reports;
    } finally {
      kill();
      await Promise.all(spawned.map((p) => new Promise((r) => (p.child.exitCode !== null || p.child.signalCode !== null ? r(undefined) : p.child.once('exit', r)))));
    }
  }
}
