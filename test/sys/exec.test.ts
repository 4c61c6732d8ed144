import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTproxyError } from '../../src/core/errors.js';
import { spawnSync } from 'node:child_process';
import { DescriptorBudget } from '../../src/sys/descriptor-budget.js';
import { NetnsRunner, ProcessRunner, findExecutable, missingCommandError, type CommandRunner } from '../../src/sys/exec.js';

const EXEC_MODULE = new URL('../../src/sys/exec.js', import.meta.url).href;

describe('ProcessRunner', () => {
  it('passes stdin and returns stdout', async () => {
    const result = await new ProcessRunner().run(['cat'], { input: 'hello' });
    assert.deepEqual(result, { stdout: 'hello', stderr: '', exitCode: 0 });
  });

  it('says how to install a missing binary', async () => {
    await assert.rejects(new ProcessRunner().run(['tproxy-no-such-binary']), (e: unknown) => isTproxyError(e, 'ERR_COMMAND_MISSING') && /not found on PATH/.test(e.message));
    const error = await new ProcessRunner().run(['nft-missing']).then(() => undefined, (e: unknown) => e as Error);
    assert.match(error?.message ?? '', /install it/);
  });

  it('names the package of a binary of ours and the command that installs it on this distribution', () => {
    const message = missingCommandError('nft', 'tproxy demo needs it').message;
    assert.match(message, /^`nft` was not found on PATH \(tproxy demo needs it\): install it: .*(apt-get install|dnf install|pacman -S|apk add) nftables/);
  });

  it('reports the exit code and the first stderr line of a failed command', async () => {
    await assert.rejects(
      new ProcessRunner().run(['sh', '-c', 'echo; echo "Error: bad thing" >&2; echo more >&2; exit 3']),
      (e: unknown) => isTproxyError(e, 'ERR_COMMAND_FAILED') && e.details.exitCode === 3 && /exited with 3: Error: bad thing$/.test(e.message),
    );
  });

  it('returns instead of throwing when check is false', async () => {
    const result = await new ProcessRunner().run(['sh', '-c', 'exit 4'], { check: false });
    assert.equal(result.exitCode, 4);
  });

  it('kills a command that runs past its timeout', async () => {
    await assert.rejects(new ProcessRunner().run(['sleep', '5'], { timeoutMs: 100 }), (e: unknown) => isTproxyError(e, 'ERR_TIMEOUT'));
  });

  it('refuses a command the descriptor budget has no room for, before spawning it, and gives back what a finished one took', async () => {
    const budget = DescriptorBudget.create({ limit: 100, open: 0, slack: 0, childReserve: 0, stopReserve: 0 });
    assert.ok(budget.acquire('udp', 95));
    await assert.rejects(new ProcessRunner(budget).run(['true']), (e: unknown) => isTproxyError(e, 'ERR_RESOURCE_EXHAUSTED') && /descriptor budget/.test(e.message));
    budget.release('udp', 95);
    await new ProcessRunner(budget).run(['true']);
    await new ProcessRunner(budget).run(['sh', '-c', 'exit 1'], { check: false });
    assert.equal(budget.snapshot().inUse, 0);
    assert.equal(budget.snapshot().byConsumer.child.refused, 1);
  });

  it('turns a spawn that fails with EMFILE into a TproxyError, not an unhandled error event', () => {
    // A process whose descriptors are all taken (a low limit, filled with /dev/null) runs a command.
    const script = `
      import { openSync } from 'node:fs';
      const { ProcessRunner } = await import(${JSON.stringify(EXEC_MODULE)});
      const held = [];
      try { for (;;) held.push(openSync('/dev/null', 'r')); } catch {}
      const outcome = await new ProcessRunner().run(['true']).then(() => 'ran', (e) => e.name + ' ' + e.code + ' ' + e.details.errno);
      process.stdout.write(outcome);`;
    const r = spawnSync('sh', ['-c', `ulimit -n 64 && exec "${process.execPath}" --input-type=module -e "$0"`, script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^TproxyError ERR_RESOURCE_EXHAUSTED (EMFILE|ENFILE)$/);
  });

  it('finds executables on PATH and in sbin', () => {
    assert.ok(findExecutable('sh'));
    assert.equal(findExecutable('tproxy-no-such-binary'), undefined);
  });

  it('prefixes commands with ip netns exec for a namespace', async () => {
    const seen: string[][] = [];
    const inner: CommandRunner = { run: (argv) => (seen.push([...argv]), Promise.resolve({ stdout: '', stderr: '', exitCode: 0 })) };
    await new NetnsRunner('lab-router', inner).run(['nft', '-j', 'list', 'ruleset']);
    assert.deepEqual(seen, [['ip', 'netns', 'exec', 'lab-router', 'nft', '-j', 'list', 'ruleset']]);
  });
});
