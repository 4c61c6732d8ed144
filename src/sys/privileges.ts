/** This process's uid and capability sets (/proc/self/status). */
import { readFileSync } from 'node:fs';
import { parseCapabilities, type ProcessPrivileges } from '../core/capabilities.js';

export function processPrivileges(): ProcessPrivileges {
  let text = '';
  try {
    text = readFileSync('/proc/self/status', 'utf8');
  } catch {
    // No /proc: report no capabilities beyond what the uid says.
  }
  const uid = process.getuid?.() ?? -1;
  const caps = parseCapabilities(text);
  // Without /proc, root is taken to have every capability (the usual case).
  return text === '' && uid === 0 ? { uid, effective: -1n & ((1n << 64n) - 1n), ambient: 0n } : { uid, ...caps };
}

/** net.ipv4.ip_unprivileged_port_start of this network namespace (1024 if it cannot be read). */
export function unprivilegedPortStart(): number {
  try {
    const value = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim());
    return Number.isInteger(value) ? value : 1024;
  } catch {
    return 1024;
  }
}
