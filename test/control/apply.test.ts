import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RulesController } from '../../src/control/apply.js';
import { isTproxyError } from '../../src/core/errors.js';
import { singleListenerRules } from '../../src/core/rules/config.js';
import { planRules } from '../../src/core/rules/plan.js';
import { renderNftScript } from '../../src/core/rules/render-nft.js';
import { FakeHost } from '../helpers/fake-host.js';

const plan = planRules(singleListenerRules([{ transport: 'tcp', ports: [{ from: 80, to: 80 }] }]));
const READS = ['ip -N -j -4 rule show', 'ip -N -j -4 route show table all', 'ip -N -j -6 rule show', 'ip -N -j -6 route show table all'];
const controller = (host: FakeHost, alive: readonly number[] = []): RulesController => new RulesController(host, { backend: 'nft', isProcessAlive: (pid) => alive.includes(pid) });

describe('RulesController (nftables backend, fake host)', () => {
  it('checks, reads, checks collisions, adds routes and rules, commits the table in one transaction, reads back', async () => {
    const host = new FakeHost({ plans: [plan] });
    const result = await controller(host).apply(plan);
    assert.deepEqual(result, { changed: true, warnings: [] });
    assert.deepEqual(host.lines(), [
      'nft --check -f -',
      'nft list table inet tproxy_rules',
      ...READS,
      'nft -j list ruleset',
      'ip -4 route add local 0.0.0.0/0 dev lo table 100',
      'ip -6 route add local ::/0 dev lo table 100',
      'ip -4 rule add fwmark 0x00000001/0x00000001 lookup 100 priority 9000',
      'ip -6 rule add fwmark 0x00000001/0x00000001 lookup 100 priority 9000',
      'nft -f -',
      'nft list table inet tproxy_rules',
      'nft -j list table inet tproxy_rules',
      ...READS,
    ]);
    assert.equal(host.calls[0]?.input, renderNftScript(plan));
    assert.equal(host.calls.find((c) => c.argv.join(' ') === 'nft -f -')?.input, renderNftScript(plan));
  });

  it('touches nothing when everything is already in place (idempotent, counters kept)', async () => {
    const host = new FakeHost({ plans: [plan], applied: true });
    assert.deepEqual(await controller(host).apply(plan), { changed: false, warnings: [] });
    assert.ok(!host.lines().some((l) => l === 'nft -f -' || / (add|del) /.test(l)), host.lines().join('\n'));
  });

  it('replaces the rules of a tproxy run that died (stale state), recording the new owner', async () => {
    const host = new FakeHost({ plans: [plan], applied: true, owner: 111 });
    const result = await controller(host, []).apply(plan, { owner: 222 });
    assert.deepEqual(result, { changed: true, replaced: { owner: 111, stale: true }, warnings: [] });
    assert.match(host.calls.find((c) => c.argv.join(' ') === 'nft -f -')?.input ?? '', /priority=9000 owner=222"/);
    assert.ok(!host.lines().some((l) => / add /.test(l)), 'rules and routes were already there');
  });

  it('refuses to take over the rules of a running tproxy run', async () => {
    const host = new FakeHost({ plans: [plan], applied: true, owner: 111 });
    await assert.rejects(controller(host, [111]).apply(plan, { owner: 222 }), (e: unknown) => isTproxyError(e, 'ERR_CONFLICT') && /belong to a running tproxy \(pid 111\)/.test(e.message));
    assert.ok(!host.lines().includes('nft -f -'));
  });

  it('refuses a table with our name that it did not create, for apply and cleanup', async () => {
    const host = new FakeHost({ plans: [plan], foreignTable: true });
    const foreign = (e: unknown): boolean => isTproxyError(e, 'ERR_CONFLICT') && /table inet tproxy_rules exists but was not created by tproxy/.test(e.message);
    await assert.rejects(controller(host).apply(plan), foreign);
    await assert.rejects(controller(host).remove(plan), foreign);
    assert.ok(!host.lines().some((l) => l === 'nft -f -' || / (add|del) /.test(l)));
  });

  it('refuses a collision before changing anything', async () => {
    const host = new FakeHost({ plans: [plan], foreignRules: [{ priority: 9000, src: 'all', table: '200' }] });
    await assert.rejects(controller(host).apply(plan), (e: unknown) => isTproxyError(e, 'ERR_CONFLICT') && /refusing to apply: rule priority 9000 is already used by `ip -4 rule 9000: from all lookup 200`: choose another --rule-priority, e.g. 9001/.test(e.message));
    assert.ok(!host.lines().some((l) => l === 'nft -f -' || / (add|del) /.test(l)));
  });

  const count = (host: FakeHost): string => `rules ${host.rules[4].length}/${host.rules[6].length}, routes ${host.routes[4].length}/${host.routes[6].length}, table ${host.table === undefined ? 'none' : 'present'}`;

  it('rolls back the routes and rules it added when the nft transaction fails', async () => {
    const host = new FakeHost({ plans: [plan], failures: [['nft -f -', 'Error: Could not process rule: No such file or directory\n    meta nfproto ipv4 tcp dport 80 tproxy ip to :8000\n                                   ^^^^^^^^^^^^^^^^^^']] });
    await assert.rejects(controller(host).apply(plan), (e: unknown) => isTproxyError(e, 'ERR_KERNEL_FEATURE') && /CONFIG_NFT_TPROXY/.test(e.message) && !/CONFIG_NFT_SOCKET/.test(e.message) && /rolled back: the host is as before/.test(e.message) && e.details.rolledBack === true);
    assert.equal(count(host), 'rules 0/0, routes 0/0, table none');
    const tail = host.lines().slice(host.lines().indexOf('nft -f -'));
    assert.deepEqual(tail, [
      'nft -f -',
      'nft -f -',
      'ip -6 rule del fwmark 0x00000001/0x00000001 lookup 100 priority 9000',
      'ip -4 rule del fwmark 0x00000001/0x00000001 lookup 100 priority 9000',
      'ip -6 route del local ::/0 dev lo table 100',
      'ip -4 route del local 0.0.0.0/0 dev lo table 100',
    ]);
    assert.equal(host.calls.filter((c) => c.argv.join(' ') === 'nft -f -')[1]?.input, 'table inet tproxy_rules {}\ndelete table inet tproxy_rules\n', 'the rollback removes the table that was not there');
  });

  it('rolls back to the previous table and policy routing when a step after the commit fails', async () => {
    const previous = planRules({ ...plan.config, routeTable: 7, rulePriority: 7000 });
    const host = new FakeHost({ plans: [previous, plan], applied: true, failures: [['ip -6 rule del fwmark 0x00000001/0x00000001 lookup 7', 'RTNETLINK answers: Operation not supported']] });
    const before = JSON.stringify([host.rules, host.routes]);
    await assert.rejects(controller(host).apply(plan), (e: unknown) => isTproxyError(e, 'ERR_KERNEL_FEATURE') && /rolled back: the host is as before/.test(e.message));
    assert.equal(host.table, previous, 'the previous table is back');
    assert.equal(JSON.stringify([host.rules, host.routes]), before, 'the previous ip rules and routes are back, ours are gone');
    const restore = host.calls.filter((c) => c.argv.join(' ') === 'nft -f -').at(-1)?.input ?? '';
    assert.match(restore, /^table inet tproxy_rules \{\}\ndelete table inet tproxy_rules\ntable inet tproxy_rules \{\n {2}comment "tproxy v1 families=4,6 fwmark=0x1\/0x1 table=7 priority=7000"/);
  });

  it('moves policy routing an earlier apply recorded to the new table and priority', async () => {
    const previous = planRules({ ...plan.config, routeTable: 7, rulePriority: 7000 });
    const host = new FakeHost({ plans: [previous, plan], applied: true });
    assert.equal((await controller(host).apply(plan)).changed, true);
    assert.equal(host.table, plan);
    assert.deepEqual(host.rules[4].map((r) => `${r.priority} ${r.table}`), ['9000 100']);
    assert.deepEqual(host.routes[6].map((r) => r.table), ['100']);
  });

  it('says so when the rollback itself fails, so nothing is silently left half-applied', async () => {
    const host = new FakeHost({ plans: [plan], failures: [['nft -f -', 'Error: Could not process rule: Device or resource busy'], ['ip -4 route del', 'RTNETLINK answers: Operation not permitted']] });
    await assert.rejects(controller(host).apply(plan), (e: unknown) => isTproxyError(e) && /ROLLBACK INCOMPLETE \(ip -4 route del local default table 100: .*\): run tproxy rules cleanup/.test(e.message) && e.details.rolledBack === false);
  });

  it('cleans up the table, every copy of its rules and its routes, also those recorded by an earlier apply', async () => {
    const host = new FakeHost({ plans: [plan], applied: true });
    host.rules[4].push(host.rules[4][0]!);
    const removed = await controller(host).remove(plan);
    assert.deepEqual(removed, { table: true, rules: 3, routes: 2 });
    assert.equal(count(host), 'rules 0/0, routes 0/0, table none');
    assert.equal(host.calls.find((c) => c.argv.join(' ') === 'nft -f -')?.input, 'delete table inet tproxy_rules\n');
  });

  it('succeeds when there is nothing to clean up, and reports a stale owner', async () => {
    const host = new FakeHost({ plans: [plan] });
    assert.deepEqual(await controller(host).remove(plan), { table: false, rules: 0, routes: 0 });
    assert.deepEqual(host.lines(), ['nft list table inet tproxy_rules', ...READS]);
    const stale = new FakeHost({ plans: [plan], applied: true, owner: 5 });
    assert.deepEqual((await controller(stale).remove(plan)).owner, { pid: 5, running: false });
  });

  it('reports status piece by piece with the owner', async () => {
    const host = new FakeHost({ plans: [plan], applied: true, owner: 9 });
    host.rules[6].length = 0;
    const status = await controller(host, [9]).status(plan);
    assert.equal(status.inPlace, false);
    assert.deepEqual(status.owner, { pid: 9, running: true });
    assert.deepEqual(status.pieces.filter((p) => p.state !== 'in place').map((p) => `${p.state} ${p.name}`), ['missing ip -6 rule fwmark 0x00000001/0x00000001 lookup 100 priority 9000']);
  });

  it('maps "Operation not permitted" to a privilege error', async () => {
    const host = new FakeHost({ plans: [plan], failures: [['nft --check', 'Error: Operation not permitted']] });
    await assert.rejects(controller(host).apply(plan), (e: unknown) => isTproxyError(e, 'ERR_PRIVILEGE') && /CAP_NET_ADMIN/.test(e.message));
  });

  it('says which kernel option is missing for the socket expression and for IPv6 policy routing', async () => {
    const socket = new FakeHost({ plans: [plan], failures: [['nft --check', '/dev/stdin:9:24-54: Error: Could not process rule: No such file or directory\n    meta nfproto ipv4 tcp flags & (syn | ack) != syn socket transparent 1 socket wildcard 0 counter\n                                                   ^^^^^^^^^^^^^^^^^^']] });
    await assert.rejects(controller(socket).apply(plan), (e: unknown) => isTproxyError(e, 'ERR_KERNEL_FEATURE') && /CONFIG_NFT_SOCKET \(module nft_socket\)/.test(e.message));
    const ipv6 = new FakeHost({ plans: [plan], failures: [['ip -6 route add', 'RTNETLINK answers: Address family not supported by protocol']] });
    await assert.rejects(controller(ipv6).apply(plan), (e: unknown) => isTproxyError(e, 'ERR_KERNEL_FEATURE') && /IPv6 is disabled on this host .*use --family 4/.test(e.message));
    assert.equal(count(ipv6), 'rules 0/0, routes 0/0, table none', 'the IPv4 route added before was removed again');
  });
});
