// Runs a UdpRelay (the library, not the CLI) in the current namespace, for tests that need its
// test seam (src/dataplane/udp/test-seam.ts). argv[2]: JSON UdpRelayConfig. Prints events as JSON lines on stdout; stdin lines:
// `release` (end a test hold), `crash` (testSeamCrashLoop), `counters` (print
// {"type":"counters"} with relay.counters()), `stop` (stop, print
// {"type":"udp.stats"}, then {"type":"budget","udpInUse":N} with the descriptor budget's UDP entries
// still taken, exit). The relay giving up (onFailure) prints {"type":"failure"}.
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
  if (line === 'stop') {
    lines.close();
    void relay.stop().then(() => {
      print({ type: 'budget', udpInUse: budget.snapshot().byConsumer.udp.inUse });
      process.exit(0);
    });
  }
});
