/** Library entry: the pure core, the system layer, the data plane and the lab. */
export { TproxyError, isTproxyError, type TproxyErrorCode, type TproxyErrorDetails } from './core/errors.js';
export { errnoName, errnoAdvice } from './core/errno.js';
export * as constants from './core/net/constants.js';
export { encodeSockaddr, decodeSockaddr, formatEndpoint, normalizeAddress, sameEndpoint, type Endpoint } from './core/net/sockaddr.js';
export { encodeControlMessages, decodeControlMessages, originalDestination, type ControlMessage } from './core/net/cmsg.js';
export { parseIntercept, mergeIntercepts, parseFamily } from './core/config/intercept.js';
export { planRules, renderNftScript, validateRulesConfig, DEFAULT_RULES_CONFIG, type RulesConfig, type RulesPlan, type PlannedRule } from './core/rules/plan.js';
export { SocketApi, type SocketOptions, type ReceivedDatagram } from './sys/socket.js';
export { ProcessRunner, NetnsRunner, type CommandRunner, type CommandResult } from './sys/exec.js';
export { RulesController } from './control/apply.js';
export { Nft } from './control/nft.js';
export { IpRoute } from './control/iproute.js';
export { Proxy, DEFAULT_PROXY_CONFIG, type ProxyConfig } from './dataplane/proxy.js';
export { TcpRelay } from './dataplane/tcp/relay.js';
export { UdpRelay } from './dataplane/udp/relay.js';
export type { ProxyEvent, UpstreamMode, EventSink } from './dataplane/events.js';
export { Lab, LAB_ADDRESSES, sweepLeftovers } from './lab/topology.js';
export { runDemo, type DemoOptions, type DemoResult } from './demo/run-demo.js';
