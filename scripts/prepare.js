// npm's prepare step (npm ci, npm pack, and installing the package from a git URL): build dist/ and
// the man page.
//
// A global install from a git URL (npm install -g git+https://...) runs this step through an npm
// that wrongly inherits --global (npm/cli#8440): it links the temporary clone into the global
// prefix instead of installing the clone's dependencies there. So, in that case: install them in
// the clone, dev dependencies included (tsc), as a plain local install; build; and remove the link,
// which would otherwise send the real install into the clone that npm deletes afterwards, and put
// back the empty directory the real install extracts into.
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, realpathSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

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

const prefix = process.env.npm_config_prefix;
if (/^true$/i.test(process.env.npm_config_global ?? '') && prefix) {
  const { name } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const link = join(prefix, 'lib', 'node_modules', name);
  if (existsSync(link) && lstatSync(link).isSymbolicLink() && realpathSync(link) === realpathSync(root)) {
    console.error(`prepare: replacing ${link}, a link to this temporary clone (npm/cli#8440), with the empty directory the install expects`);
    unlinkSync(link);
    mkdirSync(link);
  }
}
