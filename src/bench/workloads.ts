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

function iperf(name: string, description: string, streams: number): Workload {
  return {
    name,
    description,
    unit: 'Gbit/s',
    higherIsBetter: true,
    async run(lab, seconds) {
      const out = await lab.run('client', ['iperf3', '-c', server, '-p', `${IPERF_PORT}`, '-P', `${streams}`, '-t', `${seconds}`, '-J'], { timeoutMs: (seconds + 30) * 1000, check: false });
      return { value: parseIperf3(out.stdout) / 1e9, unit: 'Gbit/s' };
    },
  };
}

function wrk(name: string, description: string, unit: string, connections: number, close: boolean): Workload {
  return {
    name,
    description,
    unit,
    higherIsBetter: true,
    async run(lab, seconds) {
      const argv = ['wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...(close ? ['-H', 'Connection: close'] : []), `http://${server}:${HTTP_PORT}/`];
      const r = parseWrk((await lab.run('client', argv, { timeoutMs: (seconds + 30) * 1000 })).stdout);
      return { value: r.requestsPerSecond, unit, extra: { ...r.latencyMs, errors: r.errors } };
    },
  };
}

export const TCP_WORKLOADS: readonly Workload[] = [
  iperf('tcp-throughput-1', 'iperf3, one TCP stream, client -> server', 1),
  iperf('tcp-throughput-4', 'iperf3, four parallel TCP streams, client -> server', 4),
  wrk('tcp-connections', 'wrk, 50 connections, one request each (Connection: close)', 'conn/s', 50, true),
  wrk('tcp-keepalive-requests', 'wrk, 50 keep-alive connections, requests per second', 'req/s', 50, false),
  wrk('tcp-1conn-requests', 'wrk, one connection at a time, one request each (Connection: close): latency-bound', 'conn/s', 1, true),
];
