// npm's prepare step (npm ci, npm pack, and installing the package from a git URL): build dist/ and
// the man page.
//
// A global install from a git URL (npm install -g git+https://...) first runs this step through an
// npm that wrongly inherits --global (npm/cli#8440): instead of installing the dependencies in the
// temporary clone, it moves the package directory the real install is filling aside (to
// .NAME-XXXX, deleted when it finishes) and links the clone into the global prefix in its place.
// So, in that case: install the dependencies in the clone (dev included: tsc) as a plain local
// install, build, and put the real directory back where the link is. Otherwise the real install
// loses the dependencies it extracted and writes into the clone, which npm deletes afterwards.
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
// npm runs scripts with npm_execpath set to its own CLI; fall back to npm on PATH.
const npm = process.env.npm_execpath ? [process.execPath, process.env.npm_execpath] : ['npm'];

function run(args, env = process.env) {
  const [command, ...rest] = [...npm, ...args];
  const result = spawnSync(command, rest, { cwd: root, env, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

/** The global package directory when it is a link to this clone (npm/cli#8440), else undefined. */
function linkToThisClone() {
  const prefix = process.env.npm_config_prefix;
  if (!/^true$/i.test(process.env.npm_config_global ?? '') || !prefix) return undefined;
  const { name } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const link = join(prefix, 'lib', 'node_modules', name);
  if (!existsSync(link) || !lstatSync(link).isSymbolicLink() || realpathSync(link) !== realpathSync(root)) return undefined;
  return { link, name, dir: join(prefix, 'lib', 'node_modules') };
}

if (!existsSync(new URL('../node_modules/typescript/package.json', import.meta.url))) {
  console.error('prepare: the dependencies are not installed (a global install from a git URL): installing them here to build');
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_config_(global|location|prefix)$/i.test(key)));
  run(['ci', '--include=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], env);
}
run(['run', '--silent', 'build']);

const linked = linkToThisClone();
if (linked) {
  const { link, name, dir } = linked;
  const moved = readdirSync(dir)
    .filter((entry) => entry.startsWith(`.${name}-`))
    .map((entry) => join(dir, entry))
    .filter((path) => lstatSync(path).isDirectory())
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  unlinkSync(link);
  if (moved) renameSync(moved, link);
  console.error(`prepare: ${link} linked this temporary clone (npm/cli#8440): ${moved ? `moved ${moved} back` : 'link removed'}`);
}
