// defineCommand: the one place every command's --help and option parsing go through.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HELP_OPTION } from '../../src/core/cli-options.js';
import { defineCommand, usageText, type CliIo } from '../../src/cli/io.js';

function bufferIo(): CliIo & { text: () => string } {
  let text = '';
  return { out: (t) => (text += t), err: (t) => (text += t), readInput: () => Promise.resolve(''), text: () => text };
}

describe('defineCommand', () => {
  const OPTIONS = [{ name: 'json', help: 'as JSON' }, { name: 'top', metavar: 'N', default: '5', help: 'how many' }, HELP_OPTION] as const;
  const seen: { values: unknown; positionals: string[]; argv: readonly string[] }[] = [];
  const spec = {
    name: 'probe',
    summary: 'a probe',
    synopsis: ['tproxy probe [--json] WORDS'],
    description: 'Probes.\n',
    options: OPTIONS,
    run(line: { values: unknown; positionals: string[]; argv: readonly string[] }): Promise<number> {
      seen.push(line);
      return Promise.resolve(7);
    },
  };

  it('prints the usage text for --help without running the command', async () => {
    seen.length = 0;
    const io = bufferIo();
    const command = defineCommand(spec);
    assert.equal(command.usage, usageText(spec.synopsis, spec.description, OPTIONS));
    assert.equal(await command.run(['--json', '--help'], io), 0);
    assert.equal(io.text(), command.usage);
    assert.equal(seen.length, 0);
  });

  it('hands run the typed values, the operands and the words it was given', async () => {
    seen.length = 0;
    const command = defineCommand({ ...spec, operands: true });
    assert.equal(await command.run(['--json', 'tcp', '192.0.2.1:5', '->', '198.51.100.2:80'], bufferIo()), 7);
    assert.deepEqual({ ...seen[0], values: { ...(seen[0]?.values as object) } }, { values: { json: true, top: '5' }, positionals: ['tcp', '192.0.2.1:5', '->', '198.51.100.2:80'], argv: ['--json', 'tcp', '192.0.2.1:5', '->', '198.51.100.2:80'] });
  });

  it('refuses operands where the command takes none, and unknown options', async () => {
    const command = defineCommand(spec);
    await assert.rejects(command.run(['word'], bufferIo()), /Unexpected argument 'word'/);
    await assert.rejects(command.run(['--jsn'], bufferIo()), /Unknown option '--jsn'/);
    await assert.rejects(command.run(['--top', '1', '--top', '2'], bufferIo()), /--top is given more than once/);
  });
});
