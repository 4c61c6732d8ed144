/**
 * `tproxy demo`: the classic TPROXY relay, end to end, in the namespace lab.
 *
 *   1. client / router / server namespaces with veth links (TEST-NET addresses)
 *   2. echo server on port 80 (TCP and UDP, IPv4 and IPv6) in the server namespace
 *   3. `tproxy run --no-rules` in the router namespace: IP_TRANSPARENT listeners on :8000
 *   4. the kernel side on the router: nft table (mangle-priority tproxy rules, mark 0x1/0x1, divert),
 *      `ip rule fwmark 0x1/0x1 lookup 100`, `ip route local default dev lo table 100`
 *   5. the client talks to the server's address; each flow must be seen by the proxy with the right
 *      original destination, reach the server, and come back from the server's address and port
 *   6. tproxy rule counters prove the proxy was in the path (a rule that does not match looks like
 *      success otherwise: traffic is simply forwarded)
 *   7. rules removed, proxy stopped (bytes per flow reported), namespaces deleted
 */
import { fileURLToPath } from 'node:url';
import { TproxyError, type TproxyErrorCode } from '../core/errors.js';
import type { Family, Transport } from '../core/net/constants.js';
import { formatEndpoint, normalizeAddress, sameEndpoint, type Endpoint } from '../core/net/sockaddr.js';
import { singleListenerRules } from '../core/rules/config.js';
import { planRules } from '../core/rules/plan.js';
import { ipRouteArgs, ipRuleArgs } from '../core/rules/policy-routing.js';
import { renderNftScript } from '../core/rules/render-nft.js';
import type { RulesPlan } from '../core/rules/planned.js';
import { RulesController } from '../control/apply.js';
import type { ProxyEvent, UpstreamMode } from '../dataplane/events.js';
import { findExecutable, missingCommandError } from '../sys/exec.js';
import { SocketApi } from '../sys/socket.js';
import { JsonLines } from '../lab/json-lines.js';
import { LAB_ADDRESSES, Lab, namespacesWithPrefix } from '../lab/topology.js';
import type { EchoReply } from '../lab/agent.js';

const BIN = fileURLToPath(new URL('../../../bin/tproxy.js', import.meta.url));
const AGENT = fileURLToPath(new URL('../lab/agent.js', import.meta.url));
/** How long a flow that got its reply waits for the proxy's line about it (generous: suites run in parallel). */
const INTERCEPT_LINE_WAIT_MS = 10_000;

export interface DemoOptions {
  readonly upstream: UpstreamMode;
  readonly listenPort: number;
  readonly families: readonly Family[];
  readonly transports: readonly Transport[];
  /** Prints one line of the account (without newline). */
  readonly report: (line: string) => void;
  /** Called once the lab exists, so an interrupt handler can tear it down. */
  readonly onLab?: (lab: Lab) => void;
  /** Lets tests break the setup on purpose (e.g. drop the tproxy rules) to check detection. */
  readonly transformPlan?: (plan: RulesPlan) => RulesPlan;
  /** Occupy the proxy port in the router namespace before starting it (tests the failure path). */
  readonly occupyListenPort?: boolean;
  readonly probeTimeoutMs?: number;
}

export interface DemoFlow {
  readonly transport: Transport;
  readonly family: Family;
  readonly client: Endpoint;
  readonly originalDestination: Endpoint;
  readonly serverSaw: { address: string; port: number };
  readonly replyFrom: { address: string; port: number };
  readonly bytesFromClient?: number;
  readonly bytesFromServer?: number;
}

export interface DemoResult {
  readonly prefix: string;
  readonly upstream: UpstreamMode;
  readonly flows: DemoFlow[];
  readonly ruleCounters: Record<string, number>;
  /** Processes the demo started (all stopped when it returns). */
  readonly pids: { readonly server: number; readonly proxy: number };
}

