/** `tproxy run`: the daemon: transparent listeners and their kernel rules, reloaded on SIGHUP. */
import os from 'node:os';
import { checkRunPrivileges, relevantCapabilities } from '../../core/capabilities.js';
import { HELP_OPTION } from '../../core/cli-options.js';
import { configFlags } from '../../core/config/flags.js';
import type { TproxyConfig } from '../../core/config/tproxy-config.js';
import { RulesController } from '../../control/apply.js';
import { Daemon, type DaemonEvent } from '../../daemon/daemon.js';
import { MmproxyListeners } from '../../daemon/mmproxy.js';
import { Operations } from '../../daemon/operations.js';
import { flowEventsOf } from '../../daemon/proxy-config.js';
import { Dashboard } from '../../daemon/dashboard/dashboard.js';
import { DASHBOARD_DEFAULT_LISTEN } from '../../core/config/sections/dashboard.js';
import { explainRequest } from '../../core/model/explain-request.js';
import { takeSnapshot } from '../../sys/snapshot.js';
import { SharedRead } from '../../daemon/shared-read.js';
import { defaultTcpWorkers, Proxy, sumProxyCounters } from '../../dataplane/proxy.js';
import { describeCapacity } from '../../dataplane/tcp/capacity.js';
import { ProcessRunner } from '../../sys/exec.js';
import { watchFileContent, type FileWatch } from '../../sys/file-watch.js';
import { SocketApi } from '../../sys/socket.js';
import { processDescriptorBudget } from '../../sys/limits.js';
import { processPrivileges, unprivilegedPortStart } from '../../sys/privileges.js';
import { type CliIo, defineCommand } from '../io.js';
import { createLogger, type Logger } from '../../daemon/log.js';
import { RunSignals } from '../run-signals.js';
import { backendFrom, configFrom, selectionOptions, type SelectionValues } from '../selection.js';
import { version } from '../version.js';

const OPTIONS = [...selectionOptions(configFlags()), HELP_OPTION];

const SYNOPSIS = ['tproxy run [--config FILE] [options]'];

const DESCRIPTION = `Start the transparent proxy: for each listener, IP_TRANSPARENT sockets for TCP and UDP on its
port, relaying each intercepted flow to its original destination; apply the kernel rules (one
nftables table sending each listener's ports to its port, fwmark ip rules, local route table) and
remove them again on exit. Without --config, the flags describe one listener.

SIGHUP re-reads --config (the flags still override it): an invalid file is refused and logged, and
the running configuration stays; a valid one changes listeners and rules without dropping the
flows of unchanged listeners (one during the start is applied once started; one while stopping is
ignored). SIGTERM or SIGINT stop: listeners close, flows get shutdown.graceMs, the rules go; a
second one resets the flows at once and still removes the rules.

Opt-in: Prometheus metrics over HTTP (--metrics-address), the admin socket that tproxy status
asks (--admin-socket; the systemd unit uses /run/tproxy/admin.sock) and the live dashboard in the
browser (dashboard.enabled in the configuration file; docs/dashboard.md). Log lines go to stderr
(JSON: time, level, type, msg, then the event's fields).

Each option sets the configuration setting in brackets (see tproxy config example).
`;

/** How old the kernel state a dashboard explain uses may be (docs/dashboard.md says so). */
const EXPLAIN_STATE_MAX_AGE_MS = 1000;

function readyEvent(daemon: Daemon): DaemonEvent {
  const listeners = daemon.listeners();
  return {
    type: 'ready',
    pid: process.pid,
    listeners: listeners.map((l) => ({ name: l.name, port: l.config.port, tcpWorkers: l.proxy.workerPids(), maxConnectionsPerWorker: l.proxy.tcpCapacity().perWorker, capacity: describeCapacity(l.proxy.tcpCapacity()) })),
    tcpWorkers: listeners.flatMap((l) => l.proxy.workerPids()),
    maxConnectionsPerWorker: listeners[0]?.proxy.tcpCapacity().perWorker ?? 0,
  };
}

/** Refuse to start without the capabilities every listener needs, before anything is opened. */
function checkPrivileges(config: TproxyConfig, log: Logger): void {
  const privileges = processPrivileges();
  const portStart = unprivilegedPortStart();
  for (const l of config.listeners) {
    checkRunPrivileges(privileges, config.rules.apply, { listenPort: l.port, udpPorts: l.intercept.flatMap((s) => (s.transport === 'udp' ? s.ports : [])), unprivilegedPortStart: portStart });
  }
  log({ type: 'privileges', uid: privileges.uid, capabilities: relevantCapabilities(privileges.effective), ambient: relevantCapabilities(privileges.ambient) });
}

