// Signals at the edges of `tproxy run`: a second stop signal during the stop (and during the
// start) stops at once and still removes the rules; a SIGHUP during the start is applied once
// started; none of them meets its default action.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { JsonLines } from '../../src/lab/json-lines.js';
import { LAB_ADDRESSES as A, Lab, type SpawnedProcess } from '../../src/lab/topology.js';
import { startEchoServer } from '../helpers/lab-flows.js';
import { BIN, TCP_HOLD } from '../helpers/paths.js';

type Line = { type: string; signal?: string; action?: string; [key: string]: unknown };

describe('tproxy run and its signals (root)', () => {
  let lab: Lab;
  let dir: string;
  before(async () => {
    lab = await Lab.create();
    dir = mkdtempSync(join(tmpdir(), 'tproxy-signals-'));
    await startEchoServer(lab);
  });
  after(async () => {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const config = (): string => {
    const file = join(dir, 'run.yaml');
    writeFileSync(file, 'listeners:\n  - name: web\n    port: 8700\n    intercept: [tcp:80, udp:80]\nrules: { table: tproxy_sig, routeTable: 170, rulePriority: 9170 }\ntcp: { workers: 1 }\nshutdown: { graceMs: 60000 }\n');
    return file;
  };
  const start = (): { proxy: SpawnedProcess; lines: JsonLines<Line> } => {
    const proxy = lab.spawn('router', [process.execPath, BIN, 'run', '--config', config(), '--log-format', 'json']);
    return { proxy, lines: new JsonLines<Line>(proxy.child.stderr!) };
  };
  const signalActions = (lines: JsonLines<Line>): string[] => lines.items.filter((l) => l.type === 'signal').map((l) => `${l.signal} ${l.action}`);
  const nothingLeft = async (): Promise<void> => {
    assert.equal((await lab.run('router', ['nft', 'list', 'tables'])).stdout.trim(), '', 'no table left');
    for (const family of ['-4', '-6']) assert.doesNotMatch((await lab.run('router', ['ip', family, 'rule'])).stdout, /9170/, `no ip ${family} rule left`);
  };

  it('a second stop signal during the stop resets the flows at once and still removes the rules; SIGHUP meanwhile is ignored', async () => {
    const { proxy, lines } = start();
    await lines.waitFor((l) => l.type === 'ready', 60_000, 'ready');
    // A connection that stays open: the stop would wait its 60 s grace for it.
    const hold = lab.spawn('client', [process.execPath, TCP_HOLD, A.server.ipv4, '80', '1']);
    const held = await new JsonLines<{ event: string; open?: number }>(hold.child.stdout!).waitFor((l) => l.event === 'held', 10_000, 'connection held');
    assert.equal(held.open, 1);
    proxy.child.kill('SIGTERM');
    await lines.waitFor((l) => l.type === 'stopping', 10_000, 'stopping');
    proxy.child.kill('SIGHUP');
    await lines.waitFor((l) => l.type === 'signal' && l.signal === 'SIGHUP', 10_000, 'SIGHUP seen');
    const before = Date.now();
    proxy.child.kill('SIGINT');
    assert.equal(await proxy.exited, 0);
    assert.ok(Date.now() - before < 30_000, 'did not wait for the grace period');
    await lines.closed();
    assert.deepEqual(signalActions(lines), ['SIGTERM stop', 'SIGHUP ignored', 'SIGINT stop-now']);
    assert.equal((lines.find((l) => l.type === 'stopped') as { flowsReset?: number } | undefined)?.flowsReset, 1, 'the held flow was reset');
    assert.ok(lines.find((l) => l.type === 'rules.removed'));
    hold.child.stdin?.end();
    await hold.exited;
    await nothingLeft();
  });

  it('a SIGHUP during the start is applied once started, and the daemon runs on', async () => {
    const { proxy, lines } = start();
    // The first line of run is written before anything is opened: the start is in progress.
    await lines.waitFor((l) => l.type === 'privileges', 30_000, 'start begun');
    proxy.child.kill('SIGHUP');
    await lines.waitFor((l) => l.type === 'reload.applied', 60_000, 'the queued reload applied');
    assert.ok(lines.items.findIndex((l) => l.type === 'ready') < lines.items.findIndex((l) => l.type === 'reload'), 'reloaded after the start');
    assert.equal(proxy.child.exitCode, null, 'still running');
    proxy.child.kill('SIGTERM');
    assert.equal(await proxy.exited, 0);
    await lines.closed();
    assert.deepEqual(signalActions(lines), ['SIGHUP reload-queued', 'SIGHUP reload', 'SIGTERM stop']);
    await nothingLeft();
  });

  it('two stop signals during the start: it finishes starting, stops at once, and removes the rules', async () => {
    const { proxy, lines } = start();
    await lines.waitFor((l) => l.type === 'privileges', 30_000, 'start begun');
    proxy.child.kill('SIGTERM');
    await lines.waitFor((l) => l.type === 'signal', 10_000, 'SIGTERM seen');
    proxy.child.kill('SIGTERM');
    assert.equal(await proxy.exited, 0);
    await lines.closed();
    assert.deepEqual(signalActions(lines), ['SIGTERM stop', 'SIGTERM stop-now']);
    assert.ok(lines.find((l) => l.type === 'rules.applied'), 'the start finished');
    assert.ok(lines.find((l) => l.type === 'rules.removed'));
    await nothingLeft();
  });
});
