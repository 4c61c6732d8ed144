/** `tproxy ARGS...` in this process, with what it printed (for CLI tests that need no namespace). */
import { main } from '../../src/cli/main.js';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

/** With `input` as standard input. */
export async function cliWithInput(input: string, ...argv: string[]): Promise<CliResult> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t), readInput: () => Promise.resolve(input) });
  return { code, out, err };
}

export function cli(...argv: string[]): Promise<CliResult> {
  return cliWithInput('', ...argv);
}
