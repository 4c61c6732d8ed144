/**
 * The network-namespace lab: the classic client <-> router (proxy host) <-> server topology.
 *
 *   client (198.51.100.10, 2001:db8:1::10)
 *     eth0 ===veth=== to-client  router  to-server ===veth=== eth0
 *                     198.51.100.1          203.0.113.1
 *                     2001:db8:1::1         2001:db8:2::1
 *                                                      server (203.0.113.20, 2001:db8:2::20)
 *
 * TEST-NET addresses only. Every name carries a per-run prefix `tpx<pid>x<random>` so parallel
 * runs never collide and leftovers of crashed runs (dead pid) can be found and removed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { TproxyError } from '../core/errors.js';
import { isProcessAlive } from '../sys/process.js';
import { NetnsRunner, ProcessRunner, runSync, type CommandResult, type CommandRunner, type RunOptions } from '../sys/exec.js';

export type HostName = 'client' | 'router' | 'server';

export interface HostAddresses {
  readonly ipv4: string;
  readonly ipv6: string;
}

export const LAB_ADDRESSES = {
  client: { ipv4: '198.51.100.10', ipv6: '2001:db8:1::10' },
  routerClientSide: { ipv4: '198.51.100.1', ipv6: '2001:db8:1::1' },
  routerServerSide: { ipv4: '203.0.113.1', ipv6: '2001:db8:2::1' },
  server: { ipv4: '203.0.113.20', ipv6: '2001:db8:2::20' },
} as const;

export const LAB_NAME_PATTERN = /^tpx(\d+)x([a-z0-9]+)-(client|router|server)$/;

export function labPrefix(pid: number = process.pid): string {
  return `tpx${pid}x${randomBytes(3).toString('hex')}`;
}

async function listNamespaces(runner: CommandRunner): Promise<string[]> {
  const result = await runner.run(['ip', '-j', 'netns', 'list'], { check: false });
  if (result.exitCode !== 0 || !result.stdout.trim()) return [];
  return (JSON.parse(result.stdout) as { name: string }[]).map((n) => n.name);
}

async function deleteNamespace(runner: CommandRunner, name: string): Promise<void> {
  const pids = await runner.run(['ip', 'netns', 'pids', name], { check: false });
  for (const pid of pids.stdout.split(/\s+/).filter(Boolean).map(Number)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await runner.run(['ip', 'netns', 'delete', name], { check: false });
}

/** Remove namespaces of earlier lab runs whose process is gone. Returns the names removed. */
export async function sweepLeftovers(runner: CommandRunner = new ProcessRunner()): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await listNamespaces(runner)) {
    const match = LAB_NAME_PATTERN.exec(name);
    if (!match || isProcessAlive(Number(match[1]))) continue;
    await deleteNamespace(runner, name);
    removed.push(name);
  }
  return removed;
}

/** Names of lab namespaces that exist now with the given prefix. */
export async function namespacesWithPrefix(prefix: string, runner: CommandRunner = new ProcessRunner()): Promise<string[]> {
  return (await listNamespaces(runner)).filter((n) => n.startsWith(`${prefix}-`));
}

export interface SpawnedProcess {
  readonly child: ChildProcess;
  readonly host: HostName;
  /** Resolves with the exit code (or 128 + signal number when killed). */
  readonly exited: Promise<number>;
}

export class Lab {
  readonly prefix: string;
  private readonly runner: CommandRunner;
  private readonly processes = new Set<SpawnedProcess>();
  private created = false;
  private destroyed = false;

  private constructor(prefix: string, runner: CommandRunner) {
    this.prefix = prefix;
    this.runner = runner;
  }

  namespace(host: HostName): string {
    return `${this.prefix}-${host}`;
  }

  /** A runner whose commands run in `host`'s namespace. */
  runnerFor(host: HostName): CommandRunner {
    return new NetnsRunner(this.namespace(host), this.runner);
  }

  run(host: HostName, argv: readonly string[], options?: RunOptions): Promise<CommandResult> {
    return this.runnerFor(host).run(argv, options);
  }

  /** Create the three namespaces, links, addresses and routes. Removes leftovers of dead runs first. */
  static async create(options: { prefix?: string; runner?: CommandRunner } = {}): Promise<Lab> {
    const runner = options.runner ?? new ProcessRunner();
    await sweepLeftovers(runner);
    const lab = new Lab(options.prefix ?? labPrefix(), runner);
    try {
      await lab.build();
    } catch (error) {
      await lab.destroy();
      throw error instanceof TproxyError ? new TproxyError('ERR_NETNS', `could not build the namespace lab: ${error.message}`, error.details, { cause: error }) : error;
    }
    return lab;
  }

