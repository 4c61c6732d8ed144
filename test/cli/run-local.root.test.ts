// Interception of the host's own traffic (`tproxy run --local`): locally generated packets are marked
// in the output route chain, rerouted through lo into the tproxy rule, and the proxy's own upstream
// traffic (its SO_MARK) is excluded, so there is no loop.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LAB_ADDRESSES as A, Lab } from '../../src/lab/topology.js';
import { probe, startEchoServer, startProxy, type ProxyLine } from '../helpers/lab-flows.js';
import type { JsonLines } from '../../src/lab/json-lines.js';
import { BIN } from '../helpers/paths.js';
import { unprivilegedCopy } from '../helpers/unprivileged.js';

const ARGS = ['--local', '--local-exclude-uid', '65534', '--intercept', 'tcp:80', '--intercept', 'udp:80', '--listen', '8100', '--table', 'tpx_local', '--route-table', '126', '--rule-priority', '9126'];

interface StatusJson {
  readonly inPlace: boolean;
  readonly pieces: readonly { name: string; counter?: { packets: number } }[];
}

describe('interception of the host\'s own traffic (root)', () => {
  let lab: Lab;
  let lines: JsonLines<ProxyLine>;
  const accepts = (address: string): ProxyLine[] => lines.items.filter((l) => (l.type === 'tcp.accept' || l.type === 'udp.session.open') && l.originalDestination?.address === address);
  const counted = async (): Promise<Record<string, number>> => {
    const status = JSON.parse((await lab.run('router', [process.execPath, BIN, 'rules', 'status', '--json', ...ARGS])).stdout) as StatusJson;
    assert.equal(status.inPlace, true);
    return Object.fromEntries(status.pieces.filter((p) => p.counter).map((p) => [p.name, p.counter?.packets ?? 0]));
  };

  before(async () => {
    lab = await Lab.create();
    await startEchoServer(lab);
    lines = (await startProxy(lab, ARGS)).lines;
  });
  after(() => lab.destroy());

  it('intercepts TCP and UDP of the router itself over IPv4 and IPv6, once each: the upstream is not intercepted again', async () => {
    for (const [transport, address, routerAddress] of [['tcp', A.server.ipv4, A.routerServerSide.ipv4], ['udp', A.server.ipv6, A.routerServerSide.ipv6]] as const) {
      const result = await probe(lab, 'router', transport, address, `local ${transport}`);
      assert.equal(result.ok, true, `${transport} ${address}: ${result.reason ?? ''}`);
      assert.equal(result.from?.address, address, 'the reply came from the original destination');
      assert.equal(result.reply?.seen.address, routerAddress);
      const seen = await lines.waitFor((l) => accepts(address).includes(l), 5000, `the proxy intercepting the local ${transport} flow`);
      assert.equal(seen.client?.address, routerAddress, 'the client is the router itself');
      assert.equal(accepts(address).length, 1, 'intercepted exactly once: no loop through the proxy\'s own upstream connection');
    }
    const counters = await counted();
    assert.ok((counters['output: tproxy: local: reroute tcp ipv4'] ?? 0) >= 1, JSON.stringify(counters));
    assert.ok((counters['output: tproxy: local: reroute udp ipv6'] ?? 0) >= 1);
    assert.ok((counters['output: tproxy: local: upstream traffic of the proxy'] ?? 0) >= 2, 'the proxy\'s upstream packets took the early return');
    assert.ok((counters['prerouting: tproxy: intercept tcp ipv4'] ?? 0) >= 1, 'rerouted through lo into the tproxy rule');
  });

  it('still intercepts forwarded traffic from the client', async () => {
    const before = accepts(A.server.ipv4).length;
    assert.equal((await probe(lab, 'client', 'tcp', A.server.ipv4, 'forwarded')).ok, true);
    await lines.waitFor(() => accepts(A.server.ipv4).length > before, 5000, 'the proxy intercepting the forwarded flow');
  });

  it('leaves the traffic of an excluded user alone', async () => {
    const copy = unprivilegedCopy();
    const before = accepts(A.server.ipv4).length;
    const result = await lab.run('router', ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, copy.agent, 'probe', 'tcp', A.server.ipv4, '80', 'excluded'], { check: false });
    copy.remove();
    assert.equal((JSON.parse(result.stdout) as { ok: boolean }).ok, true);
    assert.equal(accepts(A.server.ipv4).length, before, 'not intercepted');
    assert.ok(((await counted())['output: tproxy: local: reroute tcp ipv4'] ?? 0) >= 1);
  });
});
