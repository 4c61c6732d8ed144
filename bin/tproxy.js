#!/usr/bin/env node
// The tproxy command. The code lives in dist/ (built by `npm run build`, done by scripts/setup.sh).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
const io = new URL('../dist/src/cli/io.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('tproxy: not built yet: run `bash scripts/setup.sh` (or `npm ci && npm run build`) first\n');
  process.exit(1);
}
const { main } = await import(entry.href);
const { processIo } = await import(io.href);
const code = await main(process.argv.slice(2), processIo);
process.exitCode = code;
if (code !== 0) process.exit(code);
