import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { busiestFlows, topN, type TcpFlowSnapshot } from '../../../src/dataplane/tcp/flows.js';

const flow = (id: number, up: number, down: number, pid?: number): TcpFlowSnapshot => ({
  id,
  client: { family: 4, address: '198.51.100.10', port: 40_000 + id },
  originalDestination: { family: 4, address: '203.0.113.20', port: 80 },
  bytesFromClient: up,
  bytesFromServer: down,
  ageMs: 10,
  connected: true,
  ...(pid !== undefined ? { pid } : {}),
});

describe('busiest flows', () => {
  it('topN keeps the largest, largest first, ties in the order seen', () => {
    assert.deepEqual(topN([5, 1, 9, 3, 9, 7], 3, (n) => n), [9, 9, 7]);
    assert.deepEqual(topN([1, 2], 5, (n) => n), [2, 1]);
    assert.deepEqual(topN([1, 2], 0, (n) => n), []);
    const ties = topN([{ k: 1, n: 'a' }, { k: 1, n: 'b' }, { k: 1, n: 'c' }], 2, (x) => x.k);
    assert.deepEqual(ties.map((x) => x.n), ['a', 'b']);
  });

  it('merges the lists of several workers by bytes both ways', () => {
    const top = busiestFlows([[flow(1, 10, 10, 100), flow(2, 500, 0, 100)], [flow(1, 0, 300, 200), flow(2, 1, 1, 200)]], 2);
    assert.deepEqual(top.map((f) => [f.pid, f.id]), [[100, 2], [200, 1]]);
  });
});
