// What an idle flow holds in the splice engine: its two sockets, no pipes (taken only while bytes
// are in flight). Counted in the worker's /proc/PID/fd.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { JsonLines } from '../../../src/lab/json-lines.js';
import { LAB_ADDRESSES } from '../../../src/lab/topology.js';
import { TCP_HOLD } from '../../helpers/paths.js';
import { startProxyLab, type LogLine, type ProxyLab } from '../../helpers/proxy-lab.js';

const FLOWS = 40;

describe('TCP splice engine descriptors per idle flow (root)', () => {
  let p: ProxyLab;
  before(async () => {
    p = await startProxyLab(['--intercept', 'tcp:81', '--workers', '1', '--table', 'tproxy_idlefd']);
  });
  after(() => p.lab.destroy());

  it(`holds ${FLOWS} idle flows with two descriptors each, not six`, async () => {
    const ready = p.logs.find((l) => l.type === 'ready') as LogLine & { tcpWorkers: number[] };
    const worker = ready.tcpWorkers[0] ?? -1;
    const descriptors = (): number => readdirSync(`/proc/${worker}/fd`).length;
    const base = descriptors();
    const holder = p.lab.spawn('client', [process.execPath, TCP_HOLD, LAB_ADDRESSES.server.ipv4, '81', `${FLOWS}`, '--timeout-ms', '20000']);
    const lines = new JsonLines<{ event: string; open?: number }>(holder.child.stdout!);
    try {
      const held = await lines.waitFor((l) => l.event === 'held', 30_000, 'idle connections opened');
      assert.equal(held.open, FLOWS);
      // Accepted and connected upstream: every flow's two sockets are open.
      const deadline = Date.now() + 10_000;
      while (descriptors() - base < 2 * FLOWS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 200));
      // The pool keeps a few empty pipes for the next bytes (shared by all flows, not per flow).
      const added = descriptors() - base;
      assert.ok(added >= 2 * FLOWS && added <= 2 * FLOWS + 8, `${added} descriptors for ${FLOWS} idle flows: two sockets each, pipes only in the shared pool`);
    } finally {
      holder.child.stdin?.end();
      await holder.exited;
    }
  });
});
