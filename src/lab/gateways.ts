/**
 * The multi-gateway lab: clients behind an edge router, N gateways running tproxy, a server
 * behind them; BIRD 2 on the edge and on each gateway. Each gateway announces the intercepted
 * prefix over BGP while its /readyz is good (an announcer puts the route in kernel table 200,
 * which the gateway's BIRD learns and exports; BFD watches the sessions); the edge installs the
 * routes as one ECMP route and hashes each flow on its ports (fib_multipath_hash_policy=1, set in
 * the edge's namespace only).
 *
 *   client 198.51.100.10 --- 198.51.100.1 edge (AS 65000)
 *                              192.0.2.{4g+1}/30 --- 192.0.2.{4g+2} gateway g (AS 65001, tproxy :8100)
 *                                                     192.0.2.{4g+33}/30 --- 192.0.2.{4g+34} server
 *   server: 203.0.113.20/32 on lo, port 80; the intercepted prefix is 203.0.113.0/24.
 *
 * Flows stay on the gateway they started on: the edge pins each connection to the next hop its
 * first packet took (conntrack mark set by the output interface, fwmark rules to one route table
 * per gateway), as stateful edges and L4 balancers do (resilient hashing, Maglev, Unimog). Without
 * it, withdrawing a gateway would re-hash its flows in progress onto the others, which have no
 * socket for them: a drain could not let them finish.
 *
 * Gateways connect upstream from their own address (upstream direct), so the server's replies go
 * back to the gateway that proxied the flow, and the server can tell which one it was. TEST-NET
 * addresses only; every namespace carries the per-run prefix; destroy() kills by pid and deletes
 * them all.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TproxyError } from '../core/errors.js';
import { NetnsRunner, ProcessRunner, runSync, type CommandResult } from '../sys/exec.js';
import { JsonLines } from './json-lines.js';
import { labPrefix } from './topology.js';

export const SERVICE = { address: '203.0.113.20', prefix: '203.0.113.0/24', port: 80 } as const;
export const CLIENT = { address: '198.51.100.10', gateway: '198.51.100.1' } as const;
const PROXY_PORT = 8100;
const METRICS = '127.0.0.1:9464';
const ANNOUNCE_TABLE = 200;
const LAB_SCRIPT = (name: string): string => fileURLToPath(new URL(`./${name}`, import.meta.url));

/** Addresses of gateway g (1-based). */
export function gatewayAddresses(g: number): { edgeSide: string; gatewaySide: string; toServer: string; serverSide: string } {
  const n = 4 * (g - 1);
  return { edgeSide: `192.0.2.${n + 1}`, gatewaySide: `192.0.2.${n + 2}`, toServer: `192.0.2.${n + 33}`, serverSide: `192.0.2.${n + 34}` };
}

interface Spawned {
  readonly child: ChildProcess;
  readonly exited: Promise<number>;
  readonly lines: JsonLines<Record<string, unknown>>;
  stderr: string;
}

export interface FlowReport {
  readonly via: Record<string, number>;
  readonly failed?: number;
  readonly ok?: number;
  readonly broken?: number;
  readonly brokenVia?: Record<string, number>;
}

export function edgeBirdConfig(gateways: number): string {
  const peers = Array.from({ length: gateways }, (_, i) => {
    const a = gatewayAddresses(i + 1);
    return `protocol bgp gw${i + 1} {\n  local ${a.edgeSide} as 65000;\n  neighbor ${a.gatewaySide} as 65001;\n  direct;\n  hold time 3;\n  connect retry time 1;\n  bfd on;\n  ipv4 { import all; export none; };\n}\n`;
  });
  return `router id 192.0.2.1;\nprotocol device { scan time 10; }\nprotocol bfd { interface "*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }\nprotocol kernel { merge paths yes; ipv4 { import none; export all; }; }\n${peers.join('')}`;
}

