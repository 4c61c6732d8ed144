/**
 * What a group of processes costs, read from /proc: CPU time (utime + stime of every thread, from
 * /proc/PID/stat), resident memory (VmRSS) and open descriptors; and what the whole machine spent
 * (/proc/stat). The bench uses it to compare proxies; parsing is pure and exported for tests.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat times (USER_HZ; 100 on every Linux architecture Node runs on). */
export const USER_HZ = 100;

export interface ProcStat {
  readonly pid: number;
  readonly ppid: number;
  /** utime + stime in seconds (all threads of the process). */
  readonly cpuSeconds: number;
  /** stime alone: time in the kernel on the process's behalf (system calls, and the packet processing they run). */
  readonly systemSeconds: number;
}

/** Parse one /proc/PID/stat line; the command name may hold spaces and parentheses. */
export function parseProcStat(text: string): ProcStat {
  const close = text.lastIndexOf(')');
  const pid = Number.parseInt(text, 10);
  // Fields after the command, numbered from 3 (state): ppid is 4, utime 14, stime 15.
  const fields = text.slice(close + 2).trim().split(/\s+/);
  const at = (n: number): number => Number(fields[n - 3] ?? NaN);
  return { pid, ppid: at(4), cpuSeconds: (at(14) + at(15)) / USER_HZ, systemSeconds: at(15) / USER_HZ };
}

/** VmRSS of a /proc/PID/status text in bytes (0 for a zombie or a kernel thread). */
export function parseVmRssBytes(status: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined; // gone
  }
}

/** `root` and every process descended from it. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const stat = readStat(pid);
    if (stat) children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), pid]);
  }
  const tree: number[] = [];
  const queue = [root];
  for (let pid = queue.shift(); pid !== undefined && tree.length < 10_000; pid = queue.shift()) {
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

export interface Usage {
  readonly cpuSeconds: number;
  readonly systemSeconds: number;
  readonly rssBytes: number;
  readonly descriptors: number;
}

/** Summed over `pids`; processes that are gone count nothing. */
export function usageOf(pids: readonly number[]): Usage {
  let cpuSeconds = 0;
  let systemSeconds = 0;
  let rssBytes = 0;
  let descriptors = 0;
  for (const pid of pids) {
    try {
      const stat = readStat(pid);
      cpuSeconds += stat?.cpuSeconds ?? 0;
      systemSeconds += stat?.systemSeconds ?? 0;
      rssBytes += parseVmRssBytes(readFileSync(`/proc/${pid}/status`, 'utf8'));
      descriptors += readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      // gone
    }
  }
  return { cpuSeconds, systemSeconds, rssBytes, descriptors };
}

export interface MachineCpu {
  /** Seconds all CPUs spent on anything (user, nice, system, irq, softirq): packet processing included. */
  readonly busySeconds: number;
  /** Seconds all CPUs were idle (idle + iowait). */
  readonly idleSeconds: number;
  /** Seconds the hypervisor gave this machine's CPUs to someone else. */
  readonly stealSeconds: number;
}

/** The `cpu` line of /proc/stat (sums over all CPUs, in USER_HZ ticks). */
export function parseMachineCpu(procStat: string): MachineCpu {
  const line = /^cpu\s+([\d\s]+)$/m.exec(procStat);
  if (!line) throw new Error('/proc/stat has no cpu line');
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = (line[1] ?? '').trim().split(/\s+/).map(Number);
  return { busySeconds: (user + nice + system + irq + softirq) / USER_HZ, idleSeconds: (idle + iowait) / USER_HZ, stealSeconds: steal / USER_HZ };
}

export function machineCpu(): MachineCpu {
  return parseMachineCpu(readFileSync('/proc/stat', 'utf8'));
}

/** What the machine spent between two readings. */
export function machineCpuSince(before: MachineCpu, after: MachineCpu = machineCpu()): MachineCpu {
  return { busySeconds: after.busySeconds - before.busySeconds, idleSeconds: after.idleSeconds - before.idleSeconds, stealSeconds: after.stealSeconds - before.stealSeconds };
}
