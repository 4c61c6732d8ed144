// The bench's C reference relay (--reference-relay) in the lab: compiled as the bench compiles it,
// it relays TPROXY'd connections transparently in both designs, bytes intact both ways and the
// client's FIN passed on, so its stream figures measure a relay that does tproxy's job.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildReferenceRelay, REFERENCE_MODES, startReferenceRelay } from '../../src/bench/reference.js';
import { waitForPort } from '../../src/bench/servers.js';
import { RulesController } from '../../src/control/apply.js';
import { singleListenerRules } from '../../src/core/rules/config.js';
import { planRules } from '../../src/core/rules/plan.js';
import { JsonLines } from '../../src/lab/json-lines.js';
import { Lab, LAB_ADDRESSES } from '../../src/lab/topology.js';
import { ProcessRunner } from '../../src/sys/exec.js';
import { TCP_PEER } from '../helpers/paths.js';

const SERVER_PORT = 81;
const SERVER = LAB_ADDRESSES.server.ipv4;

describe('bench reference relay', () => {
  let lab: Lab;
  let dir: string;
  let binary: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tproxy-reference-'));
    binary = await buildReferenceRelay(dir, new ProcessRunner(), () => {});
    lab = await Lab.create();
    const server = lab.spawn('server', [process.execPath, TCP_PEER, 'server', '--port', `${SERVER_PORT}`]);
    await new JsonLines<{ event: string }>(server.child.stdout!).waitFor((l) => l.event === 'ready', 10_000, 'tcp test server ready');
  });

  after(async () => {
    await lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const client = async <T>(...args: string[]): Promise<T> => {
    const out = await lab.run('client', [process.execPath, TCP_PEER, 'client', ...args], { timeoutMs: 60_000 });
    return JSON.parse(out.stdout.trim().split('\n').pop() ?? '{}') as T;
  };

  for (const [i, mode] of REFERENCE_MODES.entries()) {
    it(`${mode}: relays from the client's address, bytes intact both ways, half-closes passed on`, async () => {
      const port = 8004 + i;
      const relay = startReferenceRelay(lab, binary, port, mode);
      const plan = planRules(singleListenerRules([{ transport: 'tcp', ports: [{ from: SERVER_PORT, to: SERVER_PORT }] }], { port, families: [4] }, { tableName: `tproxy_ref_${mode}` }));
      const rules = new RulesController(lab.runnerFor('router'));
      try {
        await waitForPort(lab, port, 10_000, 'router');
        await rules.apply(plan);
        const peer = await client<{ how: string; seen: { address: string } }>('peer', SERVER, `${SERVER_PORT}`);
        // The server listens dual-stack: IPv4 peers read as v4-mapped addresses.
        assert.equal(peer.seen.address.replace(/^::ffff:/, ''), LAB_ADDRESSES.client.ipv4);
        const bulk = await client<{ how: string; sentBytes: number; receivedBytes: number; sentSha256: string; receivedSha256: string }>('bulk', SERVER, `${SERVER_PORT}`, `${8 * 2 ** 20}`);
        assert.equal(bulk.how, 'end');
        assert.equal(bulk.receivedBytes, bulk.sentBytes);
        assert.equal(bulk.receivedSha256, bulk.sentSha256);
        const half = await client<{ how: string; receivedBytes: number; intact: boolean }>('halfclose', SERVER, `${SERVER_PORT}`, `${2 ** 20}`);
        assert.deepEqual(half, { how: 'end', receivedBytes: 2 ** 20, intact: true });
        // The rule counter proves the relay was in the path (forwarding would pass all of the above).
        const status = await rules.status(plan);
        assert.ok(status.pieces.some((p) => p.kind === 'rule' && p.name.includes('intercept') && (p.counter?.packets ?? 0) > 0));
      } finally {
        await rules.remove(plan);
        relay.child.kill('SIGTERM');
        await relay.exited;
      }
    });
  }
});
