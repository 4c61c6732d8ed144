/**
 * A set of domain names and domain suffixes, for routes that match the name a client asked for.
 *
 *   example.com     exactly example.com
 *   *.example.com   any name under example.com (www.example.com, a.b.example.com), not example.com
 *   .example.com    the same as *.example.com
 *   +.example.com   example.com and any name under it
 *
 * Why `.example.com` leaves example.com out: that is what it means in sing-box (a leading dot keeps
 * its old subdomains-only meaning since 1.9) and in mihomo (`.` subdomains only, `+.` both), the
 * two tools whose lists operators bring. `*.` matches any depth, not one label as in certificates:
 * a route is about where a name lives, not about what a certificate covers. Write `+.example.com`
 * (or both `example.com` and `.example.com`) for a whole domain.
 *
 * Lookup cost depends on the number of labels in the name, not on the size of the set: one hash
 * probe for the name and one per proper suffix at a label boundary. Names given to `has` must be
 * normalised (lower case, no trailing dot), as every sniffer returns them; see normalizeDnsName.
 */
import { TproxyError } from '../errors.js';
import { normalizeDnsName } from './dns-name.js';

export type DomainMatch = 'exact' | 'subdomains' | 'domain-and-subdomains';

export interface DomainEntry {
  readonly domain: string;
  readonly match: DomainMatch;
}

const FORMS = 'use example.com (exactly), *.example.com or .example.com (names under it), or +.example.com (both)';

/** One entry of a domain list; throws TproxyError(ERR_INVALID_ARGUMENT) naming it if malformed. */
export function parseDomainEntry(text: string): DomainEntry {
  const entry = text.trim();
  const [match, rest]: [DomainMatch, string] = entry.startsWith('*.')
    ? ['subdomains', entry.slice(2)]
    : entry.startsWith('+.')
      ? ['domain-and-subdomains', entry.slice(2)]
      : entry.startsWith('.')
        ? ['subdomains', entry.slice(1)]
        : ['exact', entry];
  const domain = normalizeDnsName(rest);
  if (domain === undefined) {
    throw new TproxyError('ERR_INVALID_ARGUMENT', `${JSON.stringify(text)} is not a domain entry: ${FORMS} (letters, digits, - and _ only; no address literal)`, {
      entry: text,
    });
  }
  return { domain, match };
}

export class DomainSet {
  private constructor(
    private readonly exact: ReadonlySet<string>,
    /** Domains whose proper subdomains match. */
    private readonly parents: ReadonlySet<string>,
    /** How many entries the set was built from (duplicates included). */
    readonly size: number,
  ) {}

  static readonly empty = new DomainSet(new Set(), new Set(), 0);

  /** Throws TproxyError(ERR_INVALID_ARGUMENT) naming the first malformed entry. */
  static from(entries: Iterable<string>): DomainSet {
    const parsed: DomainEntry[] = [];
    for (const entry of entries) parsed.push(parseDomainEntry(entry));
    return DomainSet.fromEntries(parsed);
  }

  static fromEntries(entries: Iterable<DomainEntry>): DomainSet {
    const exact = new Set<string>();
    const parents = new Set<string>();
    let size = 0;
    for (const { domain, match } of entries) {
      size++;
      if (match !== 'subdomains') exact.add(domain);
      if (match !== 'exact') parents.add(domain);
    }
    return new DomainSet(exact, parents, size);
  }

  /** Whether a normalised name matches an entry. */
  has(name: string): boolean {
    if (this.exact.has(name)) return true;
    if (this.parents.size === 0) return false;
    for (let dot = name.indexOf('.'); dot >= 0; dot = name.indexOf('.', dot + 1)) {
      if (this.parents.has(name.slice(dot + 1))) return true;
    }
    return false;
  }
}
