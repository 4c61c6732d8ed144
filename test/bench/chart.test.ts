// The benchmark chart: well-formed SVG with one bar per workload and proxy scenario, each as long as its ratio.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { benchChartSvg, chartBars, chartPathOf, type ChartInput } from '../../src/bench/chart.js';

const med = (median: number): { median: number } => ({ median });

const INPUT: ChartInput = {
  date: '2026-12-07T00:00:00.000Z',
  rounds: 3,
  seconds: 5,
  haproxyLabel: 'HAProxy 2.6 transparent',
  workloads: {
    'tcp-stream': { higherIsBetter: true, scenarios: { forwarding: med(10e9), tproxy: med(6e9), haproxy: med(3.7e9), baseline: med(5e9) } },
    'new-connections': { higherIsBetter: true, scenarios: { forwarding: med(10_000), tproxy: med(4_800), haproxy: med(5_900), routed: med(4_700) } },
    // Lower is better: tproxy at twice forwarding's latency is 0.5x.
    'latency <p99> & more': { higherIsBetter: false, scenarios: { forwarding: med(1), tproxy: med(2), haproxy: med(4) } },
    // No forwarding figure (a proxy-only measure): no ratio, no bars.
    'idle-memory': { higherIsBetter: false, scenarios: { tproxy: med(1.5), haproxy: med(3.5) } },
  },
  udp: { roundTrips: { ratio: 0.31 }, datagrams: { ratio: 0.7 } },
};

interface Rect {
  '@_class'?: string;
  '@_data-workload'?: string;
  '@_data-scenario'?: string;
  '@_width'?: string;
}

function barsOf(svg: string): Rect[] {
  const valid = XMLValidator.validate(svg);
  assert.equal(valid, true, JSON.stringify(valid));
  const doc = new XMLParser({ ignoreAttributes: false, isArray: (name) => name === 'rect' || name === 'text' || name === 'line' }).parse(svg) as { svg: { rect: Rect[] } };
  return doc.svg.rect.filter((r) => r['@_class'] === 'bar');
}

describe('benchmark chart', () => {
  it('is well-formed XML with one bar per workload and proxy scenario', () => {
    const bars = barsOf(benchChartSvg(INPUT));
    const expected = [
      ['tcp-stream', 'tproxy'], ['tcp-stream', 'haproxy'], ['tcp-stream', 'baseline'],
      ['new-connections', 'tproxy'], ['new-connections', 'haproxy'], ['new-connections', 'routed'],
      ['latency <p99> & more', 'tproxy'], ['latency <p99> & more', 'haproxy'],
      ['udp-round-trips', 'tproxy'], ['udp-datagrams', 'tproxy'],
    ];
    assert.deepEqual(bars.map((b) => [b['@_data-workload'], b['@_data-scenario']]), expected);
  });

  it('draws each bar as long as its better-is-bigger ratio to forwarding', () => {
    assert.deepEqual(
      chartBars(INPUT).map((b) => [b.workload, b.scenario, Number(b.ratio.toFixed(3))]),
      [
        ['tcp-stream', 'tproxy', 0.6], ['tcp-stream', 'haproxy', 0.37], ['tcp-stream', 'baseline', 0.5],
        ['new-connections', 'tproxy', 0.48], ['new-connections', 'haproxy', 0.59], ['new-connections', 'routed', 0.47],
        ['latency <p99> & more', 'tproxy', 0.5], ['latency <p99> & more', 'haproxy', 0.25],
        ['udp-round-trips', 'tproxy', 0.31], ['udp-datagrams', 'tproxy', 0.7],
      ],
    );
    const widths = barsOf(benchChartSvg(INPUT)).map((b) => Number(b['@_width']));
    const ratios = chartBars(INPUT).map((b) => b.ratio);
    assert.ok(widths.every((w) => w > 0));
    // Width over ratio is one scale for every bar.
    const scale = widths[0]! / ratios[0]!;
    widths.forEach((w, i) => assert.ok(Math.abs(w - ratios[i]! * scale) < 0.2, `bar ${i}: width ${w}, ratio ${ratios[i]}`));
  });

  it('without forwarding figures or UDP it is still a valid, empty chart', () => {
    const bars = barsOf(benchChartSvg({ ...INPUT, workloads: { 'idle-memory': INPUT.workloads['idle-memory']! }, udp: undefined }));
    assert.equal(bars.length, 0);
  });

  it('draws the C reference relay as its own bar and names it in the legend', () => {
    const input: ChartInput = { ...INPUT, workloads: { 'tcp-stream': { higherIsBetter: true, scenarios: { forwarding: med(10e9), tproxy: med(6e9), reference: med(6.5e9) } } }, udp: undefined };
    assert.deepEqual(chartBars(input).map((b) => [b.scenario, b.ratio]), [['tproxy', 0.6], ['reference', 0.65]]);
    const svg = benchChartSvg(input);
    assert.deepEqual(barsOf(svg).map((b) => b['@_data-scenario']), ['tproxy', 'reference']);
    assert.match(svg, />C reference relay</);
  });

  it('goes beside the results file', () => {
    assert.equal(chartPathOf('bench-results.json'), 'bench-results.svg');
    assert.equal(chartPathOf('/tmp/run'), '/tmp/run.svg');
  });
});
