/**
 * `npm run bench`: kernel forwarding vs tproxy vs HAProxy (transparent mode), side by side in one
 * run on the namespace lab.
 *
 * One lab; tproxy (`--no-rules`) and HAProxy both run on the router for the whole run; the scenario
 * is switched by applying the tproxy rules toward one or the other, or removing them, so all
 * scenarios share every other condition. Rounds
 * are interleaved (the order alternates each round) and summarised as median, min and max.
 *
 *   node dist/src/bench/main.js [--quick] [--rounds N] [--seconds S] [--out FILE]
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { singleListenerRules } from '../core/rules/config.js';
import { planRules } from '../core/rules/plan.js';
import type { RulesPlan } from '../core/rules/ruleset.js';
import { startHaproxy, HAPROXY_PORT } from './haproxy.js';
import { RulesController } from '../control/apply.js';
import { TproxyError } from '../core/errors.js';
import { JsonLines } from '../lab/json-lines.js';
import { Lab } from '../lab/topology.js';
import { ProcessRunner } from '../sys/exec.js';
import { startServers, HTTP_PORT, IPERF_PORT } from './servers.js';
import { benchUdp, formatUdpBench, type UdpBenchResult } from './udp.js';
import { summarize, type Summary } from './stats.js';
import { ensureTools } from './tools.js';
import { TCP_WORKLOADS, type Workload } from './workloads.js';

const BIN = fileURLToPath(new URL('../../../bin/tproxy.js', import.meta.url));
const PROXY_PORT = 8000;

type Scenario = 'forwarding' | 'tproxy' | 'haproxy';
const SCENARIOS: readonly Scenario[] = ['forwarding', 'tproxy', 'haproxy'];

export interface BenchResult {
  readonly udp: UdpBenchResult;
  readonly date: string;
  readonly rounds: number;
  readonly seconds: number;
  readonly workloads: Record<
    string,
    { unit: string; description: string; higherIsBetter: boolean; scenarios: Record<Scenario, Summary>; ratio: number; haproxyRatio: number; extra: unknown }
  >;
}

const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

function table(result: BenchResult): string {
  const rows = [['workload', 'kernel forwarding', 'tproxy', 'HAProxy 2.6 transparent', 'tproxy / fwd', 'HAProxy / fwd']];
  const fmt = (s: Summary, unit: string): string => `${s.median.toPrecision(4)} ${unit} [${s.min.toPrecision(3)}-${s.max.toPrecision(3)}]`;
  for (const [name, w] of Object.entries(result.workloads)) {
    rows.push([name, fmt(w.scenarios.forwarding, w.unit), fmt(w.scenarios.tproxy, w.unit), fmt(w.scenarios.haproxy, w.unit), `${w.ratio.toFixed(2)}x`, `${w.haproxyRatio.toFixed(2)}x`]);
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ')).join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      seconds: { type: 'string' },
      out: { type: 'string', default: 'bench-results.json' },
      workers: { type: 'string' },
    },
  });
  const rounds = Number(values.rounds ?? (values.quick ? 1 : 3));
  const seconds = Number(values.seconds ?? (values.quick ? 2 : 5));
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root: it builds network namespaces');
  const runner = new ProcessRunner();
  await ensureTools(['iperf3', 'wrk', 'nginx', 'haproxy'], runner, say);

  const lab = await Lab.create();
  const stopOnSignal = (): void => {
    lab.destroySync();
    process.exit(130);
  };
  process.once('SIGINT', stopOnSignal);
  try {
    await startServers(lab);
    const workers = values.workers ?? '2';
    const proxy = lab.spawn('router', [process.execPath, BIN, 'run', '--no-rules', '--listen', `${PROXY_PORT}`, '--intercept', `tcp:${IPERF_PORT},${HTTP_PORT}`, '--family', '4', '--workers', workers, '--log-format', 'json']);
    await new JsonLines<{ type: string }>(proxy.child.stderr!).waitFor((l) => l.type === 'ready', 20_000, 'the proxy starting');
    startHaproxy(lab, { splice: false, threads: 2 });
    const planFor = (listenPort: number): RulesPlan =>
      planRules(singleListenerRules([{ transport: 'tcp', ports: [{ from: IPERF_PORT, to: IPERF_PORT }, { from: HTTP_PORT, to: HTTP_PORT }] }], { port: listenPort, families: [4] }, { tableName: 'tproxy_bench' }));
    const plans: Record<Scenario, RulesPlan> = { forwarding: planFor(PROXY_PORT), tproxy: planFor(PROXY_PORT), haproxy: planFor(HAPROXY_PORT) };
    const rules = new RulesController(lab.runnerFor('router'));
    const intercepted = async (scenario: Scenario): Promise<number> => {
      if (scenario === 'forwarding') return 0;
      const status = await rules.status(plans[scenario]);
      return status.pieces.filter((p) => p.kind === 'rule' && p.name.includes('intercept')).reduce((n, p) => n + (p.counter?.packets ?? 0), 0);
    };
    // Each scenario's client connections use their own ephemeral ports: a proxy's transparent
    // TIME_WAIT sockets on the router would otherwise catch (early demux) and black-hole the same
    // address/port pairs when a later scenario forwards them.
    const PORT_RANGES: Record<Scenario, string> = { forwarding: '10000 27999', tproxy: '28000 45999', haproxy: '46000 63999' };
    const scenarioOn = async (scenario: Scenario): Promise<void> => {
      await lab.run('client', ['sysctl', '-q', '-w', `net.ipv4.ip_local_port_range=${PORT_RANGES[scenario]}`]);
      if (scenario === 'forwarding') await rules.remove(plans.forwarding);
      else await rules.apply(plans[scenario]);
    };

    const workloads: readonly Workload[] = TCP_WORKLOADS;
    const samples: Record<string, Record<Scenario, number[]>> = {};
    const extras: Record<string, Record<Scenario, Record<string, number>[]>> = {};
    say(`bench: ${rounds} round(s) of ${seconds} s per workload and scenario, interleaved; proxy with ${workers} worker(s), upstream direct`);
    for (let round = 0; round < rounds; round++) {
      const order: Scenario[] = round % 2 === 0 ? [...SCENARIOS] : [...SCENARIOS].reverse();
      for (const workload of workloads) {
        for (const scenario of order) {
          await scenarioOn(scenario);
          const before = await intercepted(scenario);
          const m = await workload.run(lab, seconds);
          // A proxy that is not in the path looks exactly like kernel forwarding: prove it was.
          if (scenario !== 'forwarding' && (await intercepted(scenario)) <= before) {
            throw new TproxyError('ERR_PROXY_BYPASSED', `${workload.name} ${scenario}: the tproxy rule counted no new packet: the traffic did not reach ${scenario}`);
          }
          ((samples[workload.name] ??= { forwarding: [], tproxy: [], haproxy: [] })[scenario]).push(m.value);
          ((extras[workload.name] ??= { forwarding: [], tproxy: [], haproxy: [] })[scenario]).push(m.extra ?? {});
          say(`  round ${round + 1} ${workload.name} ${scenario}: ${m.value.toPrecision(4)} ${m.unit}`);
        }
      }
    }
    await rules.remove(plans.forwarding);
    say('bench: UDP (kernel forwarding vs tproxy; HAProxy has no UDP relay)');
    const udp = await benchUdp(lab, { rounds, durationMs: seconds * 1000, report: (line) => say(`  ${line}`) });
    const result: BenchResult = {
      udp,
      date: new Date().toISOString(),
      rounds,
      seconds,
      workloads: Object.fromEntries(
        workloads.map((w) => {
          const s = samples[w.name] ?? { forwarding: [], tproxy: [], haproxy: [] };
          const scenarios = { forwarding: summarize(s.forwarding), tproxy: summarize(s.tproxy), haproxy: summarize(s.haproxy) };
          const ratioOf = (x: Summary): number => (w.higherIsBetter ? x.median / scenarios.forwarding.median : scenarios.forwarding.median / x.median);
          return [
            w.name,
            { unit: w.unit, description: w.description, higherIsBetter: w.higherIsBetter, scenarios, ratio: ratioOf(scenarios.tproxy), haproxyRatio: ratioOf(scenarios.haproxy), extra: extras[w.name] },
          ];
        }),
      ),
    };
    say('');
    say(table(result));
    say('');
    say(formatUdpBench(udp));
    writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
    say(`\nbench: figures and ratios written to ${values.out}`);
  } finally {
    process.off('SIGINT', stopOnSignal);
    await lab.destroy();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${(error as Error).message}\n`);
  process.exit(1);
});
