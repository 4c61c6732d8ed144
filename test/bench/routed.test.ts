// The routed listener of the bench: its configuration loads as tproxy would load it, holds the
// 10,000 prefixes, never sniffs (no name routes), and sends the lab's flows to the default outbound
// only after a full lookup (no prefix holds the lab's server), while a listed address is rejected.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROUTED_PREFIXES, writeRoutedConfig } from '../../src/bench/routed.js';
import { listFileReader } from '../../src/cli/selection.js';
import { loadConfig } from '../../src/core/config/document.js';
import { routingOf } from '../../src/core/config/routing-of.js';
import { RouteTable } from '../../src/core/route/table.js';
import { LAB_ADDRESSES } from '../../src/lab/topology.js';

test('the routed bench listener: 10,000 prefixes, no sniff, the lab server misses them all', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tproxy-routed-test-'));
  try {
    const file = writeRoutedConfig(dir, 8003, [80, 5201]);
    const config = loadConfig({ file, text: readFileSync(file, 'utf8'), readFile: listFileReader(file) });
    const [routing] = routingOf(config);
    assert.ok(routing);
    const prefixes = readFileSync(join(dir, 'country.txt'), 'utf8').trim().split('\n');
    assert.equal(prefixes.length, ROUTED_PREFIXES);
    const table = RouteTable.compile(routing);
    const flow = { protocol: 'tcp' as const, source: LAB_ADDRESSES.client.ipv4, destination: LAB_ADDRESSES.server.ipv4, destinationPort: 80 };
    const decision = table.decideUnnamed(flow);
    assert.notEqual(decision, 'sniff');
    assert.equal(decision === 'sniff' ? undefined : decision.route, undefined);
    const listed = prefixes[1234]!.split('/')[0]!;
    const hit = table.decideUnnamed({ ...flow, destination: listed });
    assert.equal(hit === 'sniff' ? undefined : hit.route, 'country');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