export const runCommand = defineCommand({
  name: 'run',
  summary: 'run the proxy and manage its kernel rules',
  synopsis: SYNOPSIS,
  description: DESCRIPTION,
  options: OPTIONS,
  async run({ values, argv }, io): Promise<number> {
    // Signals are ours from the first line (a default action would leave the rules installed):
    // until the logger of the configuration exists, what they say goes to stderr as text.
    let logger: Logger = createLogger({ format: 'text', level: 'info', write: (line) => io.err(line) });
    const log: Logger = (event) => logger(event);
    const signals = new RunSignals(process, log);
    // An unexpected exception anywhere in this process: stop and remove the rules instead of dying with them.
    const unexpected = (error: unknown): void => {
      const e = error instanceof Error ? error : new Error(String(error));
      log({ type: 'error', code: 'ERR_UNEXPECTED', message: `unexpected failure, stopping: ${e.stack ?? e.message}` });
      signals.fail(e);
    };
    process.on('uncaughtException', unexpected);
    try {
      return await runDaemon(values, argv, io, signals, log, (next) => (logger = next));
    } finally {
      process.off('uncaughtException', unexpected);
      signals.dispose();
    }
  },
});

async function runDaemon(values: SelectionValues, argv: readonly string[], io: CliIo, signals: RunSignals, log: Logger, setLogger: (logger: Logger) => void): Promise<number> {
  const config: TproxyConfig = await configFrom(values);
  // log.format and log.level follow reloads: the logger of the configuration in force.
  const loggerOf = (c: TproxyConfig): Logger => createLogger({ format: c.log.format, level: c.log.level, write: (line) => io.err(line) });
  setLogger(loggerOf(config));
  checkPrivileges(config, log);
  // This process's descriptors: UDP sessions, in-process TCP flows, the nft / ip children and the
  // admin and metrics servers all take theirs from it (TCP worker processes have their own).
  const budget = processDescriptorBudget();
  // reload.watch (read at start): a change on disk reloads as SIGHUP does (the reloads queue in the
  // daemon). Watched from here, so a change while starting is not missed: it is applied once running.
  const fileChange: { reload?: () => void; missed: boolean } = { missed: false };
  let watch: FileWatch | undefined;
  if (config.reload.watch && typeof values.config === 'string') {
    const file = values.config;
    watch = await watchFileContent(file, () => {
      log({ type: 'config.changed', file });
      if (fileChange.reload) fileChange.reload();
      else fileChange.missed = true;
    }, { onError: (error) => log({ type: 'error', code: 'ERR_SYSCALL', message: `watching ${file}: ${error.message}` }) }).catch((error: unknown) => {
      log({ type: 'error', code: 'ERR_SYSCALL', message: `reload.watch: cannot watch ${file} (${(error as Error).message}): reload with SIGHUP instead` });
      return undefined;
    });
  } else if (config.reload.watch) log({ type: 'reload.rejected', error: 'reload.watch needs a --config file to watch' });
  // Metrics and admin socket: opened before the listeners (a second daemon on the same admin
  // socket, or a taken metrics port, is refused before anything is touched); the admin socket
  // and metrics.listen are read once, at start.
  // The dashboard (opt-in, read at start): its flow table is fed by the daemon's events.
  let reloadNow: () => Promise<void> = () => Promise.reject(new Error('the daemon is not running yet'));
  const explainRunner = new ProcessRunner(budget);
  // Every explain from the dashboard reads nft, ip and ss: one read serves the requests of a second.
  const explainState = new SharedRead(() => takeSnapshot(explainRunner), EXPLAIN_STATE_MAX_AGE_MS);
  const dashboard: Dashboard | undefined = config.dashboard.enabled
    ? new Dashboard(
        {
          listeners: () => daemon.listeners(),
          status: () => ops.status(0),
          explain: async (request) => explainRequest(await explainState.get(), 'state: this host', request, daemon.config),
          reload: () => reloadNow(),
          readiness: () => ops.readiness(),
          drain: (on) => ops.drain(on),
          // mmproxy is made below, before the dashboard's first tick or page.
          mmproxyUdpSessions: (limit) => mmproxy.udpSessions(limit),
          closeMmproxyUdpSession: (name, id) => mmproxy.closeUdpSession(name, id),
        },
        config.dashboard.token !== undefined ? { token: config.dashboard.token } : {},
      )
    : undefined;
  const ops: Operations = new Operations({
    log,
    version: version(),
    engine: config.tcp.engine,
    budget,
    argv,
    ...(typeof values.config === 'string' ? { configFile: values.config } : {}),
    ...(config.metrics.listen ? { metricsAddress: config.metrics.listen } : {}),
    ...(config.admin.socket !== undefined ? { adminSocket: config.admin.socket } : {}),
    ...(dashboard ? { dashboard, dashboardAddress: DASHBOARD_DEFAULT_LISTEN } : {}),
  });
  const daemon: Daemon = new Daemon(config, {
    emit: ops.sink,
    createProxy: (proxyConfig, emit) => new Proxy(proxyConfig, { emit, budget, onFailure: (error) => signals.fail(error) }),
    rules: (choice) => {
      const backend = backendFrom(choice);
      return { backend, controller: new RulesController(new ProcessRunner(budget), { backend }) };
    },
    cores: os.availableParallelism(),
    pid: process.pid,
  });
  // mmproxy TCP entries run on the TCP engine asked for (uring: splice where io_uring cannot run), in as many threads as TCP workers.
  const mmproxy = new MmproxyListeners({ sockets: new SocketApi(), emit: ops.sink, budget, engine: config.tcp.engine, threads: config.tcp.workers === 'auto' ? defaultTcpWorkers(os.availableParallelism()) : config.tcp.workers, flowEvents: flowEventsOf(config) });
  // Read at each request, so listeners and rules changed by a reload are followed.
  await ops.start({ listeners: () => daemon.listeners(), rules: () => daemon.appliedRules(), config: () => daemon.config, mmproxy: () => mmproxy.counters(), mmproxyStatus: () => mmproxy.status() }).catch((error: unknown) => {
    watch?.close();
    throw error;
  });
  // mmproxy listeners (behind a load balancer) first: a taken port is refused before any rule is applied.
  await mmproxy
    .apply(config.mmproxy)
    .then(() => daemon.start())
    .catch(async (error: unknown) => {
      watch?.close();
      await mmproxy.stop();
      await ops.close();
      throw error;
    });
  const running = daemon;
  log(readyEvent(running));
  ops.running();

  // SIGHUP, or the dashboard's reload action: resolves once applied, rejects with why it was refused.
  reloadNow = async () => {
    if (typeof values.config !== 'string') {
      const error = 'no --config file to reload: the flags alone cannot change';
      log({ type: 'reload.rejected', error });
      throw new Error(error);
    }
    log({ type: 'reload', file: values.config });
    try {
      const next = await configFrom(values);
      // All or nothing: the mmproxy listeners' new addresses are bound first (the old ones still
      // accept), the daemon's reload (listeners, rules) runs, then the mmproxy sockets change hands.
      const change = await mmproxy.prepare(next.mmproxy);
      try {
        // The leaving entries' reply routing stays in the rules until their flows end.
        await running.reload(next, change.leaving);
      } catch (error) {
        await change.abort();
        throw error;
      }
      for (const { settings, drained } of change.commit()) void drained.then(() => running.mmproxyDrained(settings));
      // Per-flow events follow the new log level and dashboard, as the TPROXY listeners' do (Daemon.reload).
      mmproxy.setFlowEvents(flowEventsOf(next));
    } catch (error) {
      log({ type: 'reload.rejected', error: (error as Error).message, ...(error instanceof Error && 'code' in error && typeof error.code === 'string' ? { code: error.code } : {}) });
      throw error;
    }
    setLogger(loggerOf(running.config));
    log(readyEvent(running));
  };
  const reload = (): void => void reloadNow().catch(() => undefined);
  signals.running(reload);
  if (fileChange.missed) reload();
  fileChange.reload = reload;
  const cause = await signals.stopRequested;
  watch?.close();
  log(cause.kind === 'failure' ? { type: 'stopping', cause: 'failure', error: cause.error.message } : { type: 'stopping', cause: 'signal', signal: cause.signal });
  ops.stopping();
  // The rule removal may now use the descriptors kept for it.
  budget.stopping();
  // Listeners close first; the rules stay while flows drain, because established flows reach
  // their transparent sockets only through the divert rule and the fwmark route. New connections
  // meanwhile find no listener and meet the fail mode. After a failure nothing waits.
  const stopped = running.stop(cause.kind === 'failure' ? 0 : running.config.shutdown.graceMs);
  signals.stopping(() => void running.stop(0));
  const report = await Promise.all([stopped, mmproxy.stop()])
    .then(([r]) => r)
    .finally(() => ops.close());
  log({ type: 'stopped', flowsCompleted: report.completed, flowsReset: report.forced, counters: sumProxyCounters(Object.values(report.counters)), listeners: report.counters });
  return cause.kind === 'failure' ? 1 : 0;
}
