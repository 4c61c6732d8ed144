import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HELP_OPTION, optionsHelp, parseCommandLine, parseOptions } from '../../src/core/cli-options.js';

const OPTIONS = [
  { name: 'port', metavar: 'PORT', default: '8000', help: 'the port' },
  { name: 'tag', metavar: 'TAG', multiple: true, help: 'a tag' },
  { name: 'mode', metavar: 'MODE', choices: ['a', 'b'], help: 'the mode, with a help text long enough to be wrapped onto a second line of the column' },
  { name: 'json', help: 'JSON' },
  HELP_OPTION,
] as const;

describe('command-line options', () => {
  it('parse by the same list: defaults, repeatable values, switches, unknown options refused', () => {
    assert.deepEqual(parseOptions(OPTIONS).port, { type: 'string', default: '8000' });
    const { values, positionals } = parseCommandLine(['--tag', 'x', '--tag', 'y', '--json', 'word'], OPTIONS, true);
    assert.deepEqual({ ...values }, { port: '8000', tag: ['x', 'y'], json: true });
    assert.deepEqual(positionals, ['word']);
    assert.throws(() => parseCommandLine(['--nope'], OPTIONS), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' });
  });

  it('help shows the synopsis, the wrapped text and the default', () => {
    assert.equal(
      optionsHelp(OPTIONS),
      [
        '  --port PORT            the port (default 8000)',
        '  --tag TAG              a tag',
        '  --mode MODE            the mode, with a help text long enough to be wrapped onto a second line',
        '                         of the column',
        '  --json                 JSON',
        '  --help                 this help',
      ].join('\n'),
    );
  });
});
