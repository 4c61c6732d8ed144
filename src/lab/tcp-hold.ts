/**
 * Hold idle TCP connections open (the bench's memory-per-connection workload). Run in a lab
 * namespace with a descriptor limit above COUNT:
 *
 *   tcp-hold HOST PORT COUNT [--parallel N] [--timeout-ms T]
 *
 * Opens COUNT connections (at most N connecting at a time), sends nothing, prints
 * {"event":"held","open":n,"failed":f} and keeps them until its stdin ends; then resets them all
 * (SO_LINGER 0: no TIME_WAIT eats the client's port range), prints {"event":"released"}, exits.
 */
import net from 'node:net';

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

async function hold(host: string, port: number, count: number, parallel: number, timeoutMs: number): Promise<void> {
  const open: net.Socket[] = [];
  let failed = 0;
  let next = 0;
  const deadline = Date.now() + timeoutMs;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const socket = net.connect({ host, port });
      socket.setTimeout(Math.max(1, deadline - Date.now()));
      const fail = (): void => {
        failed++;
        socket.destroy();
        resolve();
      };
      socket.once('connect', () => {
        socket.setTimeout(0);
        socket.removeListener('error', fail);
        socket.on('error', () => undefined);
        open.push(socket);
        resolve();
      });
      socket.once('error', fail);
      socket.once('timeout', fail);
    });
  const lane = async (): Promise<void> => {
    while (next < count && Date.now() < deadline) {
      next++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, lane));
  print({ event: 'held', open: open.length, failed });
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.once('end', resolve));
  for (const s of open) s.resetAndDestroy();
  print({ event: 'released' });
}

const [host = '', port = '0', count = '0', ...rest] = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const i = rest.indexOf(name);
  return i >= 0 ? Number(rest[i + 1]) : fallback;
};
if (!host || !(Number(port) > 0) || !(Number(count) > 0)) {
  process.stderr.write('usage: tcp-hold HOST PORT COUNT [--parallel N] [--timeout-ms T]\n');
  process.exit(2);
}
hold(host, Number(port), Number(count), option('--parallel', 200), option('--timeout-ms', 60_000)).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`tcp-hold: ${String(error)}\n`);
    process.exit(1);
  },
);
