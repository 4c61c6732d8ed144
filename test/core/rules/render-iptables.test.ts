import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTproxyError } from '../../../src/core/errors.js';
import { singleListenerRules, type RulesConfig } from '../../../src/core/rules/config.js';
import { liveIptables } from '../../../src/core/rules/iptables-state.js';
import { ownedBy, planRules } from '../../../src/core/rules/plan.js';
import { EMPTY_IPTABLES_STATE, plannedIptablesState, renderIptablesTransition } from '../../../src/core/rules/render-iptables.js';

const config: RulesConfig = singleListenerRules([{ transport: 'tcp', ports: [{ from: 80, to: 80 }] }], { families: [4] });

describe('iptables rendering', () => {
  it('refuses what xt cannot do, naming the field', () => {
    for (const [change, message] of [
      [{ failMode: 'open' }, /failMode: "open" cannot be done with the iptables backend: the xt TPROXY target drops packets/],
      [{ failMode: 'reject' }, /failMode: "reject" cannot be done with the iptables backend: REJECT is not allowed in the mangle table/],
      [{ tableName: 'a_very_long_table_name_x' }, /tableName: "a_very_long_table_name_x" is too long for iptables chain names \(at most 21/],
    ] as const) {
      assert.throws(() => plannedIptablesState(planRules({ ...config, ...change }), 4), (e: unknown) => isTproxyError(e, 'ERR_INVALID_ARGUMENT') && message.test(e.message));
    }
  });

  it('replaces live jump rules and chains in one transaction, and removes chains no longer planned', () => {
    const live = liveIptables(
      `*mangle
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:TPROXY_RULES_PRE - [0:0]
:TPROXY_RULES_OUT - [0:0]
[5:300] -A PREROUTING -m comment --comment "tproxy v1 families=4 fwmark=0x1/0x1 table=100 priority=9000 owner=12" -j TPROXY_RULES_PRE
[0:0] -A PREROUTING -p udp -j ACCEPT
[0:0] -A OUTPUT -m comment --comment "tproxy v1 families=4 fwmark=0x1/0x1 table=100 priority=9000 owner=12" -j TPROXY_RULES_OUT
[0:0] -A TPROXY_RULES_PRE -m comment --comment "tproxy: old" -j RETURN
[0:0] -A TPROXY_RULES_OUT -m comment --comment "tproxy: old" -j RETURN
COMMIT
`,
      'tproxy_rules',
    );
    assert.deepEqual(live.record, { families: [4], fwmark: 1, fwmarkMask: 1, routeTable: 100, rulePriority: 9000, owner: 12 });
    assert.deepEqual(live.foreignChains, []);
    const text = renderIptablesTransition(live.state, plannedIptablesState(ownedBy(planRules(config), 34), 4));
    assert.equal(
      text,
      `*mangle
:TPROXY_RULES_PRE - [0:0]
:TPROXY_RULES_DIVERT - [0:0]
-F TPROXY_RULES_OUT
-D PREROUTING -m comment --comment "tproxy v1 families=4 fwmark=0x1/0x1 table=100 priority=9000 owner=12" -j TPROXY_RULES_PRE
-D OUTPUT -m comment --comment "tproxy v1 families=4 fwmark=0x1/0x1 table=100 priority=9000 owner=12" -j TPROXY_RULES_OUT
-I PREROUTING 1 -m comment --comment "tproxy v1 families=4 fwmark=0x1/0x1 table=100 priority=9000 owner=34" -j TPROXY_RULES_PRE
-A TPROXY_RULES_PRE -m mark --mark 0x2 -m comment --comment "tproxy: upstream traffic of the proxy" -j RETURN
-A TPROXY_RULES_PRE -p tcp -m tcp ! --tcp-flags SYN,ACK SYN -m socket --transparent -m comment --comment "tproxy: divert tcp ipv4" -j TPROXY_RULES_DIVERT
-A TPROXY_RULES_PRE -d 127.0.0.0/8 -m comment --comment "tproxy: bypass destinations ipv4" -j RETURN
-A TPROXY_RULES_PRE -d 169.254.0.0/16 -m comment --comment "tproxy: bypass destinations ipv4" -j RETURN
-A TPROXY_RULES_PRE -d 224.0.0.0/4 -m comment --comment "tproxy: bypass destinations ipv4" -j RETURN
-A TPROXY_RULES_PRE -d 255.255.255.255/32 -m comment --comment "tproxy: bypass destinations ipv4" -j RETURN
-A TPROXY_RULES_PRE -m addrtype --dst-type LOCAL,BROADCAST,MULTICAST -m comment --comment "tproxy: bypass local, broadcast and multicast destinations" -j RETURN
-A TPROXY_RULES_PRE -p tcp -m tcp --dport 80 -m comment --comment "tproxy: intercept tcp ipv4" -j TPROXY --on-port 8000 --on-ip 0.0.0.0 --tproxy-mark 0x1/0x1
-A TPROXY_RULES_DIVERT -m comment --comment "tproxy: divert" -j MARK --set-xmark 0x1/0x1
-A TPROXY_RULES_DIVERT -m comment --comment "tproxy: divert" -j ACCEPT
-X TPROXY_RULES_OUT
COMMIT
`,
    );
    assert.equal(renderIptablesTransition(live.state, EMPTY_IPTABLES_STATE).split('\n').filter((l) => /^-[FDX] /.test(l)).length, 6, 'cleanup: flush, unhook and delete both chains');
  });
});
