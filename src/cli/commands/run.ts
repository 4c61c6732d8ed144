/** `tproxy run`: start the transparent proxy and (unless --no-rules) apply its kernel rules. */
import { parseArgs } from 'node:util';
import { parseInteger } from '../../core/config/intercept.js';
import { TproxyError } from '../../core/errors.js';
import type { RulesPlan } from '../../core/rules/ruleset.js';
import { RulesController } from '../../control/apply.js';
import type { UpstreamMode } from '../../dataplane/events.js';
import { DEFAULT_PROXY_CONFIG, Proxy } from '../../dataplane/proxy.js';
import type { TcpEngineKind } from '../../dataplane/tcp/engines.js';
import { UDP_MAPPINGS } from '../../dataplane/udp/protocol.js';
import { checkRunPrivileges, relevantCapabilities } from '../../core/capabilities.js';
import { ProcessRunner } from '../../sys/exec.js';
import { processPrivileges, unprivilegedPortStart } from '../../sys/privileges.js';
import type { CliIo, Command } from '../io.js';
import { DEFAULT_LISTENER, Operations } from '../../daemon/operations.js';
import { parseListenAddress } from '../../daemon/listen-address.js';
import { LOG_LEVELS, createLogger } from '../log.js';
import { version } from '../version.js';
import { SELECTION_HELP, SELECTION_OPTIONS, backendFrom, planFromConfig, rulesConfigFrom } from '../selection.js';

const USAGE = `Usage: tproxy run [options]

Start the transparent proxy: IP_TRANSPARENT listeners for TCP and UDP on --listen, relaying each
intercepted flow to its original destination; apply the kernel rules (nftables table, fwmark
ip rules, local route table) and remove them again on exit.

${SELECTION_HELP}
  --upstream direct|transparent  source address toward servers: this host's (direct, default)
                         or the client's (transparent; needs replies routed back through this host)
  --no-rules             do not touch kernel rules (they are managed elsewhere)
  --workers N            TCP worker processes with SO_REUSEPORT listeners, default one per core
                         (0: TCP in the main process)
  --tcp-engine splice|stream  splice: bytes move kernel to kernel (default); stream: Node streams
  --max-connections N    concurrent TCP flows per worker; accepting pauses at the cap, default 100000
  --connect-timeout-ms N upstream connect timeout, default 10000
  --idle-timeout-ms N    close a TCP flow idle both ways this long, default 600000 (0: never)
  --keepalive-ms N       TCP keepalive on both sides after this idle time, default 0 (off)
  --grace-ms N           on stop, let flows finish this long before resetting them, default 5000
  --udp-idle-timeout-ms N  idle time after which a UDP session ends, default 60000
  --log-level error|warn|info|debug  debug adds the lines of every flow, default info
  --udp-max-sessions N   UDP sessions at most; the least recently used is evicted, default 65536
  --udp-mapping endpoint-dependent|endpoint-independent
                         endpoint-dependent (default): only the original destination answers;
                         endpoint-independent: any remote that sends to the client's upstream
                         port reaches the client (full cone, for games and STUN)
  --log-format text|json log lines on stderr, default text (JSON: time, level, type, msg, fields)
  --metrics-address HOST:PORT  serve Prometheus metrics at http://HOST:PORT/metrics (off by default)
  --admin-socket PATH    answer tproxy status on this unix socket, mode 0600 (off by default;
                         the systemd unit uses /run/tproxy/admin.sock)
  --config FILE          configuration file (not supported yet)
  --help                 this help
`;

function parseUpstream(text: string): UpstreamMode {
  if (text === 'direct' || text === 'transparent') return text;
  throw new TproxyError('ERR_INVALID_ARGUMENT', `--upstream ${text}: use direct or transparent`, { value: text });
}

function parseEngine(text: string): TcpEngineKind {
  if (text === 'splice' || text === 'stream') return text;
  throw new TproxyError('ERR_INVALID_ARGUMENT', `--tcp-engine ${text}: use splice or stream`, { value: text });
}