  private async build(): Promise<void> {
    this.created = true;
    const [c, r, s] = [this.namespace('client'), this.namespace('router'), this.namespace('server')];
    for (const ns of [c, r, s]) await this.runner.run(['ip', 'netns', 'add', ns]);
    const A = LAB_ADDRESSES;
    // Links are created inside the router's namespace, so no interface name ever exists in the host's.
    await this.runner.run(['ip', '-n', r, '-batch', '-'], {
      input: [
        `link add to-client type veth peer name eth0 netns ${c}`,
        `link add to-server type veth peer name eth0 netns ${s}`,
        'link set lo up',
        `addr add ${A.routerClientSide.ipv4}/24 dev to-client`,
        `addr add ${A.routerClientSide.ipv6}/64 dev to-client nodad`,
        `addr add ${A.routerServerSide.ipv4}/24 dev to-server`,
        `addr add ${A.routerServerSide.ipv6}/64 dev to-server nodad`,
        'link set to-client up',
        'link set to-server up',
        '',
      ].join('\n'),
    });
    const leaf = (ns: string, self: HostAddresses, gw: HostAddresses): Promise<CommandResult> =>
      this.runner.run(['ip', '-n', ns, '-batch', '-'], {
        input: [
          'link set lo up',
          `addr add ${self.ipv4}/24 dev eth0`,
          `addr add ${self.ipv6}/64 dev eth0 nodad`,
          'link set eth0 up',
          `route add default via ${gw.ipv4}`,
          `route add default via ${gw.ipv6}`,
          '',
        ].join('\n'),
      });
    await leaf(c, A.client, A.routerClientSide);
    await leaf(s, A.server, A.routerServerSide);
    await this.run('router', ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
  }

  /** Start a long-running process in `host`'s namespace; it is killed by destroy(). */
  spawn(host: HostName, argv: readonly string[], options: { env?: NodeJS.ProcessEnv } = {}): SpawnedProcess {
    if (this.destroyed) throw new TproxyError('ERR_NETNS', 'the lab was already destroyed');
    const child = spawn('ip', ['netns', 'exec', this.namespace(host), ...argv], { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env });
    const exited = new Promise<number>((resolve) => {
      child.on('exit', (code, signal) => resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15)));
      child.on('error', () => resolve(127));
    });
    const spawned = { child, host, exited };
    this.processes.add(spawned);
    void exited.then(() => this.processes.delete(spawned));
    return spawned;
  }

  /** Stop processes (SIGTERM, then SIGKILL after graceMs) and delete the namespaces. Idempotent. */
  async destroy(graceMs = 2000): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    const running = [...this.processes];
    for (const p of running) p.child.kill('SIGTERM');
    await Promise.race([Promise.all(running.map((p) => p.exited)), new Promise((r) => setTimeout(r, graceMs).unref())]);
    for (const p of running) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    if (!this.created) return;
    for (const host of ['client', 'router', 'server'] as const) await deleteNamespace(this.runner, this.namespace(host));
  }

  /** For exit paths that cannot await (process 'exit', a second SIGINT). */
  destroySync(): void {
    this.destroyed = true;
    for (const p of this.processes) p.child.kill('SIGKILL');
    if (!this.created) return;
    for (const host of ['client', 'router', 'server'] as const) {
      const ns = this.namespace(host);
      for (const pid of runSync(['ip', 'netns', 'pids', ns]).stdout.split(/\s+/).filter(Boolean).map(Number)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      runSync(['ip', 'netns', 'delete', ns]);
    }
  }
}

/**
 * Waits for a started process to say it is ready; if it does not, stops it (SIGTERM, then SIGKILL
 * after 10 s) before the failure is passed on, so a late starter cannot hold ports or rules that
 * the next test needs.
 */
export async function untilReady<T>(process: SpawnedProcess, ready: Promise<T>): Promise<T> {
  try {
    return await ready;
  } catch (error) {
    process.child.kill('SIGTERM');
    const killer = setTimeout(() => process.child.kill('SIGKILL'), 10_000);
    await process.exited;
    clearTimeout(killer);
    throw error;
  }
}
