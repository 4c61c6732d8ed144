/**
 * Reading `nft -j list ruleset` (libnftables-json(5)) into the model's ruleset, for any table.
 * Expressions the model does not evaluate are kept as `unsupported` with their JSON text, so the
 * trace can say where the model is unsure instead of guessing silently.
 */
import { TproxyError } from '../errors.js';
import { isIpAddress, parseIp } from '../net/address.js';
import { parseKernelPrefix } from '../net/prefix.js';
import { dscpStatement, type Chain, type Expression, type Hook, type MatchOp, type NamedSet, type Rule, type Ruleset, type Selector, type TableFamily, type Value } from './ruleset.js';
import { DSCP_NAMES } from '../net/dscp.js';

type Json = Record<string, unknown>;

const HOOKS: readonly string[] = ['prerouting', 'input', 'forward', 'output', 'postrouting', 'ingress', 'egress'];
const FAMILIES: readonly string[] = ['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev'];

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function only(obj: Json): [string, unknown] {
  const entries = Object.entries(obj);
  return entries.length === 1 ? entries[0]! : ['', undefined];
}

export function parseSelector(json: unknown): Selector | undefined {
  if (!isObject(json)) return undefined;
  const [key, body] = only(json);
  if (!isObject(body)) return undefined;
  switch (key) {
    case 'meta':
      return typeof body.key === 'string' ? { kind: 'meta', key: body.key } : undefined;
    case 'payload':
      return typeof body.protocol === 'string' && typeof body.field === 'string' ? { kind: 'payload', protocol: body.protocol, field: body.field } : undefined;
    case 'socket':
      return typeof body.key === 'string' ? { kind: 'socket', key: body.key } : undefined;
    case 'ct':
      return typeof body.key === 'string' && body.dir === undefined ? { kind: 'ct', key: body.key } : undefined;
    case 'fib': {
      const flags = Array.isArray(body.flags) ? body.flags.map(String) : typeof body.flags === 'string' ? [body.flags] : [];
      return typeof body.result === 'string' ? { kind: 'fib', result: body.result, flags } : undefined;
    }
    default:
      return undefined;
  }
}

export function parseValue(json: unknown): Value | undefined {
  if (typeof json === 'number') return { kind: 'number', value: json };
  if (typeof json === 'boolean') return { kind: 'number', value: json ? 1 : 0 };
  if (typeof json === 'string') {
    if (json.startsWith('@')) return { kind: 'setref', name: json.slice(1) };
    if (isIpAddress(json)) return { kind: 'prefix', prefix: parseKernelPrefix(json) };
    return { kind: 'symbol', value: json };
  }
  if (Array.isArray(json)) {
    if (json.every((v) => typeof v === 'string')) return { kind: 'flags', values: json };
    const elements = json.map(parseValue);
    return elements.every((e) => e !== undefined) ? { kind: 'set', elements: elements } : undefined;
  }
  if (!isObject(json)) return undefined;
  const [key, body] = only(json);
  switch (key) {
    case 'prefix':
      if (isObject(body) && typeof body.addr === 'string' && typeof body.len === 'number') return { kind: 'prefix', prefix: parseKernelPrefix(`${body.addr}/${body.len}`) };
      return undefined;
    case 'range': {
      if (!Array.isArray(body) || body.length !== 2) return undefined;
      const [from, to] = [parseValue(body[0]), parseValue(body[1])];
      return from && to ? { kind: 'range', from, to } : undefined;
    }
    case 'set': {
      const items = Array.isArray(body) ? body : [body];
      const elements = items.map(parseValue);
      return elements.every((e) => e !== undefined) ? { kind: 'set', elements: elements } : undefined;
    }
    case 'elem':
      return isObject(body) ? parseValue(body.val) : undefined;
    default:
      return undefined;
  }
}

function unsupported(json: unknown, isMatch: boolean): Expression {
  return { kind: 'unsupported', text: JSON.stringify(json), isMatch };
}

