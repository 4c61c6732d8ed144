// The completion scripts: they parse in their shell, name every option of every command, and
// complete real command lines (bash and fish run them; zsh registers its function).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SHELLS, type Shell } from '../../src/cli/completion.js';
import { COMMANDS } from '../../src/cli/main.js';
import { findExecutable } from '../../src/sys/exec.js';
import { cli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'tproxy-completion-'));

async function script(shell: Shell): Promise<string> {
  const { code, out, err } = await cli('completion', shell);
  assert.equal(code, 0, err);
  const path = join(dir, `tproxy.${shell}`);
  writeFileSync(path, out);
  return path;
}

function shellRun(shell: Shell, args: string[]): { status: number | null; stdout: string; stderr: string } {
  assert.ok(findExecutable(shell), `${shell} is missing: scripts/setup.sh installs it`);
  return spawnSync(shell, args, { encoding: 'utf8', timeout: 20_000 });
}

describe('tproxy completion', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const shell of SHELLS) {
    it(`${shell}: the script parses and names every command and every option`, async () => {
      const path = await script(shell);
      const parsed = shellRun(shell, ['-n', path]);
      assert.equal(parsed.status, 0, parsed.stderr);
      const text = (await cli('completion', shell)).out;
      for (const command of COMMANDS) {
        assert.match(text, new RegExp(`\\b${command.name}\\b`), command.name);
        for (const option of command.options) {
          const word = shell === 'fish' ? `-l ${option.name}\\b` : `--${option.name}\\b`;
          assert.match(text, new RegExp(word), `${command.name} --${option.name}`);
        }
      }
    });
  }

  it('bash completes commands, options, option values, actions and files', async () => {
    const path = await script('bash');
    const file = join(dir, 'state.json');
    writeFileSync(file, '{}');
    const lines = [
      ['tproxy', 'ru'],
      ['tproxy', 'run', '--tcp-eng'],
      ['tproxy', 'run', '--backend', 'iptables-'],
      ['tproxy', 'rules', '--listen', '8000', ''],
      ['tproxy', 'rules', 'plan', ''],
      ['tproxy', 'completion', ''],
      ['tproxy', 'doctor', '--snapshot', join(dir, 'state.j')],
    ];
    const calls = lines.map((words) => `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _tproxy; echo "\${COMPREPLY[*]}"`);
    const run = shellRun('bash', ['-c', `source ${path}\n${calls.join('\n')}`]);
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(run.stdout.split('\n').slice(0, -1), ['run rules', '--tcp-engine', 'iptables-legacy iptables-nft', 'plan apply status cleanup', '', 'bash zsh fish', file]);
  });

  it('fish completes commands, options with their help, values and actions', async () => {
    const path = await script('fish');
    const run = shellRun('fish', ['-c', `source ${path}; complete -C 'tproxy sta'; complete -C 'tproxy run --tcp-eng'; complete -C 'tproxy run --log-format '; complete -C 'tproxy rules '`]);
    assert.equal(run.status, 0, run.stderr);
    const lines = run.stdout.split('\n').map((l) => l.split('\t')[0]);
    assert.deepEqual(lines.slice(0, -1), ['status', '--tcp-engine', 'json', 'text', 'apply', 'cleanup', 'plan', 'status']);
  });

  it('zsh registers the function with compinit', async () => {
    const path = await script('zsh');
    const run = shellRun('zsh', ['-f', '-c', `autoload -U compinit && compinit -u -d ${join(dir, 'zcompdump')} && source ${path} && print -r -- $_comps[tproxy]`]);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, '_tproxy\n');
  });

  it('refuses a shell it does not know', async () => {
    const { code, err } = await cli('completion', 'tcsh');
    assert.equal(code, 2);
    assert.match(err, /expected one of bash, zsh, fish, got "tcsh"/);
  });
});
