/**
 * A command runner for unit tests: records every call (argv and stdin) and answers from a list of
 * handlers, the first whose argv prefix matches winning. Unanswered commands succeed with no output.
 */
import { commandFailedError, type CommandResult, type CommandRunner, type RunOptions } from '../../src/sys/exec.js';

export type Answer = Partial<CommandResult> | ((argv: readonly string[], input: string | undefined) => Partial<CommandResult>);

export class FakeRunner implements CommandRunner {
  readonly calls: { argv: string[]; input?: string }[] = [];

  constructor(private readonly answers: [string, Answer][] = []) {}

  run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    this.calls.push({ argv: [...argv], ...(options.input !== undefined ? { input: options.input } : {}) });
    const line = argv.join(' ');
    const found = this.answers.find(([prefix]) => line === prefix || line.startsWith(`${prefix} `))?.[1] ?? {};
    const answer = typeof found === 'function' ? found(argv, options.input) : found;
    const result = { stdout: answer.stdout ?? '', stderr: answer.stderr ?? '', exitCode: answer.exitCode ?? 0 };
    if (result.exitCode !== 0 && options.check !== false) return Promise.reject(commandFailedError(argv, result));
    return Promise.resolve(result);
  }

  /** The argv of every call, joined by spaces. */
  lines(): string[] {
    return this.calls.map((c) => c.argv.join(' '));
  }
}
