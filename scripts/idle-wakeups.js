// What an idle daemon costs: starts `tproxy run` (the built one, dist/) in a lab router namespace
// with one TCP+UDP listener and one TCP worker, lets it settle, then reads every thread's voluntary
// context switches (wake-ups: each is a sleep that ended) and CPU time (schedstat) over SECONDS and
// prints them per process and thread, with the load average. No traffic is sent. Root only.
//   node scripts/idle-wakeups.js [SECONDS] [full] [uring]
// `full` adds metrics (prom-client), the dashboard and a UDP and a TCP mmproxy entry; `uring` runs the
// TCP engine uring instead of splice. The lab (namespaces,
// processes, temp dir) is deleted at the end, also on failure.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const seconds = Math.min(600, Math.max(1, Number(process.argv[2] ?? 30)));
const full = process.argv.slice(3).includes('full');
/** `uring`: the TCP engine uring instead of splice. */
const engine = process.argv.slice(3).includes('uring') ? 'uring' : 'splice';
const dist = new URL('../dist/src/', import.meta.url).href;
const { Lab } = await import(`${dist}lab/topology.js`);
const { JsonLines } = await import(`${dist}lab/json-lines.js`);
const bin = new URL('../bin/tproxy.js', import.meta.url).pathname;

const dir = mkdtempSync(join(tmpdir(), 'tproxy-idle-'));
const lab = await Lab.create();
try {
  let config = `listeners:\n  - name: main\n    port: 8000\n    intercept: [tcp:80, udp:80]\nrules: { table: tproxy_idle, routeTable: 177, rulePriority: 9177 }\ntcp: { workers: 1, engine: ${engine} }\nadmin: { socket: ${join(dir, 'admin.sock')} }\n`;
  if (full) config += 'metrics: { listen: 127.0.0.1:9464 }\ndashboard: { enabled: true }\nmmproxy:\n  - name: mm\n    protocol: udp\n    listen: [198.51.100.1:9999]\n    allowedSources: [198.51.100.0/24]\n    upstreamMark: 0x6\n  - name: mmt\n    listen: [198.51.100.1:9998]\n    allowedSources: [198.51.100.0/24]\n    upstreamMark: 0x4\n';
  const file = join(dir, 'tproxy.yaml');
  writeFileSync(file, config);
  const daemon = lab.spawn('router', [process.execPath, bin, 'run', '--config', file, '--log-format', 'json']);
  await new JsonLines(daemon.child.stderr).waitFor((l) => l.type === 'ready', 60_000, 'tproxy run ready');
  const pids = [];
  const walk = (pid, depth) => {
    pids.push(pid);
    if (depth > 3) return;
    let children = '';
    try {
      children = execFileSync('pgrep', ['-P', String(pid)]).toString();
    } catch {
      // pgrep exits 1 when there is none
    }
    for (const c of children.trim().split('\n').filter(Boolean)) walk(Number(c), depth + 1);
  };
  walk(daemon.child.pid, 0);
  await sleep(3000); // start-up work done
  const sample = () => {
    const out = new Map();
    for (const pid of pids) {
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        const base = `/proc/${pid}/task/${tid}`;
        const stat = readFileSync(`${base}/stat`, 'utf8');
        const status = readFileSync(`${base}/status`, 'utf8');
        out.set(`${pid}/${tid}`, {
          name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
          cpuNs: Number(readFileSync(`${base}/schedstat`, 'utf8').split(' ')[0]),
          voluntary: Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0),
          preempted: Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0),
        });
      }
    }
    return out;
  };
  const before = sample();
  const started = Date.now();
  await sleep(seconds * 1000);
  const after = sample();
  const elapsed = (Date.now() - started) / 1000;
  let wakeups = 0;
  let cpuMs = 0;
  console.log(`idle daemon, tcp engine ${engine} (${full ? 'full: metrics, dashboard, TCP and UDP mmproxy' : 'one TCP+UDP listener'}) over ${elapsed.toFixed(1)} s; load ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
  for (const [key, b] of after) {
    const a = before.get(key);
    if (!a) continue;
    const w = (b.voluntary - a.voluntary) / elapsed;
    const p = (b.preempted - a.preempted) / elapsed;
    const c = (b.cpuNs - a.cpuNs) / 1e6 / elapsed;
    wakeups += w;
    cpuMs += c;
    console.log(`${key.padEnd(14)} ${b.name.padEnd(16)} wake-ups/s ${w.toFixed(1).padStart(6)}  preempted/s ${p.toFixed(1).padStart(5)}  CPU ms/s ${c.toFixed(3).padStart(7)}`);
  }
  console.log(`total: ${wakeups.toFixed(1)} wake-ups/s, ${cpuMs.toFixed(3)} ms of CPU per second (processes ${pids.join(', ')})`);
} finally {
  await lab.destroy();
  rmSync(dir, { recursive: true, force: true });
}
