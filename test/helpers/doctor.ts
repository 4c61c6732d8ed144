/** Builders for doctor tests: a real snapshot of a healthy lab router, changed one fault at a time. */
import { readFileSync } from 'node:fs';
import { rulesConfigFrom, type SelectionValues } from '../../src/cli/selection.js';
import type { Finding } from '../../src/core/doctor/finding.js';
import { doctorInput, type DoctorInput } from '../../src/core/doctor/input.js';
import { diagnose, type DoctorReport } from '../../src/core/doctor/report.js';
import type { Snapshot } from '../../src/core/model/snapshot.js';
import { sourcePath } from './paths.js';

/** `tproxy snapshot` of the lab router running `tproxy run --intercept tcp:80 --intercept udp:80 --workers 0`. */
export const HEALTHY_FILE = sourcePath('core/doctor/fixtures/healthy-router.snapshot.json');
export const PROXY_PID = '2122';

/** A deep copy of the healthy snapshot, as plain JSON to change. */
export function healthy(): Snapshot & Record<string, unknown> {
  return JSON.parse(readFileSync(HEALTHY_FILE, 'utf8')) as Snapshot & Record<string, unknown>;
}

export const FLAGS: SelectionValues = { intercept: ['tcp:80', 'udp:80'] };

export function input(snapshot: Snapshot, values: SelectionValues = FLAGS, upstream: 'direct' | 'transparent' = 'direct'): DoctorInput {
  return doctorInput(snapshot, rulesConfigFrom(values), { apply: 'tproxy rules apply --intercept tcp:80 --intercept udp:80', run: 'tproxy run --intercept tcp:80 --intercept udp:80' }, upstream);
}

export function report(snapshot: Snapshot, values: SelectionValues = FLAGS, upstream: 'direct' | 'transparent' = 'direct'): DoctorReport {
  return diagnose(input(snapshot, values, upstream));
}

export function fails(findings: readonly Finding[]): string[] {
  return findings.filter((f) => f.severity === 'fail').map((f) => f.id);
}

export function only(findings: readonly Finding[], id: string, severity?: Finding['severity']): Finding {
  const found = findings.filter((f) => f.id === id && (severity === undefined || f.severity === severity));
  if (found.length === 0) throw new Error(`no finding ${id}${severity ? ` (${severity})` : ''} in ${JSON.stringify(findings.map((f) => [f.id, f.severity]))}`);
  return found[0]!;
}

type Json = Record<string, unknown>;

/** The nft -j items of a snapshot, to add or remove objects. */
export function nftItems(s: Snapshot): Json[] {
  return (s.nft as { nftables: Json[] }).nftables;
}

export function withoutRule(s: Snapshot, comment: string): void {
  const items = nftItems(s);
  const i = items.findIndex((item) => (item.rule as { comment?: string } | undefined)?.comment === comment);
  if (i < 0) throw new Error(`no rule "${comment}"`);
  items.splice(i, 1);
}

/** A table of another program with one base chain and its rules (expression lists). */
export function addForeignChain(s: Snapshot, table: string, hook: string, prio: number, rules: unknown[][]): void {
  const items = nftItems(s);
  items.push({ table: { family: 'inet', name: table, handle: 900 } });
  items.push({ chain: { family: 'inet', table, name: 'pre', handle: 1, type: 'filter', hook, prio, policy: 'accept' } });
  rules.forEach((expr, i) => items.push({ rule: { family: 'inet', table, chain: 'pre', handle: 2 + i, expr } }));
}
