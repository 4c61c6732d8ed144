import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RulesController } from '../../src/control/apply.js';
import { isTproxyError } from '../../src/core/errors.js';
import { DEFAULT_RULES_CONFIG, planRules, renderNftScript } from '../../src/core/rules/plan.js';
import { commandFailedError, type CommandResult, type CommandRunner, type RunOptions } from '../../src/sys/exec.js';

/** Records every call; answers from a script of handlers (first matching prefix wins). */
class FakeRunner implements CommandRunner {
  readonly calls: { argv: string[]; input?: string }[] = [];
  constructor(private readonly answers: [string, Partial<CommandResult>][] = []) {}
  run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    this.calls.push({ argv: [...argv], ...(options.input !== undefined ? { input: options.input } : {}) });
    const line = argv.join(' ');
    const answer = this.answers.find(([prefix]) => line.startsWith(prefix))?.[1] ?? {};
    const result = { stdout: answer.stdout ?? '', stderr: answer.stderr ?? '', exitCode: answer.exitCode ?? 0 };
    if (result.exitCode !== 0 && options.check !== false) return Promise.reject(commandFailedError(argv, result));
    return Promise.resolve(result);
  }
}

const plan = planRules({ ...DEFAULT_RULES_CONFIG, intercept: [{ transport: 'tcp', ports: [{ from: 80, to: 80 }] }] });

describe('RulesController', () => {
  it('checks the script, applies it in one transaction, then adds routes and rules', async () => {
    const runner = new FakeRunner([['ip -j', { stdout: '[]' }]]);
    await new RulesController(runner).apply(plan);
    const lines = runner.calls.map((c) => c.argv.join(' '));
    assert.deepEqual(lines.slice(0, 2), ['nft --check -f -', 'nft -f -']);
    assert.equal(runner.calls[0]?.input, renderNftScript(plan));
    assert.equal(runner.calls[1]?.input, renderNftScript(plan));
    assert.ok(lines.includes('ip -4 route replace local 0.0.0.0/0 dev lo table 100'));
    assert.ok(lines.includes('ip -4 rule add fwmark 0x00000001/0x00000001 lookup 100 priority 9000'));
    assert.ok(lines.includes('ip -6 rule add fwmark 0x00000001/0x00000001 lookup 100 priority 9000'));
  });

  it('does not add a rule that is already there (idempotent)', async () => {
    const existing = JSON.stringify([{ priority: 9000, src: 'all', fwmark: '0x1', fwmask: '0x1', table: '100' }]);
    const runner = new FakeRunner([['ip -j', { stdout: existing }]]);
    await new RulesController(runner).apply(plan);
    assert.ok(!runner.calls.some((c) => c.argv.includes('rule') && c.argv.includes('add')));
  });

  it('applies nothing when the check fails, and explains a kernel without tproxy', async () => {
    const runner = new FakeRunner([['nft --check', { exitCode: 1, stderr: 'Error: Could not process rule: No such file or directory\ntproxy ip to :8000' }]]);
    await assert.rejects(new RulesController(runner).apply(plan), (e: unknown) => isTproxyError(e, 'ERR_KERNEL_FEATURE') && /modprobe nft_tproxy/.test(e.message));
    assert.deepEqual(runner.calls.map((c) => c.argv.join(' ')), ['nft --check -f -']);
  });

  it('maps "Operation not permitted" to a privilege error', async () => {
    const runner = new FakeRunner([['nft --check', { exitCode: 1, stderr: 'Error: Operation not permitted' }]]);
    await assert.rejects(new RulesController(runner).apply(plan), (e: unknown) => isTproxyError(e, 'ERR_PRIVILEGE'));
  });

  it('removes the table again when policy routing fails (nothing half-applied)', async () => {
    const runner = new FakeRunner([
      ['ip -j', { stdout: '[]' }],
      ['ip -4 route replace', { exitCode: 2, stderr: 'Error: table id is in use' }],
    ]);
    await assert.rejects(new RulesController(runner).apply(plan), (e: unknown) => isTproxyError(e, 'ERR_COMMAND_FAILED') && /table id is in use/.test(e.message));
    assert.ok(runner.calls.some((c) => c.argv.join(' ') === 'nft delete table inet tproxy'));
  });

  it('cleans up what exists and treats missing pieces as done', async () => {
    const runner = new FakeRunner([
      ['nft delete table', { exitCode: 1, stderr: 'Error: No such file or directory; did you mean table ...' }],
      ['ip -j', { stdout: '[]' }],
    ]);
    const removed = await new RulesController(runner).remove(plan);
    assert.deepEqual(removed, { table: false, rules: 0, routes: 0 });
  });
});
