/**
 * Running every check, ordering the findings (most severe first, grouped by area), the exit
 * status (0 healthy, 1 problems, 2 could not inspect) and the human and JSON forms. Pure.
 */
import { AREAS, SEVERITY_RANK, finding, type Area, type Finding } from './finding.js';
import type { DoctorInput } from './input.js';
import { checkKernel } from './kernel.js';
import { checkLimits } from './limits.js';
import { checkMmproxy } from './mmproxy.js';
import { checkPrivileges } from './privileges.js';
import { checkProbes } from './probes.js';
import { checkRouting } from './routing.js';
import { checkRules } from './rules.js';
import { checkSockets } from './sockets.js';
import { checkSysctls } from './sysctls.js';
import { isTproxyError } from '../errors.js';

export interface DoctorReport {
  readonly status: 0 | 1 | 2;
  /** Sources that could not be read, with the reason (status 2 when one the checks need is missing). */
  readonly uninspected: Readonly<Record<string, string>>;
  readonly findings: readonly Finding[];
}

/** Sources without which doctor cannot judge the host. */
const ESSENTIAL = ['nft', 'ipRules.ipv4', 'ipRules.ipv6', 'routes.ipv4', 'routes.ipv6', 'sockets', 'addresses'];

const CHECKS: readonly ((input: DoctorInput) => Finding[])[] = [checkKernel, checkPrivileges, checkLimits, checkSysctls, checkRouting, checkRules, checkSockets, checkMmproxy, checkProbes];

function areaRank(findings: readonly Finding[], area: Area): number {
  return Math.min(...findings.filter((f) => f.area === area).map((f) => SEVERITY_RANK[f.severity]));
}

export function sortFindings(findings: readonly Finding[]): Finding[] {
  return [...findings].sort((a, b) => areaRank(findings, a.area) - areaRank(findings, b.area) || AREAS.indexOf(a.area) - AREAS.indexOf(b.area) || SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity]);
}

export function diagnose(input: DoctorInput): DoctorReport {
  const errors = input.snapshot.errors;
  // A host without nft (iptables only) is fine; nft that is there but refuses (no privileges) is not.
  const uninspected = Object.fromEntries(Object.entries(errors).filter(([key, reason]) => ESSENTIAL.includes(key) && !(key === 'nft' && /not found|ENOENT|not installed/i.test(reason) && input.snapshot.iptables.ipv4 !== undefined)));
  const findings: Finding[] = [];
  for (const check of CHECKS) {
    try {
      findings.push(...check(input));
    } catch (error) {
      // What the host (or snapshot) holds cannot be judged: said with the error's code, so a bug
      // (a TypeError, no code) stands out from data the check refused.
      const code = isTproxyError(error) ? ` [${error.code}]` : '';
      findings.push(finding('probes', `doctor.${check.name}`, 'warn', `the check failed: ${(error as Error).message}${code}`, 'this part of the host could not be judged'));
    }
  }
  const status = Object.keys(uninspected).length > 0 ? 2 : findings.some((f) => f.severity === 'fail') ? 1 : 0;
  return { status, uninspected, findings: sortFindings(findings) };
}

const LABEL: Readonly<Record<Finding['severity'], string>> = { fail: 'FAIL', warn: 'WARN', pass: 'ok  ' };

export function formatReport(report: DoctorReport): string {
  const count = (s: Finding['severity']): number => report.findings.filter((f) => f.severity === s).length;
  const lines: string[] = [];
  const headline = report.status === 2 ? 'could not inspect this host' : report.status === 1 ? 'problems found' : 'healthy';
  lines.push(`tproxy doctor: ${headline} (${count('fail')} fail, ${count('warn')} warn, ${count('pass')} ok)`);
  for (const [source, reason] of Object.entries(report.uninspected)) lines.push(`  could not read ${source}: ${reason}`);
  let area: Area | undefined;
  for (const f of report.findings) {
    if (f.area !== area) {
      area = f.area;
      lines.push('', `${area}:`);
    }
    lines.push(`  ${LABEL[f.severity]} ${f.id}: ${f.seen}`);
    if (f.severity === 'pass') continue;
    lines.push(`       why: ${f.why}`);
    if (f.fix) lines.push(`       fix: ${f.fix}`);
    for (const t of f.trace ?? []) lines.push(`         | ${t}`);
  }
  return `${lines.join('\n')}\n`;
}

export function reportToJson(report: DoctorReport): Record<string, unknown> {
  return {
    status: report.status,
    healthy: report.status === 0,
    counts: { fail: report.findings.filter((f) => f.severity === 'fail').length, warn: report.findings.filter((f) => f.severity === 'warn').length, pass: report.findings.filter((f) => f.severity === 'pass').length },
    uninspected: report.uninspected,
    findings: report.findings,
  };
}
