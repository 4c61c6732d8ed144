// Runs one mmproxy UDP listener in the namespace it is started in (argv[2]: its config as JSON):
// prints {"type":"ready"} once listening, and its counters as {"type":"counters","seq":N,...} for
// each "counters N" line on stdin. Ends on SIGTERM or stdin's end.
import { createInterface } from 'node:readline';
import { MmproxyUdpRelay, type MmproxyUdpConfig } from '../../src/dataplane/mmproxy/udp-relay.js';
import { SocketApi } from '../../src/sys/socket.js';

const config = JSON.parse(process.argv[2] ?? '{}') as MmproxyUdpConfig;
const print = (line: object): void => void process.stdout.write(`${JSON.stringify(line)}\n`);
const relay = new MmproxyUdpRelay(config, { sockets: new SocketApi() });
const stop = (): void => void relay.stop().then(() => process.exit(0));
process.once('SIGTERM', stop);
relay.start();
print({ type: 'ready' });
const input = createInterface({ input: process.stdin });
input.on('line', (line) => {
  const [word, seq] = line.trim().split(' ');
  if (word === 'counters') print({ type: 'counters', seq: Number(seq), sessions: relay.sessionCount, ...relay.counters });
});
input.once('close', stop);
