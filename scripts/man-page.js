// Writes the man page (man/tproxy.1) from the built CLI: the same commands, options and help text
// as `tproxy --help`. Part of `npm run build`; package.json's "man" field installs the page.
import { mkdirSync, writeFileSync } from 'node:fs';

const { manPageText } = await import(new URL('../dist/src/cli/main.js', import.meta.url).href);
const dir = new URL('../man/', import.meta.url);
mkdirSync(dir, { recursive: true });
writeFileSync(new URL('tproxy.1', dir), manPageText());
