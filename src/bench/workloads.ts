/** One measurement of each workload, run from the client namespace. */
import { LAB_ADDRESSES, type Lab } from '../lab/topology.js';
import { HTTP_PORT, IPERF_PORT } from './servers.js';
import { parseIperf3, parseWrk } from './stats.js';

export interface Measurement {
  readonly value: number;
  readonly unit: string;
  readonly extra?: Readonly<Record<string, number>>;
}

export interface Workload {
  readonly name: string;
  readonly description: string;
  readonly unit: string;
  /** Higher is better (throughput) or lower is better (latency, memory). */
  readonly higherIsBetter: boolean;
  run(lab: Lab, seconds: number): Promise<Measurement>;
}

const server = LAB_ADDRESSES.server.ipv4;

export const TCP_WORKLOADS: readonly Workload[] = [
  {
    name: 'tcp-throughput-1',
    description: 'iperf3, one TCP stream, client -> server',
    unit: 'Gbit/s',
    higherIsBetter: true,
    async run(lab, seconds) {
      const out = await lab.run('client', ['iperf3', '-c', server, '-p', `${IPERF_PORT}`, '-t', `${seconds}`, '-J'], { timeoutMs: (seconds + 30) * 1000, check: false });
      return { value: parseIperf3(out.stdout) / 1e9, unit: 'Gbit/s' };
    },
  },
  {
    name: 'tcp-connections',
    description: 'wrk, 50 connections, one request each (Connection: close)',
    unit: 'conn/s',
    higherIsBetter: true,
    async run(lab, seconds) {
      const out = await lab.run('client', ['wrk', '-t1', '-c50', `-d${seconds}s`, '--latency', '-H', 'Connection: close', `http://${server}:${HTTP_PORT}/`], { timeoutMs: (seconds + 30) * 1000 });
      const r = parseWrk(out.stdout);
      return { value: r.requestsPerSecond, unit: 'conn/s', extra: { ...r.latencyMs, errors: r.errors } };
    },
  },
];
