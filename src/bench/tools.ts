/** The benchmark's external tools: installed from apt when missing (as root), or reported. */
import { TproxyError } from '../core/errors.js';
import { findExecutable, type CommandRunner } from '../sys/exec.js';

export const BENCH_TOOLS: Readonly<Record<string, string>> = {
  iperf3: 'iperf3',
  wrk: 'wrk',
  nginx: 'nginx-light',
  haproxy: 'haproxy',
  danted: 'dante-server',
  // The reference relay's compiler (src/bench/reference.ts), with the C library's headers.
  cc: 'gcc libc6-dev',
};

export async function ensureTools(names: readonly string[], runner: CommandRunner, say: (line: string) => void): Promise<void> {
  const missing = names.filter((n) => !findExecutable(n));
  if (missing.length === 0) return;
  const packages = missing.flatMap((n) => (BENCH_TOOLS[n] ?? n).split(' '));
  if (process.getuid?.() !== 0) {
    throw new TproxyError('ERR_COMMAND_MISSING', `the benchmark needs ${missing.join(', ')}: apt-get install ${packages.join(' ')}`);
  }
  say(`bench: installing ${packages.join(' ')} from apt (missing: ${missing.join(', ')})`);
  await runner.run(['apt-get', 'update', '-qq'], { timeoutMs: 300_000 });
  await runner.run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...packages], { timeoutMs: 600_000 });
}
