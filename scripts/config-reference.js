// Regenerates the configuration reference in docs/configuration.md from the schema (src/core/config/sections/).
// Run with `npm run docs:config` (it builds first); test/core/config/example.test.ts fails when stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { withReference } from '../dist/src/core/config/reference.js';

const path = new URL('../docs/configuration.md', import.meta.url);
const doc = readFileSync(path, 'utf8');
const next = withReference(doc);
if (next === undefined) {
  console.error('docs/configuration.md lacks the config-reference markers');
  process.exit(1);
}
if (next !== doc) writeFileSync(path, next);
console.log(next === doc ? 'docs/configuration.md: configuration reference up to date' : 'docs/configuration.md: configuration reference regenerated');
