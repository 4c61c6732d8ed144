/**
 * Real servers from Debian packages (danted, tinyproxy, nginx, haproxy) in a lab namespace: each runs in the
 * foreground from a config, pid and log files in a test's temp dir, bound to the namespace's own
 * addresses; the lab kills it by PID when it is destroyed (also when a test fails).
 */
import { existsSync, readFileSync } from 'node:fs';
import type { HostName, Lab, SpawnedProcess } from '../../src/lab/topology.js';

export interface Daemon {
  readonly process: SpawnedProcess;
  /** The daemon's log so far ('' before it wrote one). */
  log(): string;
}

/**
 * Start `argv` in `host` and wait (at most 15 s) until something listens on each of `ports`. Its log
 * is `logFile`, or without one what it writes to stdout (for servers that log nowhere else, like HAProxy).
 */
export async function startDaemon(lab: Lab, host: HostName, argv: readonly string[], ports: readonly number[], logFile?: string): Promise<Daemon> {
  const spawned = lab.spawn(host, argv);
  let stderr = '';
  let stdout = '';
  spawned.child.stderr?.on('data', (d: Buffer) => void (stderr += d.toString()));
  spawned.child.stdout?.on('data', (d: Buffer) => void (stdout += d.toString()));
  const log = (): string => (logFile === undefined ? stdout : existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const deadline = Date.now() + 15_000;
  for (;;) {
    const out = await lab.run(host, ['ss', '-Htln'], { check: false });
    const listening = ports.every((port) => new RegExp(`:${port}\\s`).test(out.stdout));
    if (listening) return { process: spawned, log };
    if (spawned.child.exitCode !== null || Date.now() > deadline) {
      spawned.child.kill('SIGKILL');
      throw new Error(`${argv[0]} did not listen on ${ports.join(', ')} in ${host} within 15 s (exit ${spawned.child.exitCode}): ${stderr.slice(-1000)} ${log().slice(-1000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Wait (at most timeoutMs) until the daemon's log matches `pattern`; the log then. */
export async function waitForLog(daemon: Daemon, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = daemon.log();
    if (pattern.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`log never matched ${pattern} within ${timeoutMs} ms; log: ${text.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
