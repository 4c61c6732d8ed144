/**
 * The benchmark's ratios as an SVG bar chart, written beside bench-results.json: one group per
 * workload, one bar per proxy scenario, its length the scenario's ratio to kernel forwarding in the
 * same run (better-is-bigger whichever way the unit runs, as the tables print it: 1 = as good as
 * forwarding). Workloads without a forwarding figure (memory, proxy CPU) have no ratio and no bar.
 * Plain SVG text, no dependency. Pure.
 */
import { ROUTED_PREFIXES } from './routed.js';
import type { Scenario } from './workloads.js';

/** What the chart needs of a run (BenchResult has it; tests pass it directly). */
export interface ChartInput {
  readonly date: string;
  readonly rounds: number;
  readonly seconds: number;
  readonly haproxyLabel: string;
  readonly workloads: Readonly<Record<string, { readonly higherIsBetter: boolean; readonly scenarios: Partial<Record<Scenario, { readonly median: number }>> }>>;
  /** UDP relay against kernel forwarding (absent with --no-udp). */
  readonly udp?: { readonly roundTrips: { readonly ratio: number }; readonly datagrams: { readonly ratio: number } } | undefined;
}

export interface ChartBar {
  readonly workload: string;
  readonly scenario: Exclude<Scenario, 'forwarding'>;
  /** Ratio to kernel forwarding, > 1 better. */
  readonly ratio: number;
}

const PROXY_SCENARIOS: readonly Exclude<Scenario, 'forwarding'>[] = ['tproxy', 'haproxy', 'baseline', 'routed', 'reference'];

const COLOURS: Readonly<Record<Exclude<Scenario, 'forwarding'>, string>> = { tproxy: '#1f77b4', haproxy: '#ff7f0e', baseline: '#7f7f7f', routed: '#2ca02c', reference: '#9467bd' };

/** Every bar of the chart, in drawing order: workloads as the run listed them, then UDP. */
export function chartBars(input: ChartInput): ChartBar[] {
  const bars: ChartBar[] = [];
  for (const [workload, w] of Object.entries(input.workloads)) {
    const forwarding = w.scenarios.forwarding?.median;
    if (forwarding === undefined || !(forwarding > 0)) continue;
    for (const scenario of PROXY_SCENARIOS) {
      const median = w.scenarios[scenario]?.median;
      if (median === undefined || !(median > 0)) continue;
      bars.push({ workload, scenario, ratio: w.higherIsBetter ? median / forwarding : forwarding / median });
    }
  }
  if (input.udp) {
    bars.push({ workload: 'udp-round-trips', scenario: 'tproxy', ratio: input.udp.roundTrips.ratio });
    bars.push({ workload: 'udp-datagrams', scenario: 'tproxy', ratio: input.udp.datagrams.ratio });
  }
  return bars.filter((b) => Number.isFinite(b.ratio));
}

/** Where the chart of a results file goes: beside it, `.json` replaced by `.svg`. */
export function chartPathOf(resultsPath: string): string {
  return `${resultsPath.replace(/\.json$/, '')}.svg`;
}

/** Text for XML content and attribute values. */
export function xmlText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

const BAR_HEIGHT = 16;
const BAR_GAP = 3;
const GROUP_GAP = 14;
const LEFT = 200;
const PLOT_WIDTH = 460;
const TOP = 64;
const RIGHT = 60;

