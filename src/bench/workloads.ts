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
    name: 'tcp-throughput-4',
    description: 'iperf3, four parallel TCP streams, client -> server',
    unit: 'Gbit/s',
    higherIsBetter: true,
    async run(lab, seconds) {
      const out = await lab.run('client', ['iperf3', '-c', server, '-p', `${IPERF_PORT}`, '-P', '4', '-t', `${seconds}`, '-J'], { timeoutMs: (seconds + 30) * 1000, check: false });
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
  {
    name: 'tcp-keepalive-requests',
    description: 'wrk, 50 keep-alive connections, requests per second',
    unit: 'req/s',
    higherIsBetter: true,
    async run(lab, seconds) {
      const out = await lab.run('client', ['wrk', '-t1', '-c50', `-d${seconds}s`, '--latency', `http://${server}:${HTTP_PORT}/`], { timeoutMs: (seconds + 30) * 1000 });
      const r = parseWrk(out.stdout);
      return { value: r.requestsPerSecond, unit: 'req/s', extra: { ...r.latencyMs, errors: r.errors } };
    },
  },
  {
    name: 'tcp-1conn-requests',
    description: 'wrk, one connection at a time, one request each (Connection: close): latency-bound',
    unit: 'conn/s',
    higherIsBetter: true,
    async run(lab, seconds) {
      const out = await lab.run('client', ['wrk', '-t1', '-c1', `-d${seconds}s`, '--latency', '-H', 'Connection: close', `http://${server}:${HTTP_PORT}/`], { timeoutMs: (seconds + 30) * 1000 });
      const r = parseWrk(out.stdout);
      return { value: r.requestsPerSecond, unit: 'conn/s', extra: { ...r.latencyMs, errors: r.errors } };
    },
  },
];
