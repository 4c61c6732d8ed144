/** `rules:` the kernel side: the nftables table (or iptables chains), fwmark policy routing, bypass, fail mode. */
import { DEFAULT_BYPASS_DESTINATIONS, DEFAULT_RULES_CONFIG, FAIL_MODES } from '../../rules/config.js';
import { DSCP_NAMES } from '../../net/dscp.js';
import { boolean, type Infer, integer, list, mark, oneOf, optional, refused, section, text } from '../schema.js';

export const BACKEND_CHOICE_NAMES = ['auto', 'nft', 'iptables', 'iptables-legacy', 'iptables-nft'] as const;

const userId = integer({ min: 0, max: 0xfffffffe, help: 'user or group id' });

function markBits(t: string): { value: number; mask: number } | ReturnType<typeof refused> {
  const m = /^(0x[0-9a-f]{1,8}|\d{1,10})(?:\/(0x[0-9a-f]{1,8}|\d{1,10}))?$/i.exec(t);
  if (!m) return refused();
  const value = Number(m[1]);
  const mask = m[2] === undefined ? 0xffffffff : Number(m[2]);
  return value <= 0xffffffff && mask <= 0xffffffff ? { value, mask } : refused();
}

const dscp = {
  ...integer({ min: 0, max: 63, help: 'Rewrite the DSCP of intercepted packets as they arrive (0-63, or a name: ef, af11, cs1, ...; absent: unchanged). Those packets end at the proxy\'s sockets, so this marks nothing that leaves the host: listeners[].headers.dscp (--set-dscp) does; with --set-dscp copy the proxy copies the value set here.', example: 'ef', flag: { name: 'intercepted-dscp', metavar: 'N|NAME', toRaw: (t: string) => (/^\d+$/.test(t) ? Number(t) : t) } }),
  type: 'integer | name',
  allowed: `an integer from 0 to 63 or a name (${Object.keys(DSCP_NAMES).join(', ')})`,
  parse: (raw: unknown) => {
    const n = typeof raw === 'string' ? DSCP_NAMES[raw.toLowerCase()] : raw;
    return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 63 ? n : refused();
  },
};

