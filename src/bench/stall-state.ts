/**
 * What a backend half was doing when one of its measurements failed (a stall: every wrk
 * connection timed out and the half logged nothing): its sockets by TCP state, the accept queue
 * of its listener, and where each of its threads waits in the kernel. Taken after the failure,
 * so for the bench's error message only, never for a figure.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { Lab } from '../lab/topology.js';

/**
 * `ss -Htan` lines (State Recv-Q Send-Q Local Peer) summed up: connections by state, and the
 * listener's accept queue (Recv-Q of LISTEN: connections the kernel completed that nobody accepted
 * yet) with its backlog (Send-Q).
 */
export function summarizeSockets(ssLines: string): string {
  const states = new Map<string, number>();
  const listeners: string[] = [];
  let unread = 0;
  let waiting = 0;
  for (const line of ssLines.split('\n')) {
    const [state, recvQ, sendQ] = line.trim().split(/\s+/);
    if (!state || recvQ === undefined || sendQ === undefined) continue;
    if (state === 'LISTEN') {
      listeners.push(`accept queue ${recvQ}/${sendQ}`);
      continue;
    }
    states.set(state, (states.get(state) ?? 0) + 1);
    if (Number(recvQ) > 0) waiting++;
    unread += Number(recvQ) || 0;
  }
  const counted = [...states].sort(([a], [b]) => a.localeCompare(b)).map(([s, n]) => `${n} ${s}`);
  // Bytes received and not read: a connection the proxy does not read from (its header, say).
  const backlog = waiting > 0 ? [`${unread} bytes unread on ${waiting}`] : [];
  return [...listeners, ...(counted.length > 0 ? counted : ['no connection']), ...backlog].join(', ');
}

/** Where the threads of process `pid` are: "3 S do_epoll_wait, 1 S io_cqring_wait, ..." (empty once it has exited). */
export function threadStates(pid: number, proc = '/proc'): string {
  const counts = new Map<string, number>();
  let tasks: string[];
  try {
    tasks = readdirSync(`${proc}/${pid}/task`);
  } catch {
    return '';
  }
  for (const task of tasks) {
    try {
      // The state follows the command name in parentheses (which may hold spaces).
      const stat = readFileSync(`${proc}/${pid}/task/${task}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '?';
      const wchan = readFileSync(`${proc}/${pid}/task/${task}/wchan`, 'utf8').trim();
      const key = `${state} ${wchan === '0' || wchan === '' ? '-' : wchan}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${n} ${k}`).join(', ');
}

/**
 * The state of a backend half in the router's namespace: its listening port's sockets (the
 * connections it accepted from the balancer, and the balancer's ends of them), the sockets toward
 * `backendPort` (every half's), TIME_WAIT left out, and the threads of `pid`.
 */
export async function stallState(lab: Lab, listenPort: number, backendPort: number, pid: number | undefined): Promise<string> {
  const ss = async (filter: string): Promise<string> => (await lab.run('router', ['ss', '-Htan', 'exclude', 'time-wait', filter], { check: false, timeoutMs: 10_000 })).stdout;
  const half = summarizeSockets(await ss(`( sport = :${listenPort} )`));
  // The balancer's side: a connect it cannot complete shows here (SYN-SENT), not at the half.
  const balancer = summarizeSockets(await ss(`( dport = :${listenPort} )`));
  const backend = summarizeSockets(await ss(`( dport = :${backendPort} )`));
  const threads = pid === undefined ? '' : threadStates(pid);
  return `port ${listenPort}: ${half}; the balancer toward it: ${balancer}; toward port ${backendPort}: ${backend}${threads ? `; threads: ${threads}` : ''}`;
}