/** The chart as a standalone SVG document. Each bar is a <rect class="bar"> with data-workload and data-scenario. */
export function benchChartSvg(input: ChartInput): string {
  const bars = chartBars(input);
  const groups = [...new Set(bars.map((b) => b.workload))];
  const scenarios = PROXY_SCENARIOS.filter((s) => bars.some((b) => b.scenario === s));
  // The axis reaches past the largest ratio and past 1 (forwarding), in steps of 0.25.
  const max = Math.max(1, ...bars.map((b) => b.ratio));
  const axisMax = Math.ceil((max * 1.05) / 0.25) * 0.25;
  const x = (ratio: number): number => LEFT + (ratio / axisMax) * PLOT_WIDTH;
  const out: string[] = [];
  let y = TOP;
  for (const group of groups) {
    const mine = bars.filter((b) => b.workload === group);
    const height = mine.length * (BAR_HEIGHT + BAR_GAP) - BAR_GAP;
    out.push(`<text class="workload" x="${LEFT - 8}" y="${(y + height / 2 + 4).toFixed(1)}" text-anchor="end">${xmlText(group)}</text>`);
    for (const bar of mine) {
      const width = Math.max(0, x(bar.ratio) - LEFT);
      out.push(
        `<rect class="bar" data-workload="${xmlText(bar.workload)}" data-scenario="${bar.scenario}" x="${LEFT}" y="${y}" width="${width.toFixed(1)}" height="${BAR_HEIGHT}" fill="${COLOURS[bar.scenario]}"><title>${xmlText(`${bar.workload}, ${labelOf(bar.scenario, input)}: ${bar.ratio.toFixed(2)}x forwarding`)}</title></rect>`,
        `<text class="ratio" x="${(LEFT + width + 4).toFixed(1)}" y="${y + BAR_HEIGHT - 4}">${bar.ratio.toFixed(2)}x</text>`,
      );
      y += BAR_HEIGHT + BAR_GAP;
    }
    y += GROUP_GAP - BAR_GAP;
  }
  const plotBottom = Math.max(y, TOP + 20);
  const ticks: string[] = [];
  for (let t = 0; t <= axisMax + 1e-9; t += 0.25) {
    const tx = x(t).toFixed(1);
    const major = Math.abs(t - Math.round(t * 2) / 2) < 1e-9;
    ticks.push(`<line x1="${tx}" y1="${TOP - 6}" x2="${tx}" y2="${plotBottom}" stroke="${Math.abs(t - 1) < 1e-9 ? '#000' : '#ddd'}" stroke-width="${Math.abs(t - 1) < 1e-9 ? 1.5 : 1}"/>`);
    if (major) ticks.push(`<text class="tick" x="${tx}" y="${plotBottom + 14}" text-anchor="middle">${t.toFixed(1)}x</text>`);
  }
  // Legend entries one after another, each as wide as its label (about 6.5 px a character at 11 px).
  const legend: string[] = [];
  let lx = LEFT;
  for (const s of scenarios) {
    const label = labelOf(s, input);
    legend.push(`<rect x="${lx}" y="34" width="12" height="12" fill="${COLOURS[s]}"/><text x="${lx + 16}" y="44">${xmlText(label)}</text>`);
    lx += 16 + Math.ceil(label.length * 6.5) + 24;
  }
  const width = Math.max(LEFT + PLOT_WIDTH + RIGHT, lx);
  const height = plotBottom + 40;
  const title = 'Ratio to kernel forwarding (1.0x = forwarding; higher is better)';
  const subtitle = `npm run bench, ${input.rounds} ${input.rounds === 1 ? 'round' : 'rounds'} of ${input.seconds} s (medians), ${input.date}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<title>${xmlText(`${title}. ${subtitle}`)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="10" y="16" font-size="12" font-weight="bold">${xmlText(title)}</text>`,
    `<text x="10" y="30" fill="#555">${xmlText(subtitle)}</text>`,
    ...legend,
    ...ticks,
    ...out,
    `<text x="${x(1).toFixed(1)}" y="${plotBottom + 28}" text-anchor="middle">kernel forwarding</text>`,
    '</svg>',
    '',
  ].join('\n');
}

function labelOf(scenario: Exclude<Scenario, 'forwarding'>, input: ChartInput): string {
  switch (scenario) {
    case 'tproxy':
      return 'tproxy';
    case 'haproxy':
      return input.haproxyLabel;
    case 'baseline':
      return 'baseline tproxy';
    case 'routed':
      return `tproxy + ${ROUTED_PREFIXES / 1000}k prefixes`;
    case 'reference':
      return 'C reference relay';
  }
}
