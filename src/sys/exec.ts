/**
 * The process boundary: running the binaries we drive (nft, ip). One small interface, passed in
 * wherever commands run, so tests can record argv/stdin and namespaces can prefix `ip netns exec`.
 *
 * Every way a command can fail becomes a TproxyError, a failed spawn included: libuv reports
 * EMFILE / ENFILE / EAGAIN as an 'error' event on a child without stdio (and throws others), and
 * an unhandled 'error' event would kill the daemon with its rules installed. With a descriptor
 * budget, the descriptors a child needs are taken from it before the spawn.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { TproxyError } from '../core/errors.js';
import { installCommand } from '../core/packages.js';
import { DESCRIPTORS_PER_CHILD, type DescriptorBudget } from './descriptor-budget.js';
import { hostDistroFamily } from './os-release.js';

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

export interface RunOptions {
  /** Written to the command's stdin, then closed. */
  readonly input?: string;
  /** When false, a non-zero exit is returned instead of thrown. Default true. */
  readonly check?: boolean;
  readonly timeoutMs?: number;
}

export interface CommandRunner {
  run(argv: readonly string[], options?: RunOptions): Promise<CommandResult>;
}

/** Find an executable on PATH (plus the sbin directories root normally has). */
export function findExecutable(name: string, path: string = process.env.PATH ?? ''): string | undefined {
  const dirs = [...path.split(delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The command that installs the packages holding `binaries` on this host's distribution (every known one's when it is not known). */
export function hostInstallCommand(binaries: readonly string[]): string | undefined {
  return installCommand(binaries, hostDistroFamily());
}

/** `why`: what needs it, e.g. `needed by --backend nft`. */
export function missingCommandError(name: string, why?: string): TproxyError {
  const command = hostInstallCommand([name]);
  return new TproxyError('ERR_COMMAND_MISSING', `\`${name}\` was not found on PATH${why ? ` (${why})` : ''}: install it${command ? `: ${command}` : ''}`, { call: name });
}

export function commandFailedError(argv: readonly string[], result: CommandResult): TproxyError {
  const firstLine = result.stderr.split('\n').find((l) => l.trim() !== '') ?? '';
  return new TproxyError(
    'ERR_COMMAND_FAILED',
    `\`${argv.join(' ')}\` exited with ${result.exitCode}${firstLine ? `: ${firstLine.trim()}` : ''}`,
    { call: argv.join(' '), exitCode: result.exitCode, stderr: result.stderr.trim() },
  );
}

/** Runs commands as child processes. */
export class ProcessRunner implements CommandRunner {
  /** budget: the process's descriptors; a command that would not fit is refused before the spawn. */
  constructor(private readonly budget?: DescriptorBudget) {}

  run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    const [command, ...args] = argv;
    if (command === undefined) return Promise.reject(new TproxyError('ERR_INVALID_ARGUMENT', 'empty command'));
    const executable = command.includes('/') ? command : findExecutable(command);
    if (!executable) return Promise.reject(missingCommandError(command));
    const call = argv.join(' ');
    if (this.budget && !this.budget.acquire('child', DESCRIPTORS_PER_CHILD)) {
      return Promise.reject(new TproxyError('ERR_RESOURCE_EXHAUSTED', `could not start \`${call}\`: the process's descriptor budget is spent (raise LimitNOFILE / ulimit -n)`, { call, errno: 'EMFILE' }));
    }
    let released = false;
    const release = (): void => {
      if (released || !this.budget) return;
      released = true;
      this.budget.release('child', DESCRIPTORS_PER_CHILD);
    };
    const spawnFailed = (error: NodeJS.ErrnoException): TproxyError =>
      new TproxyError(error.code === 'EMFILE' || error.code === 'ENFILE' || error.code === 'EAGAIN' ? 'ERR_RESOURCE_EXHAUSTED' : 'ERR_COMMAND_FAILED', `could not start \`${call}\`: ${error.message}`, { call, ...(error.code ? { errno: error.code } : {}) }, { cause: error });
    return new Promise<CommandResult>((resolve, reject) => {
      let child;
      try {
        child = spawn(executable, args, { stdio: ['pipe', 'pipe', 'pipe'] });
      } catch (error) {
        reject(spawnFailed(error as NodeJS.ErrnoException));
        return;
      }
      let settled = false;
      const settle = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        outcome();
      };
      // First, before anything can fail: the spawn's own error arrives as this event.
      child.on('error', (error) => {
        release();
        settle(() => reject(spawnFailed(error)));
      });
      let stdout = '';
      let stderr = '';
      child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = options.timeoutMs
        ? setTimeout(() => {
            child.kill('SIGKILL');
            settle(() => reject(new TproxyError('ERR_TIMEOUT', `\`${call}\` did not finish within ${options.timeoutMs} ms`, { call })));
          }, options.timeoutMs)
        : undefined;
      child.on('close', (code, signal) => {
        release();
        const result = { stdout, stderr, exitCode: code ?? (signal ? 128 : 1) };
        settle(() => (result.exitCode !== 0 && options.check !== false ? reject(commandFailedError(argv, result)) : resolve(result)));
      });
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(options.input ?? '');
    });
  }
}

/** A runner whose commands run inside a network namespace (`ip netns exec NAME ...`). */
export class NetnsRunner implements CommandRunner {
  constructor(
    readonly namespace: string,
    private readonly inner: CommandRunner = new ProcessRunner(),
  ) {}

  run(argv: readonly string[], options?: RunOptions): Promise<CommandResult> {
    return this.inner.run(['ip', 'netns', 'exec', this.namespace, ...argv], options);
  }
}

/** Synchronous variant for exit paths (process 'exit' handlers cannot await). */
export function runSync(argv: readonly string[]): CommandResult {
  const [command, ...args] = argv;
  const executable = command && (command.includes('/') ? command : findExecutable(command));
  if (!executable) return { stdout: '', stderr: `${command ?? ''} not found`, exitCode: 127 };
  const r = spawnSync(executable, args, { encoding: 'utf8' });
  return { stdout: r.stdout ?? '', stderr: r.stderr ?? '', exitCode: r.status ?? 1 };
}