export function gatewayBirdConfig(g: number): string {
  const a = gatewayAddresses(g);
  return [
    `router id ${a.gatewaySide};`,
    'protocol device { scan time 10; }',
    'protocol bfd { interface "*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }',
    `# The announcer adds the route here while /readyz is good.\nprotocol kernel announce { kernel table ${ANNOUNCE_TABLE}; learn; scan time 1; ipv4 { import all; export none; }; }`,
    `protocol bgp edge {\n  local ${a.gatewaySide} as 65001;\n  neighbor ${a.edgeSide} as 65000;\n  direct;\n  hold time 3;\n  connect retry time 1;\n  bfd on;\n  ipv4 { import none; export where net = ${SERVICE.prefix}; next hop self; };\n}`,
    '',
  ].join('\n');
}

export class GatewayLab {
  readonly prefix = labPrefix();
  private readonly runner = new ProcessRunner();
  private readonly processes = new Set<Spawned>();
  private readonly proxies = new Map<number, Spawned>();
  private dir = '';
  private flows: Spawned | undefined;
  private created: string[] = [];
  private destroyed = false;

  private constructor(
    readonly gateways: number,
    /** The tproxy command (the package's bin/tproxy.js by default). */
    private readonly tproxy: string,
  ) {}

  /** Build and start everything; resolves once the edge has an ECMP route over every gateway. */
  static async create(gateways: number, options: { tproxy?: string; timeoutMs?: number } = {}): Promise<GatewayLab> {
    if (!Number.isInteger(gateways) || gateways < 2 || gateways > 8) throw new TproxyError('ERR_INVALID_ARGUMENT', `--gateways ${gateways}: use 2 to 8`);
    const timeoutMs = options.timeoutMs ?? 60_000;
    const lab = new GatewayLab(gateways, options.tproxy ?? fileURLToPath(new URL('../../../bin/tproxy.js', import.meta.url)));
    try {
      await lab.build();
      await lab.start(timeoutMs);
    } catch (error) {
      await lab.destroy();
      throw error;
    }
    return lab;
  }

  ns(host: string): string {
    return `${this.prefix}-${host}`;
  }

  run(host: string, argv: readonly string[], check = true): Promise<CommandResult> {
    return new NetnsRunner(this.ns(host), this.runner).run(argv, { check });
  }