type ProxyLogLine = ProxyEvent & { time?: string } | { type: 'ready' | 'stopped' | 'stopping'; time?: string };

function preflight(): void {
  if (new SocketApi().geteuid() !== 0) {
    throw new TproxyError('ERR_PRIVILEGE', 'tproxy demo needs root: it creates network namespaces, nftables rules and IP_TRANSPARENT sockets (CAP_SYS_ADMIN and CAP_NET_ADMIN). Run it as root, e.g. sudo tproxy demo');
  }
  for (const bin of ['ip', 'nft']) if (!findExecutable(bin)) throw missingCommandError(bin, 'tproxy demo needs it');
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  preflight();
  const { report } = options;
  const probeTimeoutMs = options.probeTimeoutMs ?? 3000;
  let lab: Lab | undefined;
  let plan: RulesPlan | undefined;
  let controller: RulesController | undefined;
  try {
    lab = await Lab.create();
    options.onLab?.(lab);
    const A = LAB_ADDRESSES;
    report(`[1/7] lab: namespaces ${lab.namespace('client')}, ${lab.namespace('router')}, ${lab.namespace('server')}`);
    report(`      client ${A.client.ipv4} ${A.client.ipv6}  <->  router ${A.routerClientSide.ipv4} | ${A.routerServerSide.ipv4}  <->  server ${A.server.ipv4} ${A.server.ipv6}`);

    const server = lab.spawn('server', [process.execPath, AGENT, 'serve', '--port', '80']);
    const serverLines = new JsonLines<{ event: string } & Partial<EchoReply>>(server.child.stdout!);
    await serverLines.waitFor((l) => l.event === 'ready', 10_000, 'the echo server in the server namespace starting');
    report('[2/7] server: echo service on port 80, TCP and UDP, IPv4 and IPv6');

    if (options.occupyListenPort) {
      const squatter = lab.spawn('router', [process.execPath, '-e', `require('net').createServer().listen(${options.listenPort}, '0.0.0.0', () => console.log('{"event":"ready"}'))`]);
      await new JsonLines<{ event: string }>(squatter.child.stdout!).waitFor((l) => l.event === 'ready', 10_000, 'the port squatter starting');
    }

    const familyArg = options.families.length === 2 ? 'both' : `${options.families[0] ?? 4}`;
    const interceptArgs = options.transports.flatMap((t) => ['--intercept', `${t}:80`]);
    const proxy = lab.spawn('router', [process.execPath, BIN, 'run', '--no-rules', '--listen', `${options.listenPort}`, ...interceptArgs, '--family', familyArg, '--upstream', options.upstream, '--log-level', 'debug', '--log-format', 'json']);
    const proxyLines = new JsonLines<ProxyLogLine>(proxy.child.stderr!);
    const proxyExit = proxy.exited.then((code) => code);
    const ready = await Promise.race([
      proxyLines.waitFor((l) => l.type === 'ready', 60_000, 'the proxy in the router namespace starting').then(() => true),
      proxyExit.then(() => false),
    ]);
    if (!ready) {
      await proxyLines.closed();
      // The proxy's last words are `tproxy run: <message> [<code>]`: pass both on.
      const errorLine = [...proxyLines.text].reverse().find((l) => l.startsWith('tproxy run:')) ?? proxyLines.text.slice(-1)[0] ?? '(no output)';
      const parsed = /^tproxy run: (.*) \[(ERR_[A-Z_]+)\]$/.exec(errorLine);
      const code = (parsed?.[2] ?? 'ERR_DEMO_FAILED') as TproxyErrorCode;
      throw new TproxyError(code, `the proxy could not start in the router namespace: ${parsed?.[1] ?? errorLine}`, { proxyOutput: proxyLines.text.slice(-5) });
    }
    const listening = proxyLines.items.filter((l): l is Extract<ProxyEvent, { type: 'listening' }> => l.type === 'listening');
    report(`[3/7] proxy: tproxy run in the router namespace, pid ${proxy.child.pid ?? '?'}, upstream ${options.upstream}; listening ${listening.map((l) => `${l.transport} ${formatEndpoint(l.local)}`).join(', ')} with IP_TRANSPARENT`);

    const basePlan = planRules(
      singleListenerRules(
        options.transports.map((transport) => ({ transport, ports: [{ from: 80, to: 80 }] })),
        { port: options.listenPort, families: options.families },
        { tableName: 'tproxy_demo' },
      ),
    );
    plan = options.transformPlan ? options.transformPlan(basePlan) : basePlan;
    controller = new RulesController(lab.runnerFor('router'));
    await controller.apply(plan);
    report('[4/7] rules applied in the router namespace (nft --check, then one atomic nft -f transaction):');
    for (const line of renderNftScript(plan).split('\n').slice(2)) if (line.trim()) report(`        ${line}`);
    for (const route of plan.policyRoutes) {
      report(`        ip ${ipRouteArgs(route, 'add').join(' ')}`);
      report(`        ip ${ipRuleArgs(route, 'add').join(' ')}`);
    }

    report('[5/7] flows: the client talks to the server\'s address; the router intercepts them');
    const flows: DemoFlow[] = [];
    for (const family of options.families) {
      for (const transport of options.transports) {
        const serverAddress = family === 4 ? A.server.ipv4 : A.server.ipv6;
        const clientAddress = family === 4 ? A.client.ipv4 : A.client.ipv6;
        const destination: Endpoint = { family, address: serverAddress, port: 80 };
        const message = `hello over ${transport}/ipv${family} ${Math.random().toString(36).slice(2, 10)}`;
        const result = await lab.run('client', [process.execPath, AGENT, 'probe', transport, serverAddress, '80', message, '--timeout-ms', `${probeTimeoutMs}`], { check: false });
        const line = JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}') as { ok?: boolean; reason?: string; from?: { address: string; port: number }; local?: { address: string; port: number }; reply?: EchoReply };
        // The proxy's line can arrive after the reply: the UDP relay's thread hands its events over
        // in batches, and stderr is read asynchronously. A flow that got a reply waits for it.
        const intercepted = await proxyLines
          .waitFor(
            (l) =>
              (transport === 'tcp' ? l.type === 'tcp.accept' : l.type === 'udp.session.open') &&
              'client' in l && normalizeAddress(l.client.address) === normalizeAddress(clientAddress) && sameEndpoint(l.originalDestination, destination),
            line.ok ? INTERCEPT_LINE_WAIT_MS : 0,
            `the proxy's line for ${transport}/ipv${family}`,
          )
          .catch(() => undefined);
        const label = `${transport}/ipv${family}`;
        if (!line.ok || !line.reply || !line.from) {
          throw new TproxyError('ERR_DEMO_FAILED', `${label}: the client got no reply from ${formatEndpoint(destination)} (${line.reason ?? 'no output'})${intercepted ? '; the proxy did intercept the flow' : '; the proxy never saw the flow'}`, { proxyOutput: proxyLines.text.slice(-5) });
        }
        if (!intercepted || !('client' in intercepted)) {
          throw new TproxyError('ERR_PROXY_BYPASSED', `${label}: the client got a reply but the proxy never saw the flow: the traffic went around the proxy (no tproxy rule matched it), which a real deployment must never mistake for success`, { label });
        }
        if (line.reply.message !== message) throw new TproxyError('ERR_DEMO_FAILED', `${label}: the echo came back altered ("${line.reply.message}" instead of "${message}")`);
        if (!sameEndpoint(line.from, destination)) {
          throw new TproxyError('ERR_DEMO_FAILED', `${label}: the reply came from ${formatEndpoint(line.from)}, not from the original destination ${formatEndpoint(destination)}`);
        }
        const expectedSource = options.upstream === 'transparent' ? clientAddress : family === 4 ? A.routerServerSide.ipv4 : A.routerServerSide.ipv6;
        if (normalizeAddress(line.reply.seen.address) !== normalizeAddress(expectedSource)) {
          throw new TproxyError('ERR_DEMO_FAILED', `${label}: the server saw ${line.reply.seen.address} as the source, expected ${expectedSource} in ${options.upstream} mode`);
        }
        flows.push({
          transport,
          family,
          client: intercepted.client,
          originalDestination: intercepted.originalDestination,
          serverSaw: line.reply.seen,
          replyFrom: line.from,
        });
        report(`      ${label}: ${formatEndpoint(intercepted.client)} -> ${formatEndpoint(destination)}: proxy intercepted it, original destination ${formatEndpoint(intercepted.originalDestination)}; server saw ${formatEndpoint(line.reply.seen)}; reply delivered from ${formatEndpoint(line.from)}`);
      }
    }

    const state = await controller.status(plan);
    const ruleCounters: Record<string, number> = {};
    for (const piece of state.pieces) {
      const comment = piece.name.replace(/^prerouting: /, '');
      if (piece.kind === 'rule' && comment.startsWith('tproxy: intercept')) ruleCounters[comment] = piece.counter?.packets ?? 0;
    }
    report(`[6/7] kernel counters: ${Object.entries(ruleCounters).map(([k, v]) => `${k.replace('tproxy: ', '')} ${v} packets`).join(', ')}`);
    for (const flow of flows) {
      const comment = `tproxy: intercept ${flow.transport} ipv${flow.family}`;
      if ((ruleCounters[comment] ?? 0) < 1) {
        throw new TproxyError('ERR_PROXY_BYPASSED', `${flow.transport}/ipv${flow.family}: the tproxy rule counted no packet; the flow did not pass through the tproxy rule`);
      }
    }

    const removed = await controller.remove(plan);
    const after = await controller.status(plan);
    if (after.pieces.some((p) => p.state !== 'missing')) throw new TproxyError('ERR_DEMO_FAILED', 'rules were still present after removal');
    plan = undefined;
    proxy.child.kill('SIGTERM');
    const code = await proxyExit;
    await proxyLines.closed();
    const closes = proxyLines.items.filter((l): l is Extract<ProxyEvent, { type: 'tcp.close' | 'udp.session.close' }> => l.type === 'tcp.close' || l.type === 'udp.session.close');
    const withBytes = flows.map((flow) => {
      const close = closes.find((c) => (flow.transport === 'tcp' ? c.type === 'tcp.close' : c.type === 'udp.session.close') && sameEndpoint(c.client, flow.client) && sameEndpoint(c.originalDestination, flow.originalDestination));
      return close ? { ...flow, bytesFromClient: close.bytesFromClient, bytesFromServer: close.bytesFromServer } : flow;
    });
    report(`[7/7] rules removed (table ${removed.table ? 'deleted' : 'absent'}, ${removed.rules} ip rule(s), ${removed.routes} route(s)); proxy stopped (exit ${code}); bytes relayed:`);
    for (const f of withBytes) report(`      ${f.transport}/ipv${f.family} ${formatEndpoint(f.client)} -> ${formatEndpoint(f.originalDestination)}: ${f.bytesFromClient ?? '?'} bytes up, ${f.bytesFromServer ?? '?'} bytes down`);
    return { prefix: lab.prefix, upstream: options.upstream, flows: withBytes, ruleCounters, pids: { server: server.child.pid ?? -1, proxy: proxy.child.pid ?? -1 } };
  } finally {
    if (lab) {
      if (plan && controller) await controller.remove(plan).catch(() => undefined);
      await lab.destroy();
      const left = await namespacesWithPrefix(lab.prefix);
      if (left.length > 0) report(`warning: namespaces left behind: ${left.join(', ')}`);
      else report(`cleanup: namespaces ${lab.prefix}-* deleted, processes stopped`);
    }
  }
}
