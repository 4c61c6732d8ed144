/**
 * The model's ruleset from `nft -j list ruleset`, for any table: the listing is read by
 * core/nft-listing.ts; here its expressions get their meaning. Expressions the model does not
 * evaluate are kept as `unsupported` with their JSON text, so the trace can say where the model is
 * unsure instead of guessing silently.
 */
import { isIpAddress, parseIp } from '../net/address.js';
import { parseKernelPrefix } from '../net/prefix.js';
import { isJsonObject, onlyEntry, parseNftListing, type NftListing, type TableFamily } from '../nft-listing.js';
import { dscpStatement, type Chain, type Expression, type Hook, type MatchOp, type NamedSet, type Rule, type Ruleset, type Selector, type Value } from './ruleset.js';
import { DSCP_NAMES } from '../net/dscp.js';

type Json = Record<string, unknown>;

const HOOKS: readonly string[] = ['prerouting', 'input', 'forward', 'output', 'postrouting', 'ingress', 'egress'];

export function parseSelector(json: unknown): Selector | undefined {
  if (!isJsonObject(json)) return undefined;
  const [key, body] = onlyEntry(json);
  if (!isJsonObject(body)) return undefined;
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
  if (!isJsonObject(json)) return undefined;
  const [key, body] = onlyEntry(json);
  switch (key) {
    case 'prefix':
      if (isJsonObject(body) && typeof body.addr === 'string' && typeof body.len === 'number') return { kind: 'prefix', prefix: parseKernelPrefix(`${body.addr}/${body.len}`) };
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
      return isJsonObject(body) ? parseValue(body.val) : undefined;
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
  if (isJsonObject(leftJson) && Array.isArray(leftJson['&']) && leftJson['&'].length === 2) {
    mask = parseValue(leftJson['&'][1]);
    leftJson = leftJson['&'][0];
  }
  const left = parseSelector(leftJson);
  const right = parseValue(body.right);
  const op = (typeof body.op === 'string' ? body.op : '==') as MatchOp;
  if (!left || !right || !['==', '!=', 'in', '<', '>', '<=', '>='].includes(op) || (isJsonObject(body.left) && body.left['&'] !== undefined && !mask)) {
    return unsupported({ match: body }, true);
  }
  return mask ? { kind: 'match', left, mask, op, right } : { kind: 'match', left, op, right };
}

/** A mark value expression as (old & and) ^ xor; undefined when it reads anything but the mark. */
export function markArithmetic(json: unknown): { and: number; xor: number } | undefined {
  if (typeof json === 'number') return { and: 0, xor: json >>> 0 };
  if (!isJsonObject(json)) return undefined;
  const [op, body] = onlyEntry(json);
  if (op === 'meta' && isJsonObject(body) && body.key === 'mark') return { and: 0xffffffff, xor: 0 };
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
  if (!isJsonObject(json)) return unsupported(json, false);
  const [key, body] = onlyEntry(json);
  switch (key) {
    case 'match':
      return isJsonObject(body) ? parseMatch(body) : unsupported(json, true);
    case 'mangle':
      return isJsonObject(body) ? parseMangle(body) : unsupported(json, false);
    case 'tproxy': {
      if (!isJsonObject(body)) return unsupported(json, false);
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
      return isJsonObject(body) ? { kind: 'counter', packets: Number(body.packets ?? 0), bytes: Number(body.bytes ?? 0) } : { kind: 'counter' };
    case 'log':
      return isJsonObject(body) && typeof body.prefix === 'string' ? { kind: 'log', prefix: body.prefix } : { kind: 'log' };
    case 'accept':
    case 'drop':
    case 'return':
    case 'continue':
      return { kind: 'verdict', verdict: key };
    case 'queue':
      return { kind: 'verdict', verdict: 'queue' };
    case 'jump':
    case 'goto':
      return isJsonObject(body) && typeof body.target === 'string' ? { kind: 'verdict', verdict: key, target: body.target } : unsupported(json, false);
    case 'reject': {
      const detail = isJsonObject(body) ? [body.type, body.expr].filter((v) => typeof v === 'string').join(' ') : '';
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

/**
 * The model's ruleset from a listing. Tables come in the order nft listed them (a table only named
 * by its chains, sets or rules after them); chains in the order listed, a chain only named by its
 * rules after those.
 */
export function rulesetFromListing(listing: NftListing): Ruleset {
  const tables = new Map<string, TableBuilder>();
  const tableFor = (family: TableFamily, name: string): TableBuilder => {
    const id = `${family} ${name}`;
    let t = tables.get(id);
    if (!t) tables.set(id, (t = { family, name, chains: new Map(), sets: [] }));
    return t;
  };
  for (const table of listing.tables) tableFor(table.family, table.name);
  for (const chain of listing.chains) {
    const t = tableFor(chain.family, chain.table);
    const hook = parseHook(chain.hook);
    const base = hook ? { type: chain.type ?? 'filter', hook, priority: chain.prio ?? 0, policy: chain.policy === 'drop' ? ('drop' as const) : ('accept' as const) } : undefined;
    t.chains.set(chain.name, { name: chain.name, ...(base ? { base } : {}), rules: t.chains.get(chain.name)?.rules ?? [] });
  }
  for (const set of listing.sets) {
    const elements = (set.elem ?? []).map(parseValue).filter((v): v is Value => v !== undefined);
    tableFor(set.family, set.table).sets.push({ name: set.name, type: set.type, elements });
  }
  for (const rule of listing.rules) {
    const t = tableFor(rule.family, rule.table);
    let chain = t.chains.get(rule.chain);
    if (!chain) t.chains.set(rule.chain, (chain = { name: rule.chain, rules: [] }));
    chain.rules.push({
      ...(rule.handle !== undefined ? { handle: rule.handle } : {}),
      ...(rule.comment !== undefined ? { comment: rule.comment } : {}),
      expressions: rule.expr.map(parseExpression),
    });
  }
  return {
    tables: [...tables.values()].map((t) => ({ family: t.family, name: t.name, origin: 'nft', sets: t.sets, chains: [...t.chains.values()] })),
  };
}

/** The whole ruleset from `nft -j list ruleset` output (text or already parsed). */
export function parseNftJson(input: unknown): Ruleset {
  return rulesetFromListing(parseNftListing(input));
}
