/** `tproxy run`: start the transparent proxy and (unless --no-rules) apply its kernel rules. */
import { parseArgs } from 'node:util';
import { TproxyError } from '../../core/errors.js';
import type { RulesPlan } from '../../core/rules/ruleset.js';
import { RulesController } from '../../control/apply.js';
import type { UpstreamMode } from '../../dataplane/events.js';
import { DEFAULT_PROXY_CONFIG, Proxy } from '../../dataplane/proxy.js';
import { ProcessRunner } from '../../sys/exec.js';
import type { CliIo, Command } from '../io.js';
import { formatEvent } from '../log.js';
import { SELECTION_HELP, SELECTION_OPTIONS, backendFrom, planFromConfig, rulesConfigFrom } from '../selection.js';

const USAGE = `Usage: tproxy run [options]

Start the transparent proxy: IP_TRANSPARENT listeners for TCP and UDP on --listen, relaying each
intercepted flow to its original destination; apply the kernel rules (nftables table, fwmark
ip rules, local route table) and remove them again on exit.

${SELECTION_HELP}
  --upstream direct|transparent  source address toward servers: this host's (direct, default)
                         or the client's (transparent; needs replies routed back through this host)
  --no-rules             do not touch kernel rules (they are managed elsewhere)
  --udp-idle-timeout-ms N  idle time after which a UDP session ends, default 60000
  --log-format text|json log lines on stderr, default text
  --config FILE          configuration file (not supported yet)
  --help                 this help
`;

function parseUpstream(text: string): UpstreamMode {
  if (text === 'direct' || text === 'transparent') return text;
  throw new TproxyError('ERR_INVALID_ARGUMENT', `--upstream ${text}: use direct or transparent`, { value: text });
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
        'udp-idle-timeout-ms': { type: 'string', default: '60000' },
        'log-format': { type: 'string', default: 'text' },
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
    const udpIdle = Number(values['udp-idle-timeout-ms']);
    if (!Number.isInteger(udpIdle) || udpIdle < 100) throw new TproxyError('ERR_INVALID_ARGUMENT', `--udp-idle-timeout-ms ${values['udp-idle-timeout-ms']}: use an integer of at least 100`);
    const log = (event: Parameters<typeof formatEvent>[0]): void => io.err(formatEvent(event, format));
    const plan: RulesPlan | undefined = values['no-rules'] ? undefined : planFromConfig(rulesConfig);
    const backend = plan ? backendFrom(values) : undefined;

    const proxy = new Proxy(
      {
        ...DEFAULT_PROXY_CONFIG,
        port: rulesConfig.listenPort,
        families: rulesConfig.families,
        transports: [...new Set(rulesConfig.intercept.map((s) => s.transport))],
        upstream: parseUpstream(values.upstream),
        upstreamMark: rulesConfig.upstreamMark,
        udpIdleTimeoutMs: udpIdle,
      },
      { emit: log },
    );
    // Listeners first: a tproxy rule with no transparent socket behind it lets traffic bypass us.
    await proxy.start();
    const controller = new RulesController(new ProcessRunner(), { ...(backend ? { backend } : {}) });
    if (plan) {
      try {
        // Recorded as ours: after a crash the next start (or rules cleanup) finds and replaces it.
        const applied = await controller.apply(plan, { owner: process.pid });
        for (const warning of applied.warnings) log({ type: 'rules.warning', message: warning });
        log({ type: 'rules.applied', backend, table: `${plan.table.family} ${plan.table.name}`, policyRoutes: plan.policyRoutes.length, failMode: plan.config.failMode, ...(applied.replaced ? { replaced: applied.replaced } : {}) });
      } catch (error) {
        await proxy.stop(0);
        throw error;
      }
    }
    log({ type: 'ready', pid: process.pid });

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
    if (plan) {
      const removed = await controller.remove(plan);
      log({ type: 'rules.removed', ...removed });
    }
    await proxy.stop(5000);
    log({ type: 'stopped' });
    return 0;
  },
};
