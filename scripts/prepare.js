// npm's prepare step (npm ci, npm pack, and installing the package from a git URL): build dist/ and
// the man page. A global install from a git URL (npm install -g git+https://...) runs this step in
// a clone whose dependencies npm did not install (npm/cli#8440): install them there first, dev
// dependencies included (tsc), as a plain local install, then build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
// npm runs scripts with npm_execpath set to its own CLI; fall back to npm on PATH.
const npm = process.env.npm_execpath ? [process.execPath, process.env.npm_execpath] : ['npm'];

function run(args, env = process.env) {
  const [command, ...rest] = [...npm, ...args];
  const result = spawnSync(command, rest, { cwd: root, env, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

if (!existsSync(new URL('../node_modules/typescript/package.json', import.meta.url))) {
  console.error('prepare: the dependencies are not installed (a global install from a git URL): installing them here to build');
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_config_(global|location|prefix)$/i.test(key)));
  run(['ci', '--include=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], env);
}
run(['run', '--silent', 'build']);
