/**
 * Shared pieces of the hostile-input suite: a fixed seed (runs repeat), run counts that keep the
 * whole suite to seconds, arbitraries for damaged inputs, and the one property every parser must
 * have: it returns, or throws the project's error, nothing else.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isTproxyError } from '../../src/core/errors.js';

/** Every fuzz test runs with this seed: a failure repeats, and its counterexample is shrunk. */
export const FUZZ = { seed: 0x13, numRuns: 200 } as const;

/** `fn` returns, or throws a TproxyError: never a TypeError, RangeError or a library's own error. */
export function onlyTproxyErrors<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (error) {
    assert.ok(isTproxyError(error), `threw ${(error as Error).stack ?? String(error)}`);
    return undefined;
  }
}

/** The async form of onlyTproxyErrors. */
export async function onlyTproxyErrorsAsync<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (error) {
    assert.ok(isTproxyError(error), `threw ${(error as Error).stack ?? String(error)}`);
    return undefined;
  }
}

/** Any JSON value, small: what a damaged file may hold where an object was expected. */
export const jsonValue: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 3 });

/** Strings a parser of text meets in hostile input: control characters, separators, long runs. */
export const hostileText: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.constantFrom('', ' ', '\n', '\0', '-', '->', ':', '::', '/', '[', ']', '{', '}', '"', '%', '0x', '-1', '1e309', 'NaN', '__proto__', 'constructor'),
  fc.nat(20_000).map((n) => 'a'.repeat(n)),
);

function paths(value: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(value)) value.forEach((v, i) => paths(v, [...at, i], out));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) paths(v, [...at, k], out);
  return out;
}

function replaced(value: unknown, path: readonly (string | number)[], by: unknown): unknown {
  if (path.length === 0) return by;
  // An earlier edit may have replaced a parent: the path is gone.
  if (value === null || typeof value !== 'object') return value;
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  if (Array.isArray(value)) return (value as unknown[]).map((v, i) => (i === head ? replaced(v, rest, by) : v));
  const object = value as Record<string, unknown>;
  return { ...object, [head]: replaced(object[head], rest, by) };
}

/**
 * A good document with 1-3 of its values (at any depth, the root too) replaced by other JSON
 * values or text: `"iptables": null`, `"sockets": 123`, an array where a rule was.
 */
export function damaged(good: unknown): fc.Arbitrary<unknown> {
  const all = paths(good);
  const one = fc.tuple(fc.constantFrom(...all), fc.oneof(jsonValue, hostileText));
  return fc.array(one, { minLength: 1, maxLength: 3 }).map((edits) => edits.reduce((doc, [path, by]) => replaced(doc, path, by), good));
}
