/** Configurations with golden plans (test/core/rules/golden/), also applied to a real kernel by the namespace tests. */
import { type ListenerRules, type RulesConfig, singleListenerRules } from '../../src/core/rules/config.js';

type ListenerChange = Partial<Pick<ListenerRules, 'port' | 'addresses' | 'intercept' | 'upstreamMark'>>;

/** `config` with changes; port, addresses, intercept and upstreamMark go to its first listener, families to the config and every listener. */
export function rulesWith(config: RulesConfig, change: Partial<Omit<RulesConfig, 'listeners'>> & ListenerChange): RulesConfig {
  const { port, addresses, intercept, upstreamMark, ...rest } = change;
  const listener: ListenerChange = { ...(port !== undefined ? { port } : {}), ...(addresses ? { addresses } : {}), ...(intercept ? { intercept } : {}), ...(upstreamMark !== undefined ? { upstreamMark } : {}) };
  const families = change.families;
  return {
    ...config,
    ...rest,
    listeners: config.listeners.map((l, i) => ({ ...l, ...(families ? { families } : {}), ...(i === 0 ? listener : {}) })),
  };
}

export const BASE_CONFIG: RulesConfig = singleListenerRules([{ transport: 'tcp', ports: [{ from: 80, to: 80 }] }, { transport: 'udp', ports: [{ from: 80, to: 80 }] }]);

export const GOLDEN_CONFIGS: Record<string, { config: RulesConfig; iptables: boolean }> = {
  classic: { config: BASE_CONFIG, iptables: true },
  'ipv4-interfaces-ranges-open': {
    config: rulesWith(BASE_CONFIG, { families: [4], interfaces: ['eth1', 'wg0'], intercept: [{ transport: 'tcp', ports: [{ from: 80, to: 80 }, { from: 8000, to: 8100 }] }], failMode: 'open' }),
    iptables: false,
  },
  'local-traffic': {
    config: rulesWith(BASE_CONFIG, { intercept: [{ transport: 'tcp', ports: [{ from: 443, to: 443 }] }], interfaces: ['eth0'], localTraffic: { excludeUids: [0, 1000], excludeGids: [100] } }),
    iptables: true,
  },
  'mangle-reject': {
    config: rulesWith(BASE_CONFIG, { families: [6], mangle: { mark: { value: 0x100, mask: 0xff00 }, dscp: 46, ttl: 64 }, failMode: 'reject' }),
    iptables: false,
  },
  'mangle-drop': {
    config: rulesWith(BASE_CONFIG, { mangle: { mark: { value: 0x100, mask: 0xff00 }, dscp: 10, ttl: 32 } }),
    iptables: true,
  },
  'custom-bypass-marks-many-ports': {
    config: rulesWith(BASE_CONFIG, {
      tableName: 'edge',
      port: 15001,
      bypass: { destinations: ['10.0.0.0/8', '10.1.0.0/16', '2001:db8::/32'], sources: ['192.0.2.0/24', '2001:db8:1::/48'] },
      intercept: [{ transport: 'tcp', ports: Array.from({ length: 16 }, (_, i) => ({ from: 1000 + i * 10, to: 1000 + i * 10 + (i % 2) })) }],
      fwmark: 0x10000,
      fwmarkMask: 0xff0000,
      upstreamMark: 0x20000,
      routeTable: 4242,
      rulePriority: 100,
    }),
    iptables: true,
  },
  // mmproxy listeners beside a UDP-only transparent one: the TCP divert rules, the return rule of
  // their upstream mark and the loopback-replies rules come from the mmproxy section alone.
  mmproxy: {
    config: {
      ...rulesWith(BASE_CONFIG, { intercept: [{ transport: 'udp', ports: [{ from: 53, to: 53 }] }] }),
      mmproxy: { loopback: [4, 6], divert: [6], transports: ['tcp'], upstreamMarks: [0x4] },
    },
    iptables: true,
  },
};