  private spawn(host: string, argv: readonly string[]): Spawned {
    const child = spawn('ip', ['netns', 'exec', this.ns(host), ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
    const spawned: Spawned = {
      child,
      lines: new JsonLines(child.stdout),
      stderr: '',
      exited: new Promise<number>((resolve) => {
        child.on('exit', (code, signal) => resolve(code ?? (signal === 'SIGKILL' ? 137 : 143)));
        child.on('error', () => resolve(127));
      }),
    };
    child.stderr.on('data', (d: Buffer) => (spawned.stderr = (spawned.stderr + d.toString()).slice(-20_000)));
    this.processes.add(spawned);
    return spawned;
  }

  private async build(): Promise<void> {
    this.dir = await mkdtemp(path.join(os.tmpdir(), 'tproxy-gateways-'));
    const hosts = ['client', 'edge', 'server', ...Array.from({ length: this.gateways }, (_, i) => `gw${i + 1}`)];
    for (const host of hosts) {
      await this.runner.run(['ip', 'netns', 'add', this.ns(host)]);
      this.created.push(host);
    }
    const batch = (host: string, lines: string[]): Promise<CommandResult> => this.runner.run(['ip', '-n', this.ns(host), '-batch', '-'], { input: `${lines.join('\n')}\n` });
    const edge: string[] = ['link set lo up', `link add cl type veth peer name eth0 netns ${this.ns('client')}`, `addr add ${CLIENT.gateway}/24 dev cl`, 'link set cl up'];
    const server: string[] = ['link set lo up', `addr add ${SERVICE.address}/32 dev lo`];
    for (let g = 1; g <= this.gateways; g++) {
      const a = gatewayAddresses(g);
      const gw = this.ns(`gw${g}`);
      edge.push(`link add gw${g} type veth peer name edge netns ${gw}`, `addr add ${a.edgeSide}/30 dev gw${g}`, `link set gw${g} up`);
      server.push(`link add gw${g} type veth peer name srv netns ${gw}`, `addr add ${a.serverSide}/30 dev gw${g}`, `link set gw${g} up`);
    }
    await batch('edge', edge);
    await batch('server', server);
    await batch('client', ['link set lo up', `addr add ${CLIENT.address}/24 dev eth0`, 'link set eth0 up', `route add default via ${CLIENT.gateway}`]);
    for (let g = 1; g <= this.gateways; g++) {
      const a = gatewayAddresses(g);
      await batch(`gw${g}`, ['link set lo up', `addr add ${a.gatewaySide}/30 dev edge`, 'link set edge up', `addr add ${a.toServer}/30 dev srv`, 'link set srv up', `route add ${CLIENT.address.replace(/\.\d+$/, '.0')}/24 via ${a.edgeSide}`, `route add ${SERVICE.prefix} via ${a.serverSide}`]);
    }
    // Per-flow (L4) hashing over the ECMP next hops: in the edge's namespace only.
    await this.run('edge', ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv4.fib_multipath_hash_policy=1']);
    // Flow pinning on the edge: a connection keeps the gateway its first packet was routed to.
    const pins = Array.from({ length: this.gateways }, (_, i) => `    ct state new oifname "gw${i + 1}" ct mark set ${i + 1}`);
    await this.runner.run(['ip', 'netns', 'exec', this.ns('edge'), 'nft', '-f', '-'], {
      input: `table ip lab_pin {\n  chain forward {\n    type filter hook forward priority 0; policy accept;\n${pins.join('\n')}\n  }\n  chain prerouting {\n    type filter hook prerouting priority -150; policy accept;\n    iifname "cl" ct mark != 0 meta mark set ct mark\n  }\n}\n`,
    });
    const rules: string[] = [];
    for (let g = 1; g <= this.gateways; g++) rules.push(`rule add fwmark ${g} lookup ${100 + g} pref ${1000 + g}`, `route add ${SERVICE.prefix} via ${gatewayAddresses(g).gatewaySide} table ${100 + g}`);
    await batch('edge', rules);
  }

  private async start(timeoutMs: number): Promise<void> {
    const server = this.spawn('server', [process.execPath, LAB_SCRIPT('gateway-flows.js'), 'serve', `${SERVICE.port}`]);
    await server.lines.waitFor((l) => l.event === 'ready', 15_000, 'the lab server');
    await writeFile(path.join(this.dir, 'edge.conf'), edgeBirdConfig(this.gateways));
    this.spawn('edge', ['bird', '-f', '-c', path.join(this.dir, 'edge.conf'), '-s', path.join(this.dir, 'edge.ctl'), '-P', path.join(this.dir, 'edge.pid')]);
    for (let g = 1; g <= this.gateways; g++) {
      await writeFile(path.join(this.dir, `gw${g}.conf`), gatewayBirdConfig(g));
      this.spawn(`gw${g}`, ['bird', '-f', '-c', path.join(this.dir, `gw${g}.conf`), '-s', path.join(this.dir, `gw${g}.ctl`), '-P', path.join(this.dir, `gw${g}.pid`)]);
      await this.startProxy(g);
      const a = gatewayAddresses(g);
      this.spawn(`gw${g}`, [process.execPath, LAB_SCRIPT('announcer.js'), '--url', `http://${METRICS}/readyz`, '--table', `${ANNOUNCE_TABLE}`, '--route', `${SERVICE.prefix} via ${a.serverSide}`]);
    }
    this.flows = this.spawn('client', [process.execPath, LAB_SCRIPT('gateway-flows.js'), 'client', SERVICE.address, `${SERVICE.port}`]);
    await this.waitForNextHops(this.gateways, timeoutMs);
  }

  /** Start (or start again) gateway g's tproxy; resolves when it logged ready. */
  async startProxy(g: number): Promise<void> {
    const proxy = this.spawn(`gw${g}`, [process.execPath, this.tproxy, 'run', '--intercept', `tcp:${SERVICE.port}`, '--listen', `${PROXY_PORT}`, '--metrics-address', METRICS, '--admin-socket', this.adminSocket(g), '--log-format', 'json']);
    this.proxies.set(g, proxy);
    const ready = new JsonLines<{ type?: string }>(proxy.child.stderr!);
    await Promise.race([
      ready.waitFor((l) => l.type === 'ready', 60_000, `tproxy on gw${g}`),
      proxy.exited.then((code) => {
        throw new TproxyError('ERR_COMMAND_FAILED', `tproxy on gw${g} exited with ${code}: ${proxy.stderr.slice(-2000)}`);
      }),
    ]);
  }

  adminSocket(g: number): string {
    return path.join(this.dir, `gw${g}-admin.sock`);
  }

  /** SIGKILL gateway g's tproxy (its rules stay: traffic still sent to it is dropped, fail closed). */
  async killProxy(g: number): Promise<void> {
    const proxy = this.proxies.get(g);
    if (!proxy) return;
    proxy.child.kill('SIGKILL');
    await proxy.exited;
    this.proxies.delete(g);
  }

  /** The edge's next hops for the service prefix now. */
  async nextHops(): Promise<string[]> {
    const out = (await this.run('edge', ['ip', '-j', 'route', 'show', SERVICE.prefix], false)).stdout.trim();
    const routes = out ? (JSON.parse(out) as { gateway?: string; nexthops?: { gateway: string }[] }[]) : [];
    return routes.flatMap((r) => (r.nexthops ? r.nexthops.map((n) => n.gateway) : r.gateway ? [r.gateway] : [])).sort();
  }

  /** Wait until the edge routes the prefix over exactly `count` gateways; the ms it took. */
  async waitForNextHops(count: number, timeoutMs: number): Promise<number> {
    const start = performance.now();
    for (;;) {
      const hops = await this.nextHops();
      if (hops.length === count) return performance.now() - start;
      if (performance.now() - start > timeoutMs) throw new TproxyError('ERR_COMMAND_FAILED', `the edge never routed ${SERVICE.prefix} over ${count} gateways within ${timeoutMs} ms (next hops now: ${hops.join(', ') || 'none'})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The gateway number whose server-side address the server saw. */
  gatewayOf(address: string): number {
    for (let g = 1; g <= this.gateways; g++) if (gatewayAddresses(g).toServer === address) return g;
    return 0;
  }

  private async flowCommand(command: Record<string, unknown>, event: string): Promise<FlowReport> {
    const flows = this.flows;
    if (!flows) throw new Error('the lab is not started');
    const answer = flows.lines.waitFor((l) => l.event === event && l.tag === command.tag, 60_000, `flows ${String(command.cmd)}`);
    flows.child.stdin?.write(`${JSON.stringify(command)}\n`);
    const line = await answer.catch((error: Error) => {
      throw new Error(`${error.message}; its stderr: ${flows.stderr.slice(-1500)}`);
    });
    return line as unknown as FlowReport;
  }

  /** Open `count` flows from the client under `tag` and keep them; which gateway each went through. */
  open(tag: string, count: number, timeoutMs = 2000): Promise<FlowReport> {
    return this.flowCommand({ cmd: 'open', tag, count, timeoutMs }, 'opened');
  }

  /** One more exchange on every flow of `tag`: how many still work, through which gateway. */
  check(tag: string, timeoutMs = 2000): Promise<FlowReport> {
    return this.flowCommand({ cmd: 'check', tag, timeoutMs }, 'checked');
  }

  close(tag: string): Promise<FlowReport> {
    return this.flowCommand({ cmd: 'close', tag }, 'closed');
  }

  /** For exit paths that cannot await (a signal): kill by pid, delete the namespaces. */
  destroySync(): void {
    this.destroyed = true;
    for (const p of this.processes) p.child.kill('SIGKILL');
    for (const host of this.created) {
      for (const pid of runSync(['ip', 'netns', 'pids', this.ns(host)]).stdout.split(/\s+/).filter(Boolean).map(Number)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      runSync(['ip', 'netns', 'delete', this.ns(host)]);
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    const running = [...this.processes];
    for (const p of running) p.child.kill('SIGTERM');
    await Promise.race([Promise.all(running.map((p) => p.exited)), new Promise((r) => setTimeout(r, 3000).unref())]);
    for (const p of running) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    for (const host of this.created) {
      const pids = await this.runner.run(['ip', 'netns', 'pids', this.ns(host)], { check: false });
      for (const pid of pids.stdout.split(/\s+/).filter(Boolean).map(Number)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      await this.runner.run(['ip', 'netns', 'delete', this.ns(host)], { check: false });
    }
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}
