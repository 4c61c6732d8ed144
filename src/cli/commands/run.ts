/** `tproxy run`: the daemon: transparent listeners and their kernel rules, reloaded on SIGHUP. */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { configFlags } from '../../core/config/flags.js';
import type { TproxyConfig } from '../../core/config/tproxy-config.js';
import { RulesController } from '../../control/apply.js';
import { Daemon, type DaemonEvent } from '../../daemon/daemon.js';
import { Proxy, sumProxyCounters } from '../../dataplane/proxy.js';
import { ProcessRunner } from '../../sys/exec.js';
import type { CliIo, Command } from '../io.js';
import { formatEvent } from '../log.js';
import { backendFrom, configFrom, selectionHelp, selectionOptions, type SelectionValues } from '../selection.js';

const RUN_FLAGS = configFlags();

const USAGE = `Usage: tproxy run [--config FILE] [options]

Start the transparent proxy: for each listener, IP_TRANSPARENT sockets for TCP and UDP on its
port, relaying each intercepted flow to its original destination; apply the kernel rules (one
nftables table sending each listener's ports to its port, fwmark ip rules, local route table) and
remove them again on exit. Without --config, the flags describe one listener.

SIGHUP re-reads --config (the flags still override it): an invalid file is refused and logged, and
the running configuration stays; a valid one changes listeners and rules without dropping the
flows of unchanged listeners. SIGTERM or SIGINT stop: listeners close, flows get shutdown.graceMs.

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

export const runCommand: Command = {
  name: 'run',
  summary: 'run the proxy and manage its kernel rules',
  usage: USAGE,
  async run(argv: string[], io: CliIo): Promise<number> {
    const values: SelectionValues = parseArgs({ args: argv, options: { ...selectionOptions(RUN_FLAGS), help: { type: 'boolean' } }, strict: true }).values;
    if (values.help === true) {
      io.out(USAGE);
      return 0;
    }
    const config: TproxyConfig = await configFrom(values);
    const log = (event: DaemonEvent): void => io.err(formatEvent(event, (daemon as Daemon | undefined)?.config.log.format ?? config.log.format));
    const daemon: Daemon = new Daemon(config, {
      emit: log,
      createProxy: (proxyConfig, emit) => new Proxy(proxyConfig, { emit }),
      rules: (choice) => {
        const backend = backendFrom(choice);
        return { backend, controller: new RulesController(new ProcessRunner(), { backend }) };
      },
      cores: os.availableParallelism(),
      pid: process.pid,
    });
    await daemon.start();
    const running = daemon;
    log(readyEvent(running));

    await new Promise<void>((resolve) => {
      const reload = (): void => {
        if (typeof values.config !== 'string') {
          log({ type: 'reload.rejected', error: 'no --config file to reload: the flags alone cannot change' });
          return;
        }
        log({ type: 'reload', file: values.config });
        configFrom(values)
          .then((next) => running.reload(next))
          .then(() => log(readyEvent(running)))
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
    // Listeners close first; the rules stay while flows drain, because established flows reach
    // their transparent sockets only through the divert rule and the fwmark route. New connections
    // meanwhile find no listener and meet the fail mode.
    const report = await running.stop(running.config.shutdown.graceMs);
    log({ type: 'stopped', flowsCompleted: report.completed, flowsReset: report.forced, counters: sumProxyCounters(Object.values(report.counters)), listeners: report.counters });
    return 0;
  },
};
