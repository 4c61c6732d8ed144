// Hostile configuration: damaged copies of the example file (any value replaced by any JSON value
// or hostile text, written back as YAML), raw hostile text, and any flag with any value. loadConfig
// answers with a configuration or the project's error, never anything else.
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { loadConfig } from '../../../src/core/config/document.js';
import { exampleConfig } from '../../../src/core/config/example.js';
import { configFlags } from '../../../src/core/config/flags.js';
import { FUZZ, damaged, hostileText, onlyTproxyErrors } from '../../helpers/hostile.js';

const EXAMPLE: unknown = parse(exampleConfig());
const YAML_PIECES = ['&a', '*a', '<<: *a', '!!binary', '!!js/function', '? ', '- ', ': ', '{', '[', '---', '...', '%YAML 1.2', '|', '>', '#', '"\\u0000"', "'", '\t', '\n  '];

describe('hostile configuration files and flags', () => {
  it('a damaged example file: a configuration or the project\'s error', () => {
    fc.assert(
      fc.property(damaged(EXAMPLE), (doc) => {
        onlyTproxyErrors(() => loadConfig({ file: 'tproxy.yaml', text: stringify(doc) }));
      }),
      { ...FUZZ, numRuns: 60 },
    );
  });

  it('YAML syntax in pieces: the project\'s error, no stack trace', () => {
    const text = fc.array(fc.oneof(fc.constantFrom(...YAML_PIECES), hostileText, fc.constantFrom('listeners', 'rules', 'port', 'intercept', 'tcp:80')), { maxLength: 30 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(text, (t) => {
        onlyTproxyErrors(() => loadConfig({ file: 'tproxy.yaml', text: t }));
      }),
      { ...FUZZ, numRuns: 60 },
    );
  });

  it('any flags with any values, over a file or alone', () => {
    const flags = configFlags();
    const given = fc.dictionary(
      fc.constantFrom(...flags.map((f) => f.flag.name)),
      fc.oneof(hostileText, fc.boolean(), fc.array(hostileText, { maxLength: 3 })),
      { maxKeys: 4 },
    );
    fc.assert(
      fc.property(given, fc.option(damaged(EXAMPLE), { nil: undefined }), (values, doc) => {
        onlyTproxyErrors(() => loadConfig(doc === undefined ? {} : { file: 'tproxy.yaml', text: stringify(doc) }, { values }));
      }),
      { ...FUZZ, numRuns: 60 },
    );
  });
});
