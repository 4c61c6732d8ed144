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
