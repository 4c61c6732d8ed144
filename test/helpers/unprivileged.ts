/**
 * A copy of the built program that another user can read. Tests that run tproxy as uid 65534 need
 * it: CI's clone may sit under a directory only root can enter (mktemp -d is 0700). Only what the
 * program loads is copied: bin/, dist/src/, package.json and the runtime packages.
 */
import { chmodSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PARTS = ['bin', 'dist/src', 'package.json', 'node_modules/koffi', 'node_modules/@koromix', 'node_modules/ipaddr.js', 'node_modules/yaml', 'node_modules/prom-client', 'node_modules/@opentelemetry', 'node_modules/tdigest', 'node_modules/bintrees'];

export interface UnprivilegedCopy {
  readonly bin: string;
  readonly agent: string;
  remove(): void;
}

export function unprivilegedCopy(): UnprivilegedCopy {
  const dir = mkdtempSync(join(tmpdir(), 'tproxy-unprivileged-'));
  chmodSync(dir, 0o755);
  for (const part of PARTS) cpSync(join(ROOT, part), join(dir, part), { recursive: true });
  return {
    bin: join(dir, 'bin/tproxy.js'),
    agent: join(dir, 'dist/src/lab/agent.js'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
