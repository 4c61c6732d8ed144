// `tproxy config example` passes the check, shows every setting, and docs/configuration.md's reference is current.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { loadConfig } from '../../../src/core/config/document.js';
import { exampleConfig } from '../../../src/core/config/example.js';
import { configFlags, flagsHelp, parseArgsOptions } from '../../../src/core/config/flags.js';
import { configReference, withReference } from '../../../src/core/config/reference.js';
import { CONFIG_SCHEMA } from '../../../src/core/config/tproxy-config.js';
import type { Setting } from '../../../src/core/config/schema.js';
import { sourcePath } from '../../helpers/paths.js';

function settingPaths(setting: Setting<unknown>, path: string, out: string[]): string[] {
  if (setting.kind === 'section') for (const [key, field] of Object.entries(setting.fields)) settingPaths(field, path === '' ? key : `${path}.${key}`, out);
  else {
    out.push(path);
    if (setting.kind === 'list' && setting.item.kind === 'section') settingPaths(setting.item, `${path}[]`, out);
  }
  return out;
}

const CONFIGURATION_DOC = sourcePath('../docs/configuration.md');

describe('config example', () => {
  it('is a valid configuration equal to the defaults', () => {
    const example = exampleConfig();
    assert.deepEqual(loadConfig({ file: 'example.yaml', text: example }), loadConfig({ file: 'empty.yaml', text: '' }));
  });

  it('shows every setting with a help comment', () => {
    const example = exampleConfig();
    const paths = settingPaths(CONFIG_SCHEMA, '', []);
    for (const path of paths) {
      const key = path.split(/[.[\]]+/).filter((s) => s !== '').pop() ?? '';
      assert.match(example, new RegExp(`^\\s*(# )?(- )?(# )?${key}:`, 'm'), `${path} is in the example`);
    }
    // Optional settings without a default are commented out with an example value that is valid.
    const uncommented = example.replace(/^(\s*)# (mark|dscp|ttl): /gm, '$1$2: ');
    assert.deepEqual(loadConfig({ text: uncommented }).rules.mangle, { mark: { value: 0x100, mask: 0xff00 }, dscp: 46, ttl: 64 });
  });
});

describe('flags from the schema', () => {
  it('every flag is unique and has help naming its setting', () => {
    const flags = configFlags();
    const names = flags.map((f) => f.flag.name);
    assert.equal(new Set(names).size, names.length);
    const help = flagsHelp(flags);
    for (const { flag, path } of flags) assert.match(help, new RegExp(`--${flag.name}\\b[\\s\\S]*?\\[${path.join('.').replaceAll('.*', '[]').replace(/[[\]]/g, '\\$&')}\\]`), flag.name);
    assert.deepEqual(parseArgsOptions(flags)['no-rules'], { type: 'boolean' });
    assert.deepEqual(parseArgsOptions(flags).intercept, { type: 'string', multiple: true });
  });
});

describe('docs/configuration.md reference', () => {
  it('is the one the schema generates (npm run docs:config)', () => {
    const doc = readFileSync(CONFIGURATION_DOC, 'utf8');
    assert.ok(doc.includes(configReference()), 'docs/configuration.md is stale: run npm run docs:config');
    assert.equal(withReference(doc), doc);
    for (const path of settingPaths(CONFIG_SCHEMA, '', [])) assert.ok(doc.includes(`| \`${path}\` |`), `${path} in the reference`);
  });

  it('its example file is valid', () => {
    const doc = readFileSync(CONFIGURATION_DOC, 'utf8');
    const yamlBlock = /```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(yamlBlock, 'docs/configuration.md has a yaml example');
    assert.ok(parse(yamlBlock));
    const config = loadConfig({ file: 'docs/configuration.md', text: yamlBlock });
    assert.deepEqual(config.listeners.map((l) => [l.name, l.port, l.upstream]), [['web', 8000, 'transparent'], ['dns', 8053, 'direct']]);
  });
});
