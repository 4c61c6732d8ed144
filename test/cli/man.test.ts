// The man page: generated from the commands' option lists, valid roff, and the one the build wrote.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { roffText } from '../../src/cli/man.js';
import { COMMANDS, manPageText } from '../../src/cli/main.js';
import { version } from '../../src/cli/version.js';
import { findExecutable } from '../../src/sys/exec.js';

const BUILT = fileURLToPath(new URL('../../../man/tproxy.1', import.meta.url));

describe('man page', () => {
  const page = manPageText();

  it('has the sections of a man page, every command and every option', () => {
    assert.match(page, new RegExp(`^\\.TH TPROXY 1 "" "tproxy ${version().replaceAll('.', '\\.')}" "User Commands"\n`));
    for (const section of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'COMMANDS', 'EXIT STATUS', 'SEE ALSO']) assert.match(page, new RegExp(`^\\.SH ${section}$`, 'm'), section);
    for (const command of COMMANDS) {
      assert.match(page, new RegExp(`^\\.SS ${command.name}$`, 'm'), command.name);
      for (const option of command.options) {
        const name = roffText(`--${option.name}`);
        assert.ok(page.includes(option.metavar ? `\n.BI "${name} " ${roffText(option.metavar)}\n` : `\n.B ${name}\n`), `${command.name} --${option.name}`);
      }
    }
  });

  it('escapes what roff would read as requests or escapes', () => {
    assert.equal(roffText('.hidden\n\'quote\na\\b -x'), '\\&.hidden\n\\&\'quote\na\\eb \\-x');
  });

  it('is what the build wrote to man/tproxy.1 (npm run build)', () => {
    assert.equal(readFileSync(BUILT, 'utf8'), page, 'man/tproxy.1 is stale: npm run build writes it');
  });

  it('renders without a warning', { skip: findExecutable('groff') ? false : 'groff is not installed' }, () => {
    const render = spawnSync('groff', ['-man', '-Tutf8', '-ww', BUILT], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(render.status, 0, render.stderr);
    assert.equal(render.stderr, '');
    assert.match(render.stdout, /tproxy completion bash\|zsh\|fish/);
  });
});
