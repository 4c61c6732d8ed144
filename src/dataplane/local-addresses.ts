/** The addresses of this host (in the current network namespace), cached briefly. */
import os from 'node:os';
import { normalizeAddress } from '../core/net/sockaddr.js';

export function localAddressCache(ttlMs = 5000, now: () => number = Date.now): () => ReadonlySet<string> {
  let cached: Set<string> | undefined;
  let at = 0;
  return () => {
    if (!cached || now() - at > ttlMs) {
      cached = new Set();
      for (const list of Object.values(os.networkInterfaces())) {
        for (const info of list ?? []) cached.add(normalizeAddress(info.address.split('%')[0] ?? info.address));
      }
      at = now();
    }
    return cached;
  };
}
