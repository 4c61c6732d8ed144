// The command line of every command (core/cli-options parseCommandLine): any argv is options, or an error main turns into exit 2 (the
// project's error, or node's ERR_PARSE_ARGS_* with the usage), never anything else.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { selectionOptions } from '../../src/cli/selection.js';
import { HELP_OPTION, parseCommandLine } from '../../src/core/cli-options.js';
import { configFlags } from '../../src/core/config/flags.js';
import { isTproxyError } from '../../src/core/errors.js';
import { FUZZ, hostileText } from '../helpers/hostile.js';

const OPTIONS = [...selectionOptions(configFlags()), HELP_OPTION];

describe('command-line options', () => {
  it('refuses a single-valued option twice, takes a repeatable one many times', () => {
    assert.throws(() => parseCommandLine(['--listen', '1', '--listen=2'], OPTIONS), (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && /--listen is given more than once/.test(e.message));
    const { values } = parseCommandLine(['--intercept', 'tcp:80', '--intercept', 'udp:53', '--local', '--local'], OPTIONS);
    assert.deepEqual((values as Record<string, unknown>).intercept, ['tcp:80', 'udp:53']);
  });

  it('any argv: options or an error that exits 2', () => {
    // A few names often (so repeats happen), any name sometimes.
    const names = fc.oneof(fc.constantFrom('listen', 'config', 'intercept', 'local'), fc.constantFrom(...OPTIONS.map((o) => o.name)));
    const arg = fc.oneof(
      names.map((n) => `--${n}`),
      fc.tuple(names, hostileText).map(([n, v]) => `--${n}=${v}`),
      hostileText,
      fc.constantFrom('-', '--', '-x', '---', '--=', '-h'),
    );
    fc.assert(
      fc.property(fc.array(arg, { maxLength: 10 }), (args) => {
        try {
          parseCommandLine(args, OPTIONS);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code ?? '';
          assert.ok(isTproxyError(error, 'ERR_INVALID_ARGUMENT') || code.startsWith('ERR_PARSE_ARGS'), String(error));
        }
      }),
      FUZZ,
    );
  });
});