export const RULES = section({
  help: 'The kernel rules: one nftables table (or iptables chains) and fwmark policy routing, applied on start and removed on stop.',
  fields: {
    apply: boolean({ default: true, help: 'Apply the kernel rules on start and remove them on stop (false: they are managed elsewhere).', flag: { name: 'no-rules', toRaw: () => false, help: 'Do not apply the kernel rules on start or remove them on stop: they are managed elsewhere (sets apply: false).' } }),
    backend: oneOf(BACKEND_CHOICE_NAMES, { default: 'auto', help: 'How rules are written; auto: nftables when nft is installed, else iptables-restore.', flag: { name: 'backend', metavar: 'NAME' } }),
    table: text({ default: DEFAULT_RULES_CONFIG.tableName, allowed: 'a letter followed by letters, digits or _ (at most 31)', help: 'Name of the nftables table we own (family inet; with iptables, the chain prefix).', flag: { name: 'table', metavar: 'NAME' }, parse: (t) => (/^[A-Za-z][A-Za-z0-9_]{0,30}$/.test(t) ? t : refused()) }),
    interfaces: list(text({ type: 'interface', allowed: 'an interface name (1-15 characters, no spaces, quotes or /)', help: 'interface', parse: (t) => (/^[^\s/"'\\]{1,15}$/.test(t) ? t : refused()) }), {
      default: [],
      help: 'Only intercept traffic arriving on these interfaces (empty: all).',
      flag: { name: 'iface', metavar: 'NAME', multiple: true },
    }),
    bypass: section({
      help: 'Prefixes never intercepted (named sets bypass_daddr4/6 and bypass_saddr4/6, editable live).',
      fields: {
        defaultDestinations: boolean({ default: true, help: `Also bypass the default destinations: ${DEFAULT_BYPASS_DESTINATIONS.join(' ')}.`, flag: { name: 'no-default-bypass', toRaw: () => false, help: `Do not bypass the default destinations (${DEFAULT_BYPASS_DESTINATIONS.join(' ')}): only those listed with --bypass-dst (sets defaultDestinations: false).` } }),
        destinations: list(text({ type: 'CIDR', allowed: 'a prefix like 10.0.0.0/8 or 2001:db8::/32', help: 'prefix' }), { default: [], help: 'Never intercept traffic to these prefixes.', flag: { name: 'bypass-dst', metavar: 'CIDR', multiple: true } }),
        sources: list(text({ type: 'CIDR', allowed: 'a prefix like 10.0.0.0/8 or 2001:db8::/32', help: 'prefix' }), { default: [], help: 'Never intercept traffic from these prefixes.', flag: { name: 'bypass-src', metavar: 'CIDR', multiple: true } }),
      },
    }),
    local: section({
      help: 'Interception of this host\'s own traffic (an output chain marks it; it is rerouted through lo).',
      fields: {
        enabled: boolean({ default: false, help: 'Also intercept this host\'s own traffic (the upstream mark is excluded).', flag: { name: 'local' } }),
        excludeUids: list(userId, { default: [], help: 'Never intercept processes of these user ids.', flag: { name: 'local-exclude-uid', metavar: 'N', multiple: true, toRaw: (t) => (/^\d+$/.test(t) ? Number(t) : t) } }),
        excludeGids: list(userId, { default: [], help: 'Never intercept processes of these group ids.', flag: { name: 'local-exclude-gid', metavar: 'N', multiple: true, toRaw: (t) => (/^\d+$/.test(t) ? Number(t) : t) } }),
      },
      check(local, path, issues) {
        if (local.enabled) return;
        for (const key of ['excludeUids', 'excludeGids'] as const) {
          if (local[key].length > 0) issues.push({ path: [...path, key], message: 'only makes sense when this host\'s own traffic is intercepted: set enabled: true (--local)' });
        }
      },
    }),
    mangle: section({
      help: 'Opt-in changes to every intercepted packet, on arrival (before the proxy\'s socket gets it).',
      fields: {
        mark: optional(text({ type: 'V[/M]', allowed: 'VALUE[/MASK], 32-bit numbers, e.g. 0x100/0xff00', help: 'Also set these mark bits on intercepted packets (outside the fwmark mask; absent: none).', example: '0x100/0xff00', flag: { name: 'set-mark', metavar: 'V[/M]' }, parse: markBits })),
        dscp: optional(dscp),
        ttl: optional(integer({ min: 1, max: 255, help: 'Rewrite the TTL / hop limit of intercepted packets as they arrive (absent: unchanged). Those packets end at the proxy\'s sockets, so this sets nothing that leaves the host: listeners[].headers.ttl (--set-ttl) does.', example: 64, flag: { name: 'intercepted-ttl', metavar: 'N' } })),
      },
    }),
    failMode: oneOf(FAIL_MODES, { default: DEFAULT_RULES_CONFIG.failMode, help: 'While no proxy socket takes intercepted traffic: let it go its normal way (open), or drop / reject it (fail closed).', flag: { name: 'fail-mode', metavar: 'MODE' } }),
    fwmark: mark({ default: '0x1', help: 'Mark of intercepted packets; the policy rule routes it to the local table.', flag: { name: 'fwmark', metavar: 'N' } }),
    fwmarkMask: mark({ default: '0x1', help: 'Mask for the fwmark.', flag: { name: 'fwmark-mask', metavar: 'N' } }),
    routeTable: integer({ min: 1, max: 0xfffffff0, default: DEFAULT_RULES_CONFIG.routeTable, help: 'Policy routing table for local delivery (not 253, 254, 255).', flag: { name: 'route-table', metavar: 'N' } }),
    rulePriority: integer({ min: 1, max: 32765, default: DEFAULT_RULES_CONFIG.rulePriority, help: 'Priority of the fwmark ip rule (before the main table\'s rule).', flag: { name: 'rule-priority', metavar: 'N' } }),
  },
});

export type RulesSettings = Infer<typeof RULES>;
