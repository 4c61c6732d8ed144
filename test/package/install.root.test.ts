// The package as users get it: `npm pack` carries what the installed tproxy runs and nothing else,
// and the tarball installed into a fresh prefix gives a working `tproxy` (version, config, shell
// completion, man page, and the demo, which starts the proxy, the lab agents and every worker).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** What the tarball may hold; anything else (tests, sources, source maps, the bench) is a failure. */
const ALLOWED = [/^package\.json$/, /^web\/dashboard\.(html|js|css)$/, /^README\.md$/, /^LICENSE$/, /^bin\/tproxy\.js$/, /^man\/tproxy\.1$/, /^packaging\/tproxy\.service$/, /^dist\/src\/(?!bench\/).*\.(js|d\.ts)$/];

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

describe('npm package (root)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tproxy-package-'));
  const prefix = join(dir, 'prefix');
  const tproxy = join(prefix, 'bin', 'tproxy');
  let files: string[] = [];
  let tarball = '';
  after(() => rmSync(dir, { recursive: true, force: true }));

  before(() => {
    // --ignore-scripts: pack the build the suite runs from (prepare would rebuild it under the running tests).
    const out = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    const [pack] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
    assert.ok(pack);
    files = pack.files.map((f) => f.path).sort();
    tarball = join(dir, pack.filename);
  });

  it('carries every compiled module of the installed CLI and library, and nothing it does not run', () => {
    const outside = files.filter((f) => !ALLOWED.some((pattern) => pattern.test(f)));
    assert.deepEqual(outside, [], 'files the package must not carry');
    const runtime = walk(join(ROOT, 'dist', 'src'))
      .map((f) => relative(ROOT, f))
      .filter((f) => ALLOWED.some((pattern) => pattern.test(f)));
    assert.deepEqual(runtime.filter((f) => !files.includes(f)), [], 'compiled modules missing from the package');
    for (const needed of ['bin/tproxy.js', 'man/tproxy.1', 'packaging/tproxy.service', 'dist/src/cli/main.js', 'dist/src/lab/agent.js', 'dist/src/dataplane/tcp/worker-main.js', 'dist/src/dataplane/udp/worker.js', 'web/dashboard.html', 'web/dashboard.js', 'web/dashboard.css']) assert.ok(files.includes(needed), needed);
  });

  it('installs from the tarball into a fresh prefix: tproxy on PATH, its man page linked', () => {
    const install = spawnSync('npm', ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: dir, encoding: 'utf8', timeout: 240_000 });
    assert.equal(install.status, 0, install.stderr);
    assert.ok(existsSync(join(prefix, 'share', 'man', 'man1', 'tproxy.1')), 'man page installed');
    assert.equal(execFileSync(tproxy, ['--version'], { cwd: dir, encoding: 'utf8' }), `${VERSION}\n`);
    assert.ok(!existsSync(join(prefix, 'lib', 'node_modules', 'tproxy', 'node_modules', 'typescript')), 'no dev dependencies installed');
  });

  it('the installed tproxy checks its own example configuration from standard input', () => {
    const example = execFileSync(tproxy, ['config', 'example'], { cwd: dir, encoding: 'utf8' });
    const check = spawnSync(tproxy, ['config', 'check', '-'], { cwd: dir, input: example, encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);
    assert.match(check.stdout, /^<stdin>: valid\n/);
  });

  it('the installed tproxy prints a completion script bash parses', () => {
    const script = execFileSync(tproxy, ['completion', 'bash'], { cwd: dir, encoding: 'utf8' });
    const parsed = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' });
    assert.equal(parsed.status, 0, parsed.stderr);
  });

  it('the installed tproxy runs the demo: TCP and UDP, IPv4 and IPv6, through its own workers', () => {
    const run = spawnSync(tproxy, ['demo', '--json'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    assert.equal(run.status, 0, run.stderr);
    const result = JSON.parse(run.stdout) as { ok: boolean; flows: { transport: string; family: number }[] };
    assert.equal(result.ok, true);
    assert.deepEqual(result.flows.map((f) => `${f.transport}/${f.family}`).sort(), ['tcp/4', 'tcp/6', 'udp/4', 'udp/6']);
  });
});
