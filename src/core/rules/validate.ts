/**
 * Validation of a rules configuration. Every error names the offending field and says what is
 * allowed, so a user can fix the input without reading code. Pure.
 */
import ipaddr from 'ipaddr.js';
import { TproxyError } from '../errors.js';
import { quoted } from '../quote.js';
import { parseCidr } from './cidr.js';
import { FAIL_MODES, type ListenerRules, type PortRange, type RulesConfig } from './config.js';
import { FULL_MASK, hex, marksCollide } from './marks.js';

const MAX_ID = 0xfffffffe;

function bad(field: string, why: string, details: Readonly<Record<string, unknown>> = {}): never {
  throw new TproxyError('ERR_INVALID_ARGUMENT', `${field}: ${why}`, { ...details, field });
}

function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= FULL_MASK;
}

function validateListener(config: RulesConfig, listener: ListenerRules, at: string): void {
  if (!isPort(listener.port)) bad(`${at}.port`, `${listener.port} must be a port from 1 to 65535`);
  for (const family of [4, 6] as const) {
    const address = listener.addresses[family];
    if (address !== undefined && !(family === 4 ? ipaddr.IPv4.isValidFourPartDecimal(address) : ipaddr.IPv6.isValid(address) && !address.includes('%'))) {
      bad(`${at}.addresses`, `${quoted(address)} is not an IPv${family} address`);
    }
  }
  if (listener.families.length === 0) bad(`${at}.families`, 'at least one of IPv4 or IPv6 is needed');
  for (const family of listener.families) if (!config.families.includes(family)) bad(`${at}.families`, `IPv${family} is not among the families of the rules (${config.families.join(', ')})`);
  if (listener.intercept.length === 0) bad(`${at}.intercept`, 'nothing to intercept: give at least one protocol and port, e.g. tcp:80');
  const transports = new Set<string>();
  for (const spec of listener.intercept) {
    if (spec.transport !== 'tcp' && spec.transport !== 'udp') bad(`${at}.intercept`, `${String(spec.transport)}: the protocol must be tcp or udp`);
    if (transports.has(spec.transport)) bad(`${at}.intercept`, `${spec.transport} is listed twice: give all its ports in one list, e.g. ${spec.transport}:80,443`);
    transports.add(spec.transport);
    if (spec.ports.length === 0) bad(`${at}.intercept`, `${spec.transport}: no ports given`);
    for (const p of spec.ports) {
      if (!isPort(p.from) || !isPort(p.to) || p.from > p.to) bad(`${at}.intercept`, `${spec.transport}:${p.from}-${p.to} is not a port or range within 1-65535`);
    }
  }
}

function formatRange(range: PortRange): string {
  return range.from === range.to ? String(range.from) : `${range.from}-${range.to}`;
}

/**
 * No two listeners may intercept the same packets (the second's rule would never match) or share a
 * port. Per family and transport, every listener's port ranges sorted by start and swept once,
 * O(n log n) in the number of ranges (32,768 single ports are one sort, not a billion comparisons):
 * the first range that starts within the widest range so far of another listener overlaps it.
 */
function checkOverlaps(listeners: readonly ListenerRules[]): void {
  for (const [i, a] of listeners.entries()) {
    for (const [j, b] of listeners.slice(0, i).entries()) {
      if (a.port !== b.port || !a.families.some((f) => b.families.includes(f))) continue;
      const shared = a.intercept.find((x) => b.intercept.some((y) => y.transport === x.transport));
      if (shared) bad(`listeners[${i}].port`, `${a.port} is already the port of listeners[${j}] (${b.name}) for ${shared.transport}: each listener needs its own port`);
    }
  }
  for (const family of [4, 6] as const) {
    for (const transport of ['tcp', 'udp'] as const) {
      const ranges = listeners.flatMap((l, index) => (l.families.includes(family) ? l.intercept.filter((s) => s.transport === transport).flatMap((s) => s.ports.map((range) => ({ range, index }))) : []));
      ranges.sort((x, y) => x.range.from - y.range.from || x.index - y.index);
      let widest: (typeof ranges)[number] | undefined;
      for (const current of ranges) {
        if (widest && current.index !== widest.index && current.range.from <= widest.range.to) {
          const [later, earlier] = current.index > widest.index ? [current, widest] : [widest, current];
          bad(`listeners[${later.index}].intercept`, `${transport}:${formatRange(later.range)} is already intercepted by listeners[${earlier.index}] (${listeners[earlier.index]?.name}): a port goes to one listener`);
        }
        if (!widest || current.range.to > widest.range.to) widest = current;
      }
    }
  }
}

