// Runs a SpliceRelay (the library, not the CLI) in the current namespace, for tests that need a
// setting the CLI does not offer (maxPipes: a tiny pipe budget). argv[2]: JSON of the relay's
// config (SpliceRelay's first argument). Prints events as JSON lines on stdout, then
// {"type":"ready"}; stdin line `stop`: stop, print {"type":"stopped","counters":...}, exit.
import { createInterface } from 'node:readline';
import { SpliceRelay } from '../../src/dataplane/tcp/splice/relay.js';
import { localAddressCache } from '../../src/dataplane/local-addresses.js';
import { SocketApi } from '../../src/sys/socket.js';

const print = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value)}\n`);
const config = JSON.parse(process.argv[2] ?? '{}') as ConstructorParameters<typeof SpliceRelay>[0];
const relay = new SpliceRelay(config, { sockets: new SocketApi(), emit: print, localAddresses: localAddressCache() });
await relay.start();
print({ type: 'ready' });
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line !== 'stop') return;
  lines.close();
  void relay.stop(0).then((report) => {
    print({ type: 'stopped', report, counters: relay.counters });
    process.exit(0);
  });
});
