#!/usr/bin/env node
// The tproxy command. The code lives in dist/ (built by `npm run build`: by scripts/setup.sh in a
// clone, by npm's prepare step when a tarball is packed or a git URL installed).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
const io = new URL('../dist/src/cli/io.js', import.meta.url);
if (!existsSync(entry)) {
  const clone = existsSync(new URL('../scripts/setup.sh', import.meta.url));
  process.stderr.write(
    clone
      ? 'tproxy: not built yet: run `bash scripts/setup.sh` (or `npm ci && npm run build`) first\n'
      : `tproxy: this installation has no dist/ (the compiled program) in ${new URL('..', import.meta.url).pathname}: it was installed without its build step. Install a packed tarball (npm pack) or a git URL (npm install -g git+https://...), whose prepare step builds it\n`,
  );
  process.exit(1);
}
// `tproxy run` handles its signals from its first line; a SIGHUP (systemd's reload) that comes
// while the modules load must not kill it with the default action. Nothing to reload yet: the
// configuration is read after this.
const beforeRun = () => undefined;
if (process.argv[2] === 'run') process.on('SIGHUP', beforeRun);
const { main } = await import(entry.href);
const { processIo } = await import(io.href);
const code = await main(process.argv.slice(2), processIo);
process.off('SIGHUP', beforeRun);
process.exitCode = code;
if (code !== 0) process.exit(code);
