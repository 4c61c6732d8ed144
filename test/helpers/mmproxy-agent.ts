// Runs one mmproxy TCP listener in the namespace it is started in (argv[2]: its config as JSON;
// argv[3]: the engine, splice or uring (two engine threads each) or stream; argv[4], optional, JSON
// options: `threads` (engine threads), `budget: true` (the process's descriptor budget, made from its
// RLIMIT_NOFILE as the daemon makes it)): prints each event as a JSON line, {"type":"ready"} once
// listening, and its counters as {"type":"counters","seq":N,...} for each "counters N" line on stdin
// (with `budget`: the budget's snapshot and what the mmproxy consumer could take now). Ends on
// SIGTERM or stdin's end.
import { createInterface } from 'node:readline';
import { MmproxySpliceRelay } from '../../src/dataplane/mmproxy/splice-relay.js';
import { MmproxyTcpRelay, type MmproxyTcpConfig } from '../../src/dataplane/mmproxy/tcp-relay.js';
import { processDescriptorBudget } from '../../src/sys/limits.js';
import { SocketApi } from '../../src/sys/socket.js';

const config = JSON.parse(process.argv[2] ?? '{}') as MmproxyTcpConfig;
const options = JSON.parse(process.argv[4] ?? '{}') as { threads?: number; budget?: boolean };
const print = (line: object): void => void process.stdout.write(`${JSON.stringify(line)}\n`);
const budget = options.budget ? processDescriptorBudget() : undefined;
// Per-flow events on: the tests wait for refusals of sources not allowed, health checks and closes.
const deps = { sockets: new SocketApi(), emit: print, flowEvents: true, ...(budget ? { budget } : {}) };
const relay = process.argv[3] === 'stream' ? new MmproxyTcpRelay(config, deps) : new MmproxySpliceRelay(config, { ...deps, threads: options.threads ?? 2, engine: process.argv[3] === 'uring' ? 'uring' : 'splice' });
const stop = (): void => void relay.stop().then(() => process.exit(0));
process.once('SIGTERM', stop);
await relay.start();
print({ type: 'ready' });
const input = createInterface({ input: process.stdin });
input.on('line', (line) => {
  const [word, seq] = line.trim().split(' ');
  if (word === 'counters') print({ type: 'counters', seq: Number(seq), ...relay.counters, ...(budget ? { budget: budget.snapshot(), available: budget.available('mmproxy') } : {}) });
});
input.once('close', stop);
