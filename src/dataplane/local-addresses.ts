/**
 * The addresses of this host (in the current network namespace), cached briefly. A failed read
 * (EMFILE: libuv's uv_interface_addresses needs a socket) keeps the last set and is tried again
 * after the next ttl: the relay loops that ask must not stop for it.
 */
import os from 'node:os';
import { normalizeAddress } from '../core/net/sockaddr.js';

export function localAddressCache(ttlMs = 5000, now: () => number = Date.now): () => ReadonlySet<string> {
  let cached: Set<string> | undefined;
  let at = 0;
  return () => {
    if (!cached || now() - at > ttlMs) {
      at = now();
      try {
        const fresh = new Set<string>();
        for (const list of Object.values(os.networkInterfaces())) {
          for (const info of list ?? []) fresh.add(normalizeAddress(info.address.split('%')[0] ?? info.address));
        }
        cached = fresh;
      } catch {
        cached ??= new Set();
      }
    }
    return cached;
  };
}
