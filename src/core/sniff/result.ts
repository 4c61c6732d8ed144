/**
 * What a sniffer learnt from the first bytes of a flow: the name the client asked for, that it
 * needs more bytes to tell, or that there is no name to be had.
 *
 * Sniffers are pure functions over the bytes received so far (peeked, never consumed): the caller
 * offers them again with more bytes after a 'more', and routes without a name after a 'none' or
 * when its sniff timeout expires.
 */

export type SniffProtocol = 'tls' | 'http' | 'quic';

export type SniffResult =
  /** The client asked for `name` (lower case, no trailing dot, a valid DNS name: see dns-name.ts). */
  | { readonly kind: 'name'; readonly name: string; readonly protocol: SniffProtocol }
  /** The bytes so far are a valid prefix of this protocol, but the name is not in them yet. */
  | { readonly kind: 'more' }
  /** Not this protocol, or this protocol without a (valid) name. */
  | { readonly kind: 'none' };

export const SNIFF_MORE: SniffResult = Object.freeze({ kind: 'more' });
export const SNIFF_NONE: SniffResult = Object.freeze({ kind: 'none' });

/** A 'name' result for `name` if it is a valid DNS name (already normalised by the caller). */
export function sniffedName(name: string | undefined, protocol: SniffProtocol): SniffResult {
  return name === undefined ? SNIFF_NONE : { kind: 'name', name, protocol };
}
