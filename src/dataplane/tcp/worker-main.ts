/**
 * Entry point of a TCP worker process (forked by TcpWorkerPool). Each worker opens its own
 * SO_REUSEPORT transparent listeners, so the kernel spreads connections over the workers.
 */
import { isTproxyError } from '../../core/errors.js';
import { SocketApi } from '../../sys/socket.js';
import { processDescriptorBudget } from '../../sys/limits.js';
import type { ProxyEvent } from '../events.js';
import { localAddressCache } from '../local-addresses.js';
import { reserveTcpFlows } from './capacity.js';
import { createTcpEngine } from './engines.js';
import type { SupervisorMessage, TcpWorkerConfig, WorkerMessage } from './worker-protocol.js';

const send = (message: WorkerMessage): void => {
  process.send?.(message);
};

async function main(config: TcpWorkerConfig): Promise<void> {
  // A worker process has its own descriptor limit and spawns nothing: TCP flows get all of it.
  const budget = processDescriptorBudget({ childReserve: 0, stopReserve: 0 });
  const { maxConnections } = reserveTcpFlows(budget, config.relay.maxConnections, config.engine);
  let batch: ProxyEvent[] = [];
  let flushScheduled = false;
  const emit = (event: ProxyEvent): void => {
    batch.push(event);
    if (flushScheduled) return;
    flushScheduled = true;
    setImmediate(() => {
      flushScheduled = false;
      send({ kind: 'events', events: batch });
      batch = [];
    });
  };
  const engine = createTcpEngine(config.engine, config.families, { ...config.relay, maxConnections }, { sockets: new SocketApi(), emit, localAddresses: localAddressCache() });
  let locals;
  try {
    locals = await engine.start();
  } catch (error) {
    const e = isTproxyError(error) ? error : undefined;
    send({ kind: 'fatal', code: e?.code ?? 'ERR_SYSCALL', message: (error as Error).message, ...(e ? { details: { ...e.details } } : {}) });
    process.exit(1);
  }
  send({ kind: 'ready', locals, maxConnections });
  // Sent when they changed: an idle worker's unchanged counters would wake the supervisor for nothing.
  let lastCounters = '';
  const timer = setInterval(() => {
    const counters = engine.counters();
    const text = JSON.stringify(counters);
    if (text === lastCounters) return;
    lastCounters = text;
    send({ kind: 'counters', counters });
  }, config.countersIntervalMs);
  let stopping = false;
  process.on('message', (message: SupervisorMessage) => {
    if (message.kind === 'config') return; // taken once, at the start
    if (message.kind === 'snapshot') {
      void engine.snapshot(message.limit).then((snapshot) => send({ kind: 'snapshot', requestId: message.requestId, ...snapshot }));
      return;
    }
    if (message.kind === 'routing') {
      void engine.setRouting({ routing: message.routing, sniffTimeoutMs: message.sniffTimeoutMs }).then(() => send({ kind: 'routing', requestId: message.requestId }));
      return;
    }
    if (message.kind === 'close-flow') {
      void engine.closeFlow(message.id, message.reason).then((closed) => send({ kind: 'close-flow', requestId: message.requestId, closed }));
      return;
    }
    if (message.kind === 'flow-events') {
      engine.setFlowEvents(message.on);
      send({ kind: 'flow-events', requestId: message.requestId });
      return;
    }
    clearInterval(timer);
    // A second stop while draining shortens the grace; only the first reports.
    const first = !stopping;
    stopping = true;
    void engine.stop(message.graceMs).then((report) => {
      if (!first) return;
      setImmediate(() => {
        send({ kind: 'stopped', report, counters: engine.counters() });
        if (process.connected) process.disconnect?.();
      });
    });
  });
  // The supervisor went away (crashed or killed): do not linger as an orphan holding the port.
  process.on('disconnect', () => process.exit(0));
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
}

// The supervisor sends the configuration first; without an IPC channel there is none.
if (!process.send) {
  process.stderr.write('tproxy tcp worker: started without an IPC channel to its supervisor\n');
  process.exit(2);
}
process.once('message', (message: SupervisorMessage) => {
  if (message.kind !== 'config') {
    process.stderr.write(`tproxy tcp worker: expected its configuration first, got ${message.kind}\n`);
    process.exit(2);
  }
  void main(message.config);
});
