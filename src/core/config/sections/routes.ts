/**
 * `routes:` which outbound each flow takes. An ordered list: the first route whose every given
 * condition holds wins (within a condition, any entry); a flow no route matches takes its
 * listener's default outbound. Conditions: destination and source prefixes (inline or named
 * lists), destination ports and ranges, protocol, listener, and the name the client asked for
 * (TLS SNI, HTTP Host, QUIC SNI; inline or named lists).
 */
import { parseNameEntry, parsePrefixEntry } from '../../route/entries.js';
import type { PortRange } from '../../rules/config.js';
import { type Infer, list, oneOf, refused, refusing, section, text, type ValueSetting } from '../schema.js';
import { NAME_ALLOWED, NAME_PATTERN } from './outbounds.js';

const reference = (what: string, example?: string): ValueSetting<string> => text({ type: 'name', allowed: NAME_ALLOWED, help: what, ...(example ? { example } : {}), parse: (t) => (NAME_PATTERN.test(t) ? t : refused()) });

const portRange: ValueSetting<PortRange> = {
  kind: 'value',
  type: 'port | FROM-TO',
  allowed: 'a port (443) or a range of ports ("8000-8100")',
  help: 'destination port or range',
  parse: (raw) => {
    const m = typeof raw === 'number' ? [String(raw), String(raw), undefined] : typeof raw === 'string' ? /^\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?$/.exec(raw) : null;
    if (!m) return refused();
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (!Number.isInteger(from) || from < 1 || to > 65535) return refused();
    return from <= to ? { from, to } : refused(`the range is reversed: write ${to}-${from}`);
  },
};

export const ROUTE = section({
  help: 'One route: conditions and the outbound of the flows that meet them all.',
  fields: {
    name: text({ allowed: NAME_ALLOWED, example: 'lan', help: 'Names the route in explain, logs and metrics.', parse: (t) => (NAME_PATTERN.test(t) ? t : refused()) }),
    outbound: reference('The outbound of the flows this route matches (direct, transparent, reject or one of outbounds).', 'direct'),
    destinations: list(text({ type: 'CIDR', allowed: 'a prefix like 10.0.0.0/8 or 2001:db8::/32', help: 'prefix', parse: refusing(parsePrefixEntry) }), { default: [], help: 'Destination prefixes (any of them, or of destinationLists).' }),
    destinationLists: list(reference('list'), { default: [], help: 'Names of prefix lists the destination may be in.' }),
    sources: list(text({ type: 'CIDR', allowed: 'a prefix like 10.0.0.0/8 or 2001:db8::/32', help: 'prefix', parse: refusing(parsePrefixEntry) }), { default: [], help: 'Client (source) prefixes (any of them, or of sourceLists).' }),
    sourceLists: list(reference('list'), { default: [], help: 'Names of prefix lists the client may be in.' }),
    ports: list(portRange, { default: [], help: 'Destination ports and ranges.' }),
    protocols: list(oneOf(['tcp', 'udp'] as const, { help: 'protocol' }), { default: [], help: 'tcp, udp or both (empty: both).' }),
    listeners: list(reference('listener'), { default: [], help: 'Only flows of these listeners (empty: every listener).' }),
    names: list(text({ type: 'name', allowed: 'a name (example.com) or a suffix (*.example.com)', help: 'name', parse: refusing(parseNameEntry) }), {
      default: [],
      help: 'The name the client asked for (TLS SNI, HTTP Host, QUIC SNI): exact, or *.example.com for every name below; a listener with such routes peeks at a flow\'s first bytes.',
    }),
    nameLists: list(reference('list'), { default: [], help: 'Names of name lists the flow\'s name may be in.' }),
  },
});

export type RouteSettings = Infer<typeof ROUTE>;

export const ROUTES = list(ROUTE, {
  default: [],
  allowed: 'a list of routes',
  help: 'Ordered routes: the first whose every condition holds picks the outbound; no match: the listener\'s own outbound.',
});
