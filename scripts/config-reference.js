// Regenerates the configuration reference in README.md from the schema (src/core/config/sections/).
// Run with `npm run docs:config` (it builds first); test/core/config/readme.test.ts fails when stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { withReference } from '../dist/src/core/config/reference.js';

const path = new URL('../README.md', import.meta.url);
const readme = readFileSync(path, 'utf8');
const next = withReference(readme);
if (next === undefined) {
  console.error('README.md lacks the config-reference markers');
  process.exit(1);
}
if (next !== readme) writeFileSync(path, next);
console.log(next === readme ? 'README.md: configuration reference up to date' : 'README.md: configuration reference regenerated');
