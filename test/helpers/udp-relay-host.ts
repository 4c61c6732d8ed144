// Runs a UdpRelay (the library, not the CLI) in the current namespace, for tests that need its
// test seam (src/dataplane/udp/test-seam.ts). argv[2]: JSON UdpRelayConfig. Prints events as JSON lines on stdout; stdin lines:
// `release` (end a test hold), `crash` (testSeamCrashLoop), `counters` (print
// {"type":"counters"} with relay.counters()), `stop` (stop, print
// {"type":"udp.stats"}, then {"type":"budget","udpInUse":N,"sockets":M} with the descriptor
// budget's UDP entries still taken and the sockets this process still has open past stdio, exit;
// `stop-and-stay`: the same without exiting, until `exit`). The relay giving up (onFailure) prints {"type":"failure"}.
import { readdirSync, readlinkSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { UdpRelayConfig } from '../../src/dataplane/udp/relay.js';
import { UdpRelay } from '../../src/dataplane/udp/relay.js';
import { SocketApi } from '../../src/sys/socket.js';
import { processDescriptorBudget } from '../../src/sys/limits.js';

const print = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value)}\n`);
const config = JSON.parse(process.argv[2] ?? '{}') as UdpRelayConfig;
const budget = processDescriptorBudget();
const relay = new UdpRelay(config, { sockets: new SocketApi(), emit: print, budget, onTestSeamHold: () => print({ type: 'held' }), onFailure: (error) => print({ type: 'failure', message: error.message }) });
await relay.start();
print({ type: 'ready' });
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line === 'release') relay.releaseTestSeamHold();
  if (line === 'crash') relay.testSeamCrashLoop();
  if (line === 'counters') print({ type: 'counters', counters: relay.counters() });
  if (line === 'exit') process.exit(0);
  if (line === 'stop' || line === 'stop-and-stay') {
    const stay = line === 'stop-and-stay';
    if (!stay) lines.close();
    void relay.stop().then(() => {
      // Past stdin, stdout and stderr (socket pairs when the parent spawned this with pipes).
      const sockets = readdirSync('/proc/self/fd').filter((fd) => {
        if (Number(fd) <= 2) return false;
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
        } catch {
          return false; // the directory's own descriptor, gone once read
        }
      }).length;
      print({ type: 'budget', udpInUse: budget.snapshot().byConsumer.udp.inUse, sockets });
      if (!stay) process.exit(0);
    });
  }
});
