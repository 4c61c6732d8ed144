/**
 * An mmproxy entry's allowedSources, asked for each accepted connection. A balancer's connections
 * come from one address or a few, so the last address asked and its answer are kept: the same
 * address again costs a string compare, not a parse and a lookup.
 */
import { PrefixSet } from '../../core/net/prefix-set.js';

export class AllowedSources {
  private readonly prefixes: PrefixSet;
  private lastAddress = '';
  private lastAnswer = false;

  /** `what`: the setting's name, for the error a bad prefix raises. */
  constructor(prefixes: readonly string[], what: string) {
    this.prefixes = PrefixSet.from(prefixes, what);
  }

  has(address: string): boolean {
    if (address !== this.lastAddress) {
      this.lastAddress = address;
      this.lastAnswer = this.prefixes.has(address);
    }
    return this.lastAnswer;
  }
}
