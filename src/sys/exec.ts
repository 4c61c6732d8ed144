/**
 * The process boundary: running the binaries we drive (nft, ip). One small interface, passed in
 * wherever commands run, so tests can record argv/stdin and namespaces can prefix `ip netns exec`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { TproxyError } from '../core/errors.js';
import { installCommand } from '../core/packages.js';
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
  run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    const [command, ...args] = argv;
    if (command === undefined) return Promise.reject(new TproxyError('ERR_INVALID_ARGUMENT', 'empty command'));
    const executable = command.includes('/') ? command : findExecutable(command);
    if (!executable) return Promise.reject(missingCommandError(command));
    return new Promise((resolve, reject) => {
      const child = spawn(executable, args, { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = options.timeoutMs
        ? setTimeout(() => {
            child.kill('SIGKILL');
            reject(new TproxyError('ERR_TIMEOUT', `\`${argv.join(' ')}\` did not finish within ${options.timeoutMs} ms`, { call: argv.join(' ') }));
          }, options.timeoutMs)
        : undefined;
      child.on('error', (error) => {
        if (timer) clearTimeout(timer);
        reject(new TproxyError('ERR_COMMAND_FAILED', `could not start \`${argv.join(' ')}\`: ${error.message}`, { call: argv.join(' ') }, { cause: error }));
      });
      child.on('close', (code, signal) => {
        if (timer) clearTimeout(timer);
        const result = { stdout, stderr, exitCode: code ?? (signal ? 128 : 1) };
        if (result.exitCode !== 0 && options.check !== false) reject(commandFailedError(argv, result));
        else resolve(result);
      });
      child.stdin.on('error', () => undefined);
      child.stdin.end(options.input ?? '');
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
