// Runs the compiled tests with node's test runner (the node that runs this script). `unit` needs no
// privileges; `root` tests build network namespaces (each test its own, with a unique prefix) and
// run concurrently; `all` is both; `lines` is what runs on every other supported Node.js line: the
// unit tests and one namespace test per data-plane engine (TCP splice, TCP stream, UDP).
// Files after the selection narrow it: `node scripts/run-tests.js root test/cli/doctor.root.test.ts`.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const which = process.argv[2] ?? 'all';
const root = new URL('../dist/test/', import.meta.url).pathname;

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

const ENGINE_TESTS = ['dataplane/tcp/relay.root.test.js', 'dataplane/tcp/relay-stream.root.test.js', 'dataplane/udp/relay.root.test.js'].map((f) => join(root, f));
const SELECTIONS = {
  all: () => true,
  unit: (f) => !f.endsWith('.root.test.js'),
  root: (f) => f.endsWith('.root.test.js'),
  lines: (f) => !f.endsWith('.root.test.js') || ENGINE_TESTS.includes(f),
};
const select = SELECTIONS[which];
if (!select) {
  console.error(`run-tests: unknown selection "${which}": use ${Object.keys(SELECTIONS).join(', ')}`);
  process.exit(2);
}
// Files named after the selection (test/x.test.ts, dist/test/x.test.js or x.test.js) narrow it.
const named = process.argv.slice(3).map((f) => f.replace(/^(dist\/)?test\//, '').replace(/\.ts$/, '.js'));
const files = walk(root)
  .filter((f) => f.endsWith('.test.js'))
  .filter(select)
  .filter((f) => named.length === 0 || named.some((n) => f.endsWith(`/${n}`)))
  .sort();
if (files.length === 0) {
  console.error(`run-tests: no ${which} tests${named.length ? ` named ${named.join(', ')}` : ''} found under ${root}: run npm run build first`);
  process.exit(1);
}
if (which !== 'unit' && process.getuid?.() !== 0) {
  console.error('run-tests: namespace tests need root (they create network namespaces)');
  process.exit(1);
}
const tap = join(mkdtempSync(join(tmpdir(), 'tproxy-tests-')), 'results.tap');
const result = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=4', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...files],
  { stdio: 'inherit' },
);
// The plain closing line, read from the TAP summary.
const summary = readFileSync(tap, 'utf8');
rmSync(dirname(tap), { recursive: true, force: true });
const count = (key) => Number(new RegExp(`^# ${key} (\\d+)$`, 'm').exec(summary)?.[1] ?? 0);
console.log(`tests: ${count('pass')} passed, ${count('fail')} failed, ${count('skipped')} skipped`);
process.exit(result.status ?? 1);
