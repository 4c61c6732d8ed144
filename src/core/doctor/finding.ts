/**
 * What doctor reports: findings with a stable id (`sysctl.rp_filter`), a severity, what was seen,
 * why it matters and the command that fixes it. Pure data.
 */
export type Severity = 'pass' | 'warn' | 'fail';

export type Area = 'kernel' | 'privileges' | 'limits' | 'sysctls' | 'routing' | 'rules' | 'sockets' | 'mmproxy' | 'probes';

export const AREAS: readonly Area[] = ['kernel', 'privileges', 'limits', 'sysctls', 'routing', 'rules', 'sockets', 'mmproxy', 'probes'];

export interface Finding {
  /** Stable: scripts and tests match on it. */
  readonly id: string;
  readonly area: Area;
  readonly severity: Severity;
  /** What was seen on the host. */
  readonly seen: string;
  /** Why it matters for TPROXY (for pass: what it confirms). */
  readonly why: string;
  /** A shell command that fixes it (absent when only a person can decide). */
  readonly fix?: string;
  /** For probes: the model's trace of the packet, one line per step. */
  readonly trace?: readonly string[];
}

export const SEVERITY_RANK: Readonly<Record<Severity, number>> = { fail: 0, warn: 1, pass: 2 };

export function finding(area: Area, id: string, severity: Severity, seen: string, why: string, fix?: string, trace?: readonly string[]): Finding {
  return { id, area, severity, seen, why, ...(fix !== undefined ? { fix } : {}), ...(trace ? { trace } : {}) };
}
