/**
 * What the whole machine spent per unit of work, per scenario: every process and the kernel's
 * packet processing, the client and server included. On a machine that is busy throughout, a
 * scenario's rate is bounded by its CPU per unit, so forwarding's CPU per unit over a proxy's is
 * the ratio the proxy could reach if CPU were all that limited both. Pure.
 */
import type { MachineCpu } from '../sys/proc-usage.js';
import { formatColumns, summarize, type Summary } from './stats.js';
import type { Scenario } from './workloads.js';

export interface MachineSample {
  /** Fraction of all CPUs' time that was busy during the run (0-1). */
  readonly busy: number;
  /** CPU seconds (all CPUs) per unit of work. */
  readonly cpuPerUnit: number;
  readonly unit: string;
  /** The proxy's own processes per unit of work: all their CPU, and its kernel part (none under forwarding). */
  readonly proxy?: { readonly cpuPerUnit: number; readonly systemPerUnit: number };
}

export interface MachineSummary {
  readonly busy: Summary;
  readonly cpuPerUnit: Summary;
  readonly unit: string;
  readonly proxy?: { readonly cpuPerUnit: Summary; readonly systemPerUnit: Summary };
}

export function machineSample(
  cpu: MachineCpu,
  work: { readonly count: number; readonly unit: string },
  proxy?: { readonly cpuSeconds: number; readonly systemSeconds: number },
): MachineSample | undefined {
  const total = cpu.busySeconds + cpu.idleSeconds;
  if (work.count <= 0 || total <= 0) return undefined;
  return {
    busy: cpu.busySeconds / total,
    cpuPerUnit: cpu.busySeconds / work.count,
    unit: work.unit,
    ...(proxy ? { proxy: { cpuPerUnit: proxy.cpuSeconds / work.count, systemPerUnit: proxy.systemSeconds / work.count } } : {}),
  };
}

export function summarizeMachine(samples: readonly MachineSample[]): MachineSummary | undefined {
  const first = samples[0];
  if (!first) return undefined;
  const proxies = samples.flatMap((s) => (s.proxy ? [s.proxy] : []));
  return {
    busy: summarize(samples.map((s) => s.busy)),
    cpuPerUnit: summarize(samples.map((s) => s.cpuPerUnit)),
    unit: first.unit,
    ...(proxies.length > 0 ? { proxy: { cpuPerUnit: summarize(proxies.map((p) => p.cpuPerUnit)), systemPerUnit: summarize(proxies.map((p) => p.systemPerUnit)) } } : {}),
  };
}

/** Forwarding's CPU per unit over the proxy's: the proxy's ratio to forwarding when CPU bounds both. */
export function cpuCeiling(forwarding: MachineSummary | undefined, proxy: MachineSummary | undefined): number | null {
  return forwarding && proxy ? forwarding.cpuPerUnit.median / proxy.cpuPerUnit.median : null;
}

function perUnit(m: MachineSummary | undefined): string {
  if (!m) return '-';
  const amount = (v: number): string => (m.unit === 'GB' ? v.toFixed(2) : (v * 1e6).toFixed(0));
  const cost = m.unit === 'GB' ? `${amount(m.cpuPerUnit.median)} s/GB` : `${amount(m.cpuPerUnit.median)} us/${m.unit}`;
  const proxy = m.proxy ? `; proxy ${amount(m.proxy.cpuPerUnit.median)}, ${amount(m.proxy.systemPerUnit.median)} in kernel` : '';
  return `${cost} (${Math.round(m.busy.median * 100)}% busy${proxy})`;
}

/** One row per workload: each scenario's machine CPU per unit and busy share, and the ceilings. */
export function machineTable(workloads: Readonly<Record<string, { readonly machine: Partial<Record<Scenario, MachineSummary>> }>>, haproxyLabel = 'HAProxy'): string {
  const x = (r: number | null): string => (r === null ? '-' : `${r.toFixed(2)}x`);
  // The routed listener's column only when some workload ran it.
  const routed = Object.values(workloads).some((w) => w.machine.routed);
  // The C reference relay's column only when it ran (--reference-relay).
  const reference = Object.values(workloads).some((w) => w.machine.reference);
  const rows = [['machine CPU per unit', 'kernel forwarding', 'tproxy', haproxyLabel, ...(routed ? ['tproxy + routes'] : []), ...(reference ? ['C reference relay'] : []), 'CPU ceiling tproxy / fwd', 'CPU ceiling HAProxy / fwd', ...(reference ? ['CPU ceiling reference / fwd'] : [])]];
  for (const [name, w] of Object.entries(workloads)) {
    const m = w.machine;
    if (!m.forwarding && !m.tproxy) continue;
    rows.push([name, perUnit(m.forwarding), perUnit(m.tproxy), perUnit(m.haproxy), ...(routed ? [perUnit(m.routed)] : []), ...(reference ? [perUnit(m.reference)] : []), x(cpuCeiling(m.forwarding, m.tproxy)), x(cpuCeiling(m.forwarding, m.haproxy)), ...(reference ? [x(cpuCeiling(m.forwarding, m.reference))] : [])]);
  }
  return formatColumns(rows);
}
