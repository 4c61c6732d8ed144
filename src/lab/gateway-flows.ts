/**
 * Lab agent for the multi-gateway lab: a line echo server that says which gateway a flow came
 * through, and a client that opens and holds flows, driven over stdin. JSON lines on stdout.
 *
 *   gateway-flows serve PORT
 *       TCP on 0.0.0.0:PORT; every line received is answered with the peer address the server
 *       sees (a gateway's own address: tproxy connects upstream from it). {"event":"ready"}.
 *   gateway-flows client HOST PORT
 *       Commands, one JSON object a line on stdin:
 *       {"cmd":"open","tag":T,"count":N,"timeoutMs":M}  open N flows (one line each way), keep them;
 *           prints {"event":"opened","tag":T,"via":{gateway address: flows},"failed":n}
 *       {"cmd":"check","tag":T,"timeoutMs":M}  one more line each way on every flow of T;
 *           prints {"event":"checked","tag":T,"via":{...},"ok":n,"broken":b}
 *       {"cmd":"close","tag":T}  closes T's flows; prints {"event":"closed","tag":T}
 *       Ends when stdin ends (every flow is closed).
 */
import net from 'node:net';
import { createInterface } from 'node:readline';

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function serve(port: number): void {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    createInterface({ input: socket })
      .on('line', () => socket.write(`${socket.remoteAddress ?? '?'}\n`))
      .on('error', () => undefined);
  });
  server.listen({ host: '0.0.0.0', port }, () => print({ event: 'ready', port }));
}

interface Flow {
  readonly socket: net.Socket;
  /** The gateway the server saw it through. */
  via: string;
  lines: ((line: string | undefined) => void)[];
  broken: boolean;
}

/** One line each way on `flow`, within timeoutMs: the address the server answered, or undefined. */
function exchange(flow: Flow, timeoutMs: number): Promise<string | undefined> {
  if (flow.broken) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(undefined), timeoutMs);
    function done(line: string | undefined): void {
      clearTimeout(timer);
      resolve(line);
    }
    flow.lines.push(done);
    flow.socket.write('x\n');
  });
}

function openFlow(host: string, port: number, timeoutMs: number): Promise<Flow | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const flow: Flow = { socket, via: '', lines: [], broken: false };
    const fail = (): void => {
      flow.broken = true;
      for (const waiting of flow.lines.splice(0)) waiting(undefined);
    };
    socket.on('error', fail);
    socket.on('close', fail);
    createInterface({ input: socket })
      .on('line', (line) => flow.lines.shift()?.(line))
      .on('error', fail);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(undefined);
    }, timeoutMs);
    socket.once('connect', () => {
      void exchange(flow, Math.max(1, timeoutMs)).then((via) => {
        clearTimeout(timer);
        if (via === undefined) {
          socket.destroy();
          resolve(undefined);
          return;
        }
        flow.via = via;
        resolve(flow);
      });
    });
  });
}

function countVia(flows: readonly Flow[]): Record<string, number> {
  const via: Record<string, number> = {};
  for (const f of flows) via[f.via] = (via[f.via] ?? 0) + 1;
  return via;
}

function client(host: string, port: number): void {
  const tags = new Map<string, Flow[]>();
  let queue = Promise.resolve();
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const command = JSON.parse(line) as { cmd: string; tag: string; count?: number; timeoutMs?: number };
    queue = queue.then(async () => {
      const timeoutMs = command.timeoutMs ?? 2000;
      if (command.cmd === 'open') {
        const opened = await Promise.all(Array.from({ length: command.count ?? 1 }, () => openFlow(host, port, timeoutMs)));
        const flows = opened.filter((f): f is Flow => f !== undefined);
        tags.set(command.tag, [...(tags.get(command.tag) ?? []), ...flows]);
        print({ event: 'opened', tag: command.tag, via: countVia(flows), failed: opened.length - flows.length });
      } else if (command.cmd === 'check') {
        const flows = tags.get(command.tag) ?? [];
        const answers = await Promise.all(flows.map((f) => exchange(f, timeoutMs)));
        const ok = flows.filter((_, i) => answers[i] !== undefined);
        print({ event: 'checked', tag: command.tag, via: countVia(ok), ok: ok.length, broken: flows.length - ok.length, brokenVia: countVia(flows.filter((_, i) => answers[i] === undefined)) });
      } else if (command.cmd === 'close') {
        for (const f of tags.get(command.tag) ?? []) f.socket.destroy();
        tags.delete(command.tag);
        print({ event: 'closed', tag: command.tag });
      }
    });
  });
  lines.on('close', () => {
    void queue.then(() => {
      for (const flows of tags.values()) for (const f of flows) f.socket.destroy();
    });
  });
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'serve') serve(Number(args[0]));
else if (mode === 'client') client(args[0] ?? '', Number(args[1]));
else {
  process.stderr.write('usage: gateway-flows serve PORT | client HOST PORT\n');
  process.exitCode = 2;
}