function parseMatch(body: Json): Expression {
  let leftJson = body.left;
  let mask: Value | undefined;
  if (isObject(leftJson) && Array.isArray(leftJson['&']) && leftJson['&'].length === 2) {
    mask = parseValue(leftJson['&'][1]);
    leftJson = leftJson['&'][0];
  }
  const left = parseSelector(leftJson);
  const right = parseValue(body.right);
  const op = (typeof body.op === 'string' ? body.op : '==') as MatchOp;
  if (!left || !right || !['==', '!=', 'in', '<', '>', '<=', '>='].includes(op) || (isObject(body.left) && body.left['&'] !== undefined && !mask)) {
    return unsupported({ match: body }, true);
  }
  return mask ? { kind: 'match', left, mask, op, right } : { kind: 'match', left, op, right };
}

/** A mark value expression as (old & and) ^ xor; undefined when it reads anything but the mark. */
export function markArithmetic(json: unknown): { and: number; xor: number } | undefined {
  if (typeof json === 'number') return { and: 0, xor: json >>> 0 };
  if (!isObject(json)) return undefined;
  const [op, body] = only(json);
  if (op === 'meta' && isObject(body) && body.key === 'mark') return { and: 0xffffffff, xor: 0 };
  if (!Array.isArray(body) || body.length !== 2 || typeof body[1] !== 'number') return undefined;
  const inner = markArithmetic(body[0]);
  const n = body[1] >>> 0;
  if (!inner) return undefined;
  switch (op) {
    case '&':
      return { and: (inner.and & n) >>> 0, xor: (inner.xor & n) >>> 0 };
    case '|':
      return { and: (inner.and & ~n) >>> 0, xor: ((inner.xor & ~n) | n) >>> 0 };
    case '^':
      return { and: inner.and, xor: (inner.xor ^ n) >>> 0 };
    default:
      return undefined;
  }
}

function parseMangle(body: Json): Expression {
  const key = parseSelector(body.key);
  const whole = { mangle: body };
  if (!key) return unsupported(whole, false);
  if (key.kind === 'meta' && key.key === 'mark') {
    const arithmetic = markArithmetic(body.value);
    return arithmetic ? { kind: 'mark', ...arithmetic } : unsupported(whole, false);
  }
  if (key.kind === 'payload' && (key.protocol === 'ip' || key.protocol === 'ip6')) {
    const family = key.protocol === 'ip' ? 4 : 6;
    if (key.field === 'dscp') {
      const dscp = typeof body.value === 'number' ? body.value : typeof body.value === 'string' ? DSCP_NAMES[body.value] : undefined;
      return dscp === undefined ? unsupported(whole, false) : dscpStatement(dscp, `${key.protocol} dscp set ${typeof body.value === 'string' ? body.value : dscp}`, family);
    }
    if ((key.field === 'ttl' || key.field === 'hoplimit') && typeof body.value === 'number') return { kind: 'ttl', op: 'set', value: body.value, family };
  }
  return unsupported(whole, false);
}

export function parseExpression(json: unknown): Expression {
  if (!isObject(json)) return unsupported(json, false);
  const [key, body] = only(json);
  switch (key) {
    case 'match':
      return isObject(body) ? parseMatch(body) : unsupported(json, true);
    case 'mangle':
      return isObject(body) ? parseMangle(body) : unsupported(json, false);
    case 'tproxy': {
      if (!isObject(body)) return unsupported(json, false);
      const family = body.family === 'ip' ? 4 : body.family === 'ip6' ? 6 : undefined;
      return {
        kind: 'tproxy',
        flavour: 'nft',
        ...(family ? { family } : {}),
        ...(typeof body.addr === 'string' ? { addr: parseIp(body.addr) } : {}),
        ...(typeof body.port === 'number' ? { port: body.port } : {}),
      };
    }
    case 'counter':
      return isObject(body) ? { kind: 'counter', packets: Number(body.packets ?? 0), bytes: Number(body.bytes ?? 0) } : { kind: 'counter' };
    case 'log':
      return isObject(body) && typeof body.prefix === 'string' ? { kind: 'log', prefix: body.prefix } : { kind: 'log' };
    case 'accept':
    case 'drop':
    case 'return':
    case 'continue':
      return { kind: 'verdict', verdict: key };
    case 'queue':
      return { kind: 'verdict', verdict: 'queue' };
    case 'jump':
    case 'goto':
      return isObject(body) && typeof body.target === 'string' ? { kind: 'verdict', verdict: key, target: body.target } : unsupported(json, false);
    case 'reject': {
      const detail = isObject(body) ? [body.type, body.expr].filter((v) => typeof v === 'string').join(' ') : '';
      return detail ? { kind: 'verdict', verdict: 'reject', detail } : { kind: 'verdict', verdict: 'reject' };
    }
    default:
      return unsupported(json, false);
  }
}

