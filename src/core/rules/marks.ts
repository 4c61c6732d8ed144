/** Packet mark arithmetic: value/mask pairs, how nftables writes them, when two of them collide. Pure. */

export interface MarkBits {
  readonly value: number;
  readonly mask: number;
}

export const FULL_MASK = 0xffffffff;

/** `0x00000001`: how nft prints marks, so what we write reads back the same. */
export function hex(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}

/** `0x1/0x1`, `0xca6c` (full mask): how ip and iptables print a mark. */
export function shortMark(mark: MarkBits): string {
  const value = `0x${(mark.value >>> 0).toString(16)}`;
  return mark.mask >>> 0 === FULL_MASK ? value : `${value}/0x${(mark.mask >>> 0).toString(16)}`;
}

/**
 * Setting `value` under `mask` as the operations nft keeps after its own simplification:
 * mark = (mark & and) | or. `and` is undefined when it would be all ones, `or` when it is zero,
 * both when the whole mark is replaced (`assign`).
 */
export function markSetOperation(mark: MarkBits): { assign?: number; and?: number; or?: number } {
  const mask = mark.mask >>> 0;
  const value = (mark.value & mask) >>> 0;
  if (mask === FULL_MASK) return { assign: value };
  const and = (~mask | value) >>> 0;
  return { ...(and !== FULL_MASK ? { and } : {}), ...(value !== 0 ? { or: value } : {}) };
}

/** The bits a packet's mark must have for both a and b to match it: they collide when that is possible and they share a bit. */
export function marksCollide(a: MarkBits, b: MarkBits): boolean {
  const shared = (a.mask & b.mask) >>> 0;
  return shared !== 0 && ((a.value ^ b.value) & shared) >>> 0 === 0;
}

/** Bits `a` and `b` have in common. */
export function sharedBits(a: number, b: number): number {
  return (a & b) >>> 0;
}

/** The lowest single bit used by none of `used` (for a suggestion in an error), or undefined. */
export function freeMarkBit(used: readonly number[]): number | undefined {
  const all = used.reduce((acc, bits) => (acc | bits) >>> 0, 0);
  for (let bit = 0; bit < 32; bit++) {
    const candidate = (1 << bit) >>> 0;
    if ((all & candidate) === 0) return candidate;
  }
  return undefined;
}
