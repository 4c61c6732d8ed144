/** `tproxy run`: the daemon: transparent listeners and their kernel rules, reloaded on SIGHUP. */
import os from 'node:os';
import { checkRunPrivileges, relevantCapabilities } from '../../core/capabilities.js';
import { configFlags } from '../../core/config/flags.js';
import type { TproxyConfig } from '../../core/config/tproxy-config.js';
import { RulesController } from '../../control/apply.js';
import { Daemon, type DaemonEvent } from '../../daemon/daemon.js';
import { Operations } from '../../daemon/operations.js';
import { Proxy, sumProxyCounters } from '../../dataplane/proxy.js';
import { ProcessRunner } from '../../sys/exec.js';
import { processPrivileges, unprivilegedPortStart } from '../../sys/privileges.js';
import type { CliIo, Command } from '../io.js';
import { createLogger, type Logger } from '../log.js';
import { backendFrom, configFrom, selectionHelp, selectionOptions, type SelectionValues } from '../selection.js';
import { version } from '../version.js';
import { parseCommandLine } from '../args.js';

const RUN_FLAGS = configFlags();

const USAGE = `Usage: tproxy run [--config FILE] [options]

Start the transparent proxy: for each listener, IP_TRANSPARENT sockets for TCP and UDP on its
port, relaying each intercepted flow to its original destination; apply the kernel rules (one
nftables table sending each listener's ports to its port, fwmark ip rules, local route table) and
remove them again on exit. Without --config, the flags describe one listener.

SIGHUP re-reads --config (the flags still override it): an invalid file is refused and logged, and
the running configuration stays; a valid one changes listeners and rules without dropping the
flows of unchanged listeners. SIGTERM or SIGINT stop: listeners close, flows get shutdown.graceMs.

Opt-in: Prometheus metrics over HTTP (--metrics-address) and the admin socket that tproxy status
asks (--admin-socket; the systemd unit uses /run/tproxy/admin.sock). Log lines go to stderr
(JSON: time, level, type, msg, then the event's fields).

Options (each sets the configuration setting in brackets; see tproxy config example):
${selectionHelp(RUN_FLAGS)}
  --help                 this help
`;

function readyEvent(daemon: Daemon): DaemonEvent {
  const listeners = daemon.listeners();
  return {
    type: 'ready',
    pid: process.pid,
    listeners: listeners.map((l) => ({ name: l.name, port: l.config.port, tcpWorkers: l.proxy.workerPids(), maxConnectionsPerWorker: l.proxy.maxConnectionsPerWorker() })),
    tcpWorkers: listeners.flatMap((l) => l.proxy.workerPids()),
    maxConnectionsPerWorker: listeners[0]?.proxy.maxConnectionsPerWorker() ?? 0,
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

export const runCommand: Command = {
  name: 'run',
  summary: 'run the proxy and manage its kernel rules',
  usage: USAGE,
  async run(argv: string[], io: CliIo): Promise<number> {
    const values: SelectionValues = parseCommandLine({ args: argv, options: { ...selectionOptions(RUN_FLAGS), help: { type: 'boolean' } }, strict: true }).values;
    if (values.help === true) {
      io.out(USAGE);
      return 0;
    }
    const config: TproxyConfig = await configFrom(values);
    // log.format and log.level follow reloads: the logger of the configuration in force.
    const loggerOf = (c: TproxyConfig): Logger => createLogger({ format: c.log.format, level: c.log.level, write: (line) => io.err(line) });
    let logger = loggerOf(config);
    const log: Logger = (event) => logger(event);
    checkPrivileges(config, log);
    // Metrics and admin socket: opened before the listeners (a second daemon on the same admin
    // socket, or a taken metrics port, is refused before anything is touched); the admin socket
    // and metrics.listen are read once, at start.
    const ops = new Operations({
      log,
      version: version(),
      engine: config.tcp.engine,
      ...(config.metrics.listen ? { metricsAddress: config.metrics.listen } : {}),
      ...(config.admin.socket !== undefined ? { adminSocket: config.admin.socket } : {}),
    });
    const daemon: Daemon = new Daemon(config, {
      emit: ops.sink,
      createProxy: (proxyConfig, emit) => new Proxy(proxyConfig, { emit }),
      rules: (choice) => {
        const backend = backendFrom(choice);
        return { backend, controller: new RulesController(new ProcessRunner(), { backend }) };
      },
      cores: os.availableParallelism(),
      pid: process.pid,
    });
    // Read at each request, so listeners and rules changed by a reload are followed.
    await ops.start({ listeners: () => daemon.listeners(), rules: () => daemon.appliedRules() });
    await daemon.start().catch(async (error: unknown) => {
      await ops.close();
      throw error;
    });
    const running = daemon;
    log(readyEvent(running));
    ops.running();

    await new Promise<void>((resolve) => {
      const reload = (): void => {
        if (typeof values.config !== 'string') {
          log({ type: 'reload.rejected', error: 'no --config file to reload: the flags alone cannot change' });
          return;
        }
        log({ type: 'reload', file: values.config });
        configFrom(values)
          .then((next) => running.reload(next))
          .then(() => {
            logger = loggerOf(running.config);
            log(readyEvent(running));
          })
          .catch((error: unknown) => log({ type: 'reload.rejected', error: (error as Error).message, ...(error instanceof Error && 'code' in error ? { code: error.code } : {}) }));
      };
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        process.off('SIGHUP', reload);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      process.on('SIGHUP', reload);
    });
    log({ type: 'stopping' });
    ops.stopping();
    // Listeners close first; the rules stay while flows drain, because established flows reach
    // their transparent sockets only through the divert rule and the fwmark route. New connections
    // meanwhile find no listener and meet the fail mode.
    const report = await running.stop(running.config.shutdown.graceMs).finally(() => ops.close());
    log({ type: 'stopped', flowsCompleted: report.completed, flowsReset: report.forced, counters: sumProxyCounters(Object.values(report.counters)), listeners: report.counters });
    return 0;
  },
};