function parseHook(value: unknown): Hook | undefined {
  return typeof value === 'string' && HOOKS.includes(value) ? (value as Hook) : undefined;
}

interface TableBuilder {
  family: TableFamily;
  name: string;
  chains: Map<string, { name: string; base?: Chain['base']; rules: Rule[] }>;
  sets: NamedSet[];
}

/** The whole ruleset from `nft -j list ruleset` output (text or already parsed). */
export function parseNftJson(input: unknown): Ruleset {
  let doc: unknown = input;
  if (typeof input === 'string') {
    if (input.trim() === '') return { tables: [] };
    try {
      doc = JSON.parse(input);
    } catch (error) {
      throw new TproxyError('ERR_INVALID_ARGUMENT', `nft JSON could not be parsed: ${(error as Error).message}`, {}, { cause: error });
    }
  }
  const items = isObject(doc) && Array.isArray(doc.nftables) ? (doc.nftables as unknown[]) : undefined;
  if (!items) throw new TproxyError('ERR_INVALID_ARGUMENT', 'nft JSON has no "nftables" array: expected the output of `nft -j list ruleset`');
  const tables = new Map<string, TableBuilder>();
  const tableFor = (family: unknown, name: unknown): TableBuilder | undefined => {
    if (typeof family !== 'string' || typeof name !== 'string' || !FAMILIES.includes(family)) return undefined;
    const id = `${family} ${name}`;
    let t = tables.get(id);
    if (!t) tables.set(id, (t = { family: family as TableFamily, name, chains: new Map(), sets: [] }));
    return t;
  };
  for (const item of items) {
    if (!isObject(item)) continue;
    const [kind, body] = only(item);
    if (!isObject(body)) continue;
    if (kind === 'table') {
      tableFor(body.family, body.name);
    } else if (kind === 'chain') {
      const t = tableFor(body.family, body.table);
      if (!t || typeof body.name !== 'string') continue;
      const hook = parseHook(body.hook);
      const base = hook
        ? { type: typeof body.type === 'string' ? body.type : 'filter', hook, priority: Number(body.prio ?? 0), policy: body.policy === 'drop' ? ('drop' as const) : ('accept' as const) }
        : undefined;
      t.chains.set(body.name, { name: body.name, ...(base ? { base } : {}), rules: t.chains.get(body.name)?.rules ?? [] });
    } else if (kind === 'rule') {
      const t = tableFor(body.family, body.table);
      if (!t || typeof body.chain !== 'string') continue;
      let chain = t.chains.get(body.chain);
      if (!chain) t.chains.set(body.chain, (chain = { name: body.chain, rules: [] }));
      const expressions = Array.isArray(body.expr) ? body.expr.map(parseExpression) : [];
      chain.rules.push({
        ...(typeof body.handle === 'number' ? { handle: body.handle } : {}),
        ...(typeof body.comment === 'string' ? { comment: body.comment } : {}),
        expressions,
      });
    } else if (kind === 'set') {
      const t = tableFor(body.family, body.table);
      if (!t || typeof body.name !== 'string') continue;
      const elements = (Array.isArray(body.elem) ? body.elem : []).map(parseValue).filter((v): v is Value => v !== undefined);
      t.sets.push({ name: body.name, type: Array.isArray(body.type) ? body.type.map(String).join(' . ') : typeof body.type === 'string' ? body.type : '', elements });
    }
  }
  return {
    tables: [...tables.values()].map((t) => ({ family: t.family, name: t.name, origin: 'nft', sets: t.sets, chains: [...t.chains.values()] })),
  };
}