export function validateRulesConfig(config: RulesConfig): void {
  if (!/^[A-Za-z][A-Za-z0-9_]{0,30}$/.test(config.tableName)) bad('tableName', `${quoted(config.tableName)} must be a letter followed by letters, digits or _ (at most 31)`);
  if (config.families.length === 0) bad('families', 'at least one of IPv4 or IPv6 is needed');
  if (config.families.some((f) => f !== 4 && f !== 6) || new Set(config.families).size !== config.families.length) bad('families', `${config.families.join(',')}: use 4, 6 or both, each once`);
  // mmproxy listeners alone need only their reply routing (no interception).
  if (config.listeners.length === 0 && !config.mmproxy) bad('listeners', 'at least one listener (or mmproxy entry) is needed');
  for (const [i, listener] of config.listeners.entries()) validateListener(config, listener, `listeners[${i}]`);
  checkOverlaps(config.listeners);
  // Draining listeners may share ports and traffic with the new ones: they get no tproxy rules.
  for (const [i, listener] of (config.draining ?? []).entries()) validateListener(config, listener, `draining[${i}]`);
  for (const name of config.interfaces) if (!/^[^\s/"'\\]{1,15}$/.test(name)) bad('interfaces', `${quoted(name)} is not an interface name (1-15 characters, no spaces, quotes or /)`);

  for (const text of config.bypass.destinations) parseCidr(text, 'bypass.destinations');
  for (const text of config.bypass.sources) parseCidr(text, 'bypass.sources');

  if (config.localTraffic) {
    for (const [field, ids] of [['localTraffic.excludeUids', config.localTraffic.excludeUids], ['localTraffic.excludeGids', config.localTraffic.excludeGids]] as const) {
      for (const id of ids) if (!Number.isInteger(id) || id < 0 || id > MAX_ID) bad(field, `${id} is not a user or group id (0-${MAX_ID})`);
    }
  }

  if (!FAIL_MODES.includes(config.failMode)) bad('failMode', `${quoted(String(config.failMode))}: use ${FAIL_MODES.join(', ')}`);

  if (!isU32(config.fwmark) || !isU32(config.fwmarkMask)) bad('fwmark', 'mark and mask must be 32-bit numbers');
  if ((config.fwmark & config.fwmarkMask) === 0) bad('fwmark', `mark ${hex(config.fwmark)} has no bit inside mask ${hex(config.fwmarkMask)}`);
  if ((config.fwmark & ~config.fwmarkMask) !== 0) bad('fwmark', `mark ${hex(config.fwmark)} has bits outside mask ${hex(config.fwmarkMask)}: they would never be set or matched`);
  const marked = [...config.listeners.map((l, i) => [l, `listeners[${i}]`, false] as const), ...(config.draining ?? []).map((l, i) => [l, `draining[${i}]`, true] as const)];
  for (const [listener, at, draining] of marked) {
    const field = `${at}.upstreamMark`;
    if (!isU32(listener.upstreamMark) || listener.upstreamMark === 0) bad(field, 'must be a non-zero 32-bit number, or upstream sockets cannot be told apart');
    if (marksCollide({ value: listener.upstreamMark, mask: FULL_MASK }, { value: config.fwmark, mask: config.fwmarkMask })) {
      // A draining listener is not in the new file: say which one, and what to do about it.
      if (draining) {
        bad(field, `listener ${listener.name} is still draining, and its flows keep upstream mark ${hex(listener.upstreamMark)}, which the new fwmark ${hex(config.fwmark)} matches under mask ${hex(config.fwmarkMask)}: keep the old fwmark until it has drained (reload.drainMs), then change it`);
      }
      bad(field, `upstream mark ${hex(listener.upstreamMark)} matches the tproxy fwmark under mask ${hex(config.fwmarkMask)}: the proxy's own traffic would be routed back to itself; choose a mark that differs inside the mask`);
    }
  }

  if (config.mmproxy) {
    for (const family of [...config.mmproxy.loopback, ...config.mmproxy.divert]) if (!config.families.includes(family)) bad('mmproxy', `IPv${family} is not among the families of the rules (${config.families.join(', ')})`);
    for (const upstreamMark of config.mmproxy.upstreamMarks) {
      // The mark in the details: the configuration layer names the entries that use it (mmproxy[i].upstreamMark).
      if (!isU32(upstreamMark) || upstreamMark === 0) bad('mmproxy.upstreamMark', 'must be a non-zero 32-bit number, or the backend connections cannot be told apart', { upstreamMark });
      if (marksCollide({ value: upstreamMark, mask: FULL_MASK }, { value: config.fwmark, mask: config.fwmarkMask })) {
        bad('mmproxy.upstreamMark', `upstream mark ${hex(upstreamMark)} matches the tproxy fwmark under mask ${hex(config.fwmarkMask)}: the connections to the backend would be routed back to this host; choose a mark that differs inside the mask`, { upstreamMark });
      }
    }
  }

  const { mark, dscp, ttl } = config.mangle;
  if (mark) {
    if (!isU32(mark.value) || !isU32(mark.mask) || mark.mask === 0) bad('mangle.mark', 'value and mask must be 32-bit numbers with a non-zero mask');
    if ((mark.value & ~mark.mask) !== 0) bad('mangle.mark', `value ${hex(mark.value)} has bits outside mask ${hex(mark.mask)}`);
    if ((mark.mask & config.fwmarkMask) !== 0) {
      bad('mangle.mark', `conflicting marks: mask ${hex(mark.mask)} overlaps the fwmark mask ${hex(config.fwmarkMask)}, so it would overwrite the mark that routes intercepted packets to the proxy; use bits outside ${hex(config.fwmarkMask)}`);
    }
  }
  if (dscp !== undefined && (!Number.isInteger(dscp) || dscp < 0 || dscp > 63)) bad('mangle.dscp', `${dscp} is not a DSCP code point (0-63, e.g. 46 for EF)`);
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 1 || ttl > 255)) bad('mangle.ttl', `${ttl} is not a TTL / hop limit (1-255)`);

  if (!Number.isInteger(config.routeTable) || config.routeTable < 1 || config.routeTable > 0xfffffff0 || [253, 254, 255].includes(config.routeTable)) {
    bad('routeTable', `${config.routeTable} must be a free table id from 1 to 4294967280 (not 253 default, 254 main, 255 local)`);
  }
  if (!Number.isInteger(config.rulePriority) || config.rulePriority < 1 || config.rulePriority >= 32766) bad('rulePriority', `${config.rulePriority} must be from 1 to 32765 (before the main table's rule)`);
}