export const runCommand: Command = {
  name: 'run',
  summary: 'run the proxy and manage its kernel rules',
  usage: USAGE,
  async run(argv: string[], io: CliIo): Promise<number> {
    const { values } = parseArgs({
      args: argv,
      options: {
        ...SELECTION_OPTIONS,
        upstream: { type: 'string', default: 'direct' },
        'no-rules': { type: 'boolean', default: false },
        workers: { type: 'string' },
        'tcp-engine': { type: 'string', default: 'splice' },
        'max-connections': { type: 'string', default: '100000' },
        'connect-timeout-ms': { type: 'string', default: '10000' },
        'idle-timeout-ms': { type: 'string', default: '600000' },
        'keepalive-ms': { type: 'string', default: '0' },
        'grace-ms': { type: 'string', default: '5000' },
        'udp-idle-timeout-ms': { type: 'string', default: '60000' },
        'log-level': { type: 'string', default: 'info' },
        'udp-max-sessions': { type: 'string', default: '65536' },
        'udp-mapping': { type: 'string', default: 'endpoint-dependent' },
        'log-format': { type: 'string', default: 'text' },
        'metrics-address': { type: 'string' },
        'admin-socket': { type: 'string' },
        config: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    });
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    if (values.config !== undefined) {
      throw new TproxyError('ERR_NOT_IMPLEMENTED', '--config is not supported yet: use the command-line flags (config files arrive with the operations work)');
    }
    const format = values['log-format'];
    if (format !== 'json' && format !== 'text') throw new TproxyError('ERR_INVALID_ARGUMENT', `--log-format ${format}: use text or json`);
    const rulesConfig = rulesConfigFrom(values);
    const udpIdle = parseInteger('udp-idle-timeout-ms', values['udp-idle-timeout-ms'], 100);
    const level = LOG_LEVELS.find((l) => l === values['log-level']);
    if (!level) throw new TproxyError('ERR_INVALID_ARGUMENT', `--log-level ${values['log-level']}: use ${LOG_LEVELS.join(', ')}`);
    const metricsAddress = values['metrics-address'] === undefined ? undefined : parseListenAddress('--metrics-address', values['metrics-address']);
    const graceMs = parseInteger('grace-ms', values['grace-ms'], 0);
    const udpMaxSessions = parseInteger('udp-max-sessions', values['udp-max-sessions'], 1);
    const udpMapping = UDP_MAPPINGS.find((m) => m === values['udp-mapping']);
    if (!udpMapping) throw new TproxyError('ERR_INVALID_ARGUMENT', `--udp-mapping ${values['udp-mapping']}: use ${UDP_MAPPINGS.join(' or ')}`);
    const log = createLogger({ format, level, write: (line) => io.err(line) });
    const plan: RulesPlan | undefined = values['no-rules'] ? undefined : planFromConfig(rulesConfig);
    const backend = plan ? backendFrom(values) : undefined;

    const tcpEngine = parseEngine(values['tcp-engine']);
    const privileges = processPrivileges();
    checkRunPrivileges(privileges, plan !== undefined, { listenPort: rulesConfig.listenPort, udpPorts: rulesConfig.intercept.flatMap((s) => (s.transport === 'udp' ? s.ports : [])), unprivilegedPortStart: unprivilegedPortStart() });
    log({ type: 'privileges', uid: privileges.uid, capabilities: relevantCapabilities(privileges.effective), ambient: relevantCapabilities(privileges.ambient) });
    const ops = new Operations({ log, version: version(), engine: tcpEngine, ...(metricsAddress ? { metricsAddress } : {}), ...(values['admin-socket'] !== undefined ? { adminSocket: values['admin-socket'] } : {}) });
    const proxy = new Proxy(
      {
        ...DEFAULT_PROXY_CONFIG,
        port: rulesConfig.listenPort,
        listenAddresses: rulesConfig.listenAddresses,
        families: rulesConfig.families,
        transports: [...new Set(rulesConfig.intercept.map((s) => s.transport))],
        upstream: parseUpstream(values.upstream),
        upstreamMark: rulesConfig.upstreamMark,
        udpIdleTimeoutMs: udpIdle,
        tcpWorkers: values.workers === undefined ? DEFAULT_PROXY_CONFIG.tcpWorkers : parseInteger('workers', values.workers, 0),
        maxConnections: parseInteger('max-connections', values['max-connections'], 1),
        connectTimeoutMs: parseInteger('connect-timeout-ms', values['connect-timeout-ms'], 1),
        tcpIdleTimeoutMs: parseInteger('idle-timeout-ms', values['idle-timeout-ms'], 0),
        tcpKeepAliveMs: parseInteger('keepalive-ms', values['keepalive-ms'], 0),
        flowEvents: level === 'debug',
        tcpEngine,
        maxUdpSessions: udpMaxSessions,
        udpMapping,
      },
      { emit: ops.sink },
    );
    const controller = new RulesController(new ProcessRunner(), { ...(backend ? { backend } : {}) });
    await ops.start({ listeners: () => [{ name: DEFAULT_LISTENER, proxy }], rules: () => (plan && backend ? { plan, backend, controller } : undefined) });
    // Listeners first: a tproxy rule with no transparent socket behind it lets traffic bypass us.
    await proxy.start().catch(async (error: unknown) => {
      await ops.close();
      throw error;
    });
    if (plan) {
      try {
        // Recorded as ours: after a crash the next start (or rules cleanup) finds and replaces it.
        const applied = await controller.apply(plan, { owner: process.pid });
        for (const warning of applied.warnings) log({ type: 'rules.warning', message: warning });
        log({ type: 'rules.applied', backend, table: `${plan.table.family} ${plan.table.name}`, policyRoutes: plan.policyRoutes.length, failMode: plan.config.failMode, ...(applied.replaced ? { replaced: applied.replaced } : {}) });
      } catch (error) {
        await proxy.stop(0);
        await ops.close();
        throw error;
      }
    }
    log({ type: 'ready', pid: process.pid, tcpWorkers: proxy.workerPids(), maxConnectionsPerWorker: proxy.maxConnectionsPerWorker() });
    ops.running();

    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    log({ type: 'stopping' });
    ops.stopping();
    // Listeners close first; the rules stay while flows drain, because established flows reach
    // their transparent sockets only through the divert rule and the fwmark route. New connections
    // meanwhile find no listener, and nft tproxy lets them pass (fail-open).
    const report = await proxy.stop(graceMs);
    if (plan) {
      const removed = await controller.remove(plan);
      log({ type: 'rules.removed', ...removed });
    }
    await ops.close();
    log({ type: 'stopped', flowsCompleted: report.completed, flowsReset: report.forced, counters: proxy.counters() });
    return 0;
  },
};
