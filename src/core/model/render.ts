/** Rules as short nft-like text for traces: `tcp dport 80 tproxy to :8000 meta mark set 0x1 accept`. */
import { formatIp } from '../net/address.js';
import { formatKernelPrefix } from '../net/prefix.js';
import { hex } from './packet.js';
import type { Expression, Rule, Selector, Value } from './ruleset.js';

export function renderSelector(s: Selector): string {
  switch (s.kind) {
    case 'meta':
      return ['iifname', 'oifname', 'iif', 'oif'].includes(s.key) ? s.key : `meta ${s.key}`;
    case 'payload':
      return `${s.protocol} ${s.field}`;
    case 'socket':
      return `socket ${s.key}`;
    case 'ct':
      return `ct ${s.key}`;
    case 'fib':
      return `fib ${s.flags.join(' . ')} ${s.result}`;
  }
}

/** A value as nft prints it; `hexNumbers` for marks and masks. */
export function renderValue(v: Value, hexNumbers = false): string {
  switch (v.kind) {
    case 'number':
      return hexNumbers ? hex(v.value) : String(v.value);
    case 'symbol':
      return /^[\w.:-]+$/.test(v.value) ? v.value : JSON.stringify(v.value);
    case 'flags':
      return v.values.join(',');
    case 'prefix':
      return formatKernelPrefix(v.prefix);
    case 'range':
      return `${renderValue(v.from, hexNumbers)}-${renderValue(v.to, hexNumbers)}`;
    case 'set':
      return `{ ${v.elements.map((e) => renderValue(e, hexNumbers)).join(', ')} }`;
    case 'setref':
      return `@${v.name}`;
  }
}

function renderMark(and: number, xor: number): string {
  if (and === 0) return `meta mark set ${hex(xor)}`;
  if (and === 0xffffffff) return `meta mark set meta mark xor ${hex(xor)}`;
  return `meta mark set meta mark and ${hex(and)} xor ${hex(xor)}`;
}

export function renderExpression(e: Expression): string {
  switch (e.kind) {
    case 'match': {
      const isMark = e.left.kind === 'meta' && e.left.key === 'mark';
      const left = e.mask ? `${renderSelector(e.left)} & ${renderValue(e.mask, isMark)}` : renderSelector(e.left);
      const op = e.op === '==' || e.op === 'in' ? '' : `${e.op} `;
      return `${left} ${op}${renderValue(e.right, isMark)}`;
    }
    case 'xt-socket':
      return `${e.negate ? '! ' : ''}-m socket${e.transparent ? ' --transparent' : ''}${e.nowildcard ? ' --nowildcard' : ''}`;
    case 'mark':
      return renderMark(e.and, e.xor);
    case 'tos':
      return e.text;
    case 'ttl':
      if (e.family !== undefined) return `${e.family === 4 ? 'ip ttl' : 'ip6 hoplimit'} set ${e.value}`;
      return e.op === 'set' ? `TTL --ttl-set ${e.value}` : `TTL --ttl-${e.op} ${e.value}`;
    case 'tproxy': {
      const fam = e.family === 4 ? ' ip' : e.family === 6 ? ' ip6' : '';
      const addr = e.addr ? (e.addr.family === 6 ? `[${formatIp(e.addr)}]` : formatIp(e.addr)) : '';
      const mark = e.onMatchMark ? ` --tproxy-mark ${hex(e.onMatchMark.value)}/${hex(e.onMatchMark.mask)}` : '';
      return e.flavour === 'xt' ? `TPROXY --on-ip ${addr || '0'} --on-port ${e.port ?? 0}${mark}` : `tproxy${fam} to ${addr}${e.port !== undefined ? `:${e.port}` : ''}`;
    }
    case 'counter':
      return 'counter';
    case 'log':
      return e.prefix !== undefined ? `log prefix ${JSON.stringify(e.prefix)}` : 'log';
    case 'verdict':
      return [e.verdict, e.target ?? '', e.detail ? `with ${e.detail}` : ''].filter(Boolean).join(' ');
    case 'unsupported':
      return `<unsupported ${e.text}>`;
  }
}

export function renderRule(rule: Rule): string {
  return rule.expressions.map(renderExpression).join(' ');
}
