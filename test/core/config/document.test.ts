// The configuration validation table: good and bad files, with the exact error text.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../../src/core/config/document.js';
import { rulesConfigOf } from '../../../src/core/config/rules-of.js';
import { isTproxyError } from '../../../src/core/errors.js';

const load = (text: string, values: Record<string, string | boolean | string[]> = {}): ReturnType<typeof loadConfig> => loadConfig({ file: 'tproxy.yaml', text }, { values });

function refusal(text: string, values: Record<string, string | boolean | string[]> = {}): string {
  try {
    load(text, values);
  } catch (error) {
    assert.ok(isTproxyError(error, 'ERR_INVALID_ARGUMENT'), String(error));
    return error.message;
  }
  assert.fail('the configuration was accepted');
}

describe('configuration files: good ones', () => {
  it('an empty file is every default: one listener, main, on 8000 for tcp:80,443', () => {
    const config = load('');
    assert.deepEqual(config.listeners.map((l) => [l.name, l.port, l.families, l.upstream, l.upstreamMark, l.maxConnections, l.udp.mapping]), [['main', 8000, [4, 6], 'direct', 2, 100_000, 'endpoint-dependent']]);
    assert.deepEqual([config.rules.apply, config.rules.table, config.rules.failMode, config.tcp.workers, config.log.level, config.shutdown.graceMs, config.reload.drainMs], [true, 'tproxy_rules', 'drop', 'auto', 'info', 5000, 600_000]);
  });

  const good: [string, string, (c: ReturnType<typeof load>) => unknown, unknown][] = [
    ['hex and decimal marks', 'rules:\n  fwmark: 0x100\n  fwmarkMask: "0xff00"\nlisteners:\n  - upstreamMark: 512\n', (c) => [c.rules.fwmark, c.rules.fwmarkMask, c.listeners[0]?.upstreamMark], [0x100, 0xff00, 512]],
    ['a DSCP by name and a mark with a mask', 'rules:\n  mangle: { dscp: EF, mark: 0x100/0xff00 }\n', (c) => c.rules.mangle, { dscp: 46, mark: { value: 0x100, mask: 0xff00 }, ttl: undefined }],
    ['port lists and ranges', 'listeners:\n  - intercept: ["tcp:80,443", "tcp:8000-8100", udp:53]\n', (c) => rulesConfigOf(c).listeners[0]?.intercept, [{ transport: 'tcp', ports: [{ from: 80, to: 80 }, { from: 443, to: 443 }, { from: 8000, to: 8100 }] }, { transport: 'udp', ports: [{ from: 53, to: 53 }] }]],
    ['the same port for TCP on one listener and UDP on another', 'listeners:\n  - { name: a, port: 9000, intercept: [tcp:80] }\n  - { name: b, port: 9000, intercept: [udp:53] }\n', (c) => c.listeners.map((l) => l.port), [9000, 9000]],
    ['listeners of other families on one port', 'listeners:\n  - { name: a, families: [4], intercept: [tcp:80] }\n  - { name: b, families: [6], intercept: [tcp:80] }\n', (c) => rulesConfigOf(c).families, [4, 6]],
    ['an address per family', 'listeners:\n  - addresses: [127.0.0.1, "::1"]\n', (c) => rulesConfigOf(c).listeners[0]?.addresses, { 4: '127.0.0.1', 6: '::1' }],
    ['local traffic with exclusions', 'rules:\n  local: { enabled: true, excludeUids: [0, 1000] }\n', (c) => rulesConfigOf(c).localTraffic, { excludeUids: [0, 1000], excludeGids: [] }],
    ['no default bypass, extra prefixes', 'rules:\n  bypass: { defaultDestinations: false, destinations: [10.0.0.0/8] }\n', (c) => rulesConfigOf(c).bypass.destinations, ['10.0.0.0/8']],
    ['an upstream SOCKS5 proxy with credentials', 'listeners:\n  - upstreamProxy: "socks5://al%40ice:pw@[2001:db8::7]:1080"\n', (c) => c.listeners[0]?.upstreamProxy, { protocol: 'socks5', endpoint: { family: 6, address: '2001:db8::7', port: 1080 }, auth: { username: 'al@ice', password: 'pw' } }],
    ['metrics and the admin socket', 'metrics: { listen: "[::1]:9464" }\nadmin: { socket: /run/tproxy/admin.sock }\nlog: { level: warn }\n', (c) => [c.metrics.listen, c.admin.socket, c.log.level], [{ host: '::1', port: 9464 }, '/run/tproxy/admin.sock', 'warn']],
    ['no metrics and no admin socket by default', '', (c) => [c.metrics.listen, c.admin.socket], [undefined, undefined]],
    ['workers as a number, and comments', '# TCP in the main process\ntcp: { workers: 0, engine: stream } # no splice\n', (c) => [c.tcp.workers, c.tcp.engine], [0, 'stream']],
  ];
  for (const [what, text, pick, expected] of good) {
    it(`accepts ${what}`, () => assert.deepEqual(pick(load(text)), expected));
  }
});

describe('configuration files: bad ones, with the exact error', () => {
  const bad: [string, string, string][] = [
    ['a port out of range', 'listeners:\n  - port: 70000\n', 'tproxy.yaml:2:11: listeners[0].port: 70000 is not allowed: use a port from 1 to 65535'],
    ['a port given as text', 'listeners:\n  - port: "8000"\n', 'tproxy.yaml:2:11: listeners[0].port: "8000" is not allowed: use a port from 1 to 65535'],
    ['an unknown top-level key, close to one', 'listener: []\n', 'tproxy.yaml:1:1: listener: unknown setting: did you mean listeners? (allowed here: listeners, outbounds, lists, routes, rules, tcp, udp, log, shutdown, reload, metrics, health, admin, dashboard, mmproxy)'],
    ['an unknown key, far from any', 'rules:\n  colour: blue\n', 'tproxy.yaml:2:3: rules.colour: unknown setting (allowed here: apply, backend, table, interfaces, bypass, local, mangle, failMode, fwmark, fwmarkMask, routeTable, rulePriority)'],
    ['a misspelt key in the second listener', 'listeners:\n  - name: a\n  - name: b\n    port: 8001\n    idleTimeoutMS: 5\n', 'tproxy.yaml:5:5: listeners[1].idleTimeoutMS: unknown setting: did you mean idleTimeoutMs? (allowed here: name, port, addresses, families, intercept, upstream, upstreamProxy, outbound, sniffTimeoutMs, upstreamMark, maxConnections, connectTimeoutMs, idleTimeoutMs, keepAliveMs, udp, headers)'],
    ['an upstream proxy given by name', 'listeners:\n  - upstreamProxy: socks5://proxy.example:1080\n', 'tproxy.yaml:2:20: listeners[0].upstreamProxy: "socks5://proxy.example:1080" is not allowed: "proxy.example" is not an IP address (names are not resolved); write socks5://ADDR:PORT or http://ADDR:PORT (ADDR an IP address, [..] around IPv6; user:pass@ before it for credentials)'],
    ['UDP through an upstream proxy', 'listeners:\n  - intercept: [tcp:80, udp:53]\n    upstreamProxy: http://192.0.2.7:3128\n', 'tproxy.yaml:3:20: listeners[0].upstreamProxy: http://192.0.2.7:3128 carries TCP only (HTTP CONNECT), but intercept has udp: intercept tcp only on this listener, or use a socks5:// proxy (UDP ASSOCIATE)'],
    ['an upstream proxy with transparent upstream', 'listeners:\n  - upstream: transparent\n    upstreamProxy: socks5://192.0.2.7\n', 'tproxy.yaml:3:20: listeners[0].upstreamProxy: socks5://192.0.2.7:1080 needs upstream direct (flows through a proxy leave from this host\'s address), not transparent'],
    ['an enum value misspelt', 'listeners:\n  - upstream: transparant\n', 'tproxy.yaml:2:15: listeners[0].upstream: "transparant" is not allowed: use one of direct, transparent (did you mean transparent?)'],
    ['a bad intercept', 'listeners:\n  - intercept: [tcp:80, "sctp:9"]\n', 'tproxy.yaml:2:25: listeners[0].intercept[1]: "sctp:9" is not allowed: expected PROTO:PORTS with PROTO tcp or udp, e.g. tcp:80,443 or udp:53'],
    ['nothing to intercept', 'listeners:\n  - intercept: []\n', 'tproxy.yaml:2:16: listeners[0].intercept: needs at least 1 item: use a list of PROTO:PORTS, e.g. [tcp:80,443, udp:53]'],
    ['no listeners', 'listeners: []\n', 'tproxy.yaml:1:12: listeners: nothing to run: add a listener (or leave listeners out for the default one), or an mmproxy entry'],
    ['a mapping where a list belongs', 'listeners:\n  name: a\n', 'tproxy.yaml:2:3: listeners: a mapping is not allowed: use a list of listeners'],
    ['a family that does not exist', 'listeners:\n  - families: [4, 5]\n', 'tproxy.yaml:2:19: listeners[0].families[1]: 5 is not allowed: use 4 or 6'],
    ['an IPv6 address on an IPv4 listener', 'listeners:\n  - families: [4]\n    addresses: ["::1"]\n', 'tproxy.yaml:3:17: listeners[0].addresses[0]: "::1" is an IPv6 address but families is [4]'],
    ['two names alike', 'listeners:\n  - { name: a, port: 1 }\n  - { name: a, port: 2, intercept: [udp:53] }\n', 'tproxy.yaml:3:13: listeners[1].name: "a" is already the name of listeners[0]: each listener needs its own name'],
    ['two listeners on one port', 'listeners:\n  - { name: a }\n  - { name: b, intercept: [tcp:22] }\n', 'tproxy.yaml:3:5: listeners[1].port: 8000 is already the port of listeners[0] (a): each listener needs its own port'],
    ['two listeners intercepting one port', 'listeners:\n  - { name: a, intercept: [tcp:80] }\n  - { name: b, port: 8001, intercept: ["tcp:70-90"] }\n', 'tproxy.yaml:3:39: listeners[1].intercept: tcp:70-90 is already intercepted by listeners[0] (a): a port goes to one listener'],
    ['an upstream mark equal to the fwmark', 'listeners:\n  - upstreamMark: 0x1\n', 'tproxy.yaml:2:19: listeners[0].upstreamMark: upstream mark 0x00000001 matches the tproxy fwmark under mask 0x00000001: the proxy\'s own traffic would be routed back to itself; choose a mark that differs inside the mask'],
    ['a fwmark outside its mask', 'rules:\n  fwmark: 0x2\n', 'tproxy.yaml:2:11: rules.fwmark: mark 0x00000002 has no bit inside mask 0x00000001'],
    ['a CIDR with host bits', 'rules:\n  bypass:\n    sources: [10.1.2.3/8]\n', 'tproxy.yaml:3:14: rules.bypass.sources: "10.1.2.3/8" has host bits set below /8: did you mean 10.0.0.0/8?'],
    ['the main route table', 'rules: { routeTable: 254 }\n', 'tproxy.yaml:1:22: rules.routeTable: 254 must be a free table id from 1 to 4294967280 (not 253 default, 254 main, 255 local)'],
    ['exclusions without local traffic', 'rules:\n  local:\n    excludeGids: [100]\n', 'tproxy.yaml:3:18: rules.local.excludeGids: only makes sense when this host\'s own traffic is intercepted: set enabled: true (--local)'],
    ['a negative timeout', 'listeners:\n  - udp: { idleTimeoutMs: 5 }\n', 'tproxy.yaml:2:27: listeners[0].udp.idleTimeoutMs: 5 is not allowed: use an integer of at least 100'],
    ['workers as a word', 'tcp:\n  workers: many\n', 'tproxy.yaml:2:12: tcp.workers: "many" is not allowed: use auto or an integer of at least 0'],
    ['a DSCP out of range', 'rules:\n  mangle: { dscp: 64 }\n', 'tproxy.yaml:2:19: rules.mangle.dscp: 64 is not allowed: use an integer from 0 to 63 or a name (cs0, df, be, lephb, cs1, af11, af12, af13, cs2, af21, af22, af23, cs3, af31, af32, af33, cs4, af41, af42, af43, cs5, va, ef, cs6, cs7)'],
    ['a metrics address that is not HOST:PORT', 'metrics:\n  listen: 9464\n', 'tproxy.yaml:2:11: metrics.listen: 9464 is not allowed: use HOST:PORT with an IPv4 address, [IPv6] or localhost, e.g. 127.0.0.1:9464 or [::1]:9464'],
    ['a metrics address with a host name', 'metrics:\n  listen: example.org:9464\n', 'tproxy.yaml:2:11: metrics.listen: "example.org:9464" is not allowed: example.org is not an IPv4 address or localhost (IPv6 goes in brackets); use HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464'],
    ['a metrics port out of range', 'metrics:\n  listen: 127.0.0.1:70000\n', 'tproxy.yaml:2:11: metrics.listen: "127.0.0.1:70000" is not allowed: the port must be from 0 to 65535; use HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464'],
    ['a relative admin socket path', 'admin:\n  socket: admin.sock\n', 'tproxy.yaml:2:11: admin.socket: "admin.sock" is not allowed: use an absolute path shorter than 108 bytes (the unix socket limit)'],
    ['an admin socket path too long for a unix socket', `admin:\n  socket: /${'a'.repeat(107)}\n`, `tproxy.yaml:2:11: admin.socket: "/${'a'.repeat(107)}" is not allowed: use an absolute path shorter than 108 bytes (the unix socket limit)`],
    ['a log level that does not exist', 'log:\n  level: warning\n', 'tproxy.yaml:2:10: log.level: "warning" is not allowed: use one of error, warn, info, debug'],
    ['a file that is a list', '- a\n- b\n', 'tproxy.yaml:1:1: a list is not allowed: use a mapping of listeners, outbounds, lists, routes, rules, tcp, udp, log, shutdown, reload, metrics, health, admin, dashboard, mmproxy'],
    ['not YAML', 'listeners: [\n', 'tproxy.yaml:2:1: not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]'],
    ['a key given twice', 'log: {}\nlog: {}\n', 'tproxy.yaml:2:1: not valid YAML: Map keys must be unique'],
  ];
  for (const [what, text, message] of bad) {
    it(`refuses ${what}`, () => assert.equal(refusal(text), message));
  }

  it('lists every problem, in the order of the file', () => {
    assert.equal(
      refusal('log:\n  level: loud\nlisteners:\n  - port: 0\n    nmae: x\n'),
      [
        '3 problems in the configuration:',
        '  tproxy.yaml:2:10: log.level: "loud" is not allowed: use one of error, warn, info, debug',
        '  tproxy.yaml:4:11: listeners[0].port: 0 is not allowed: use a port from 1 to 65535',
        '  tproxy.yaml:5:5: listeners[0].nmae: unknown setting: did you mean name? (allowed here: name, port, addresses, families, intercept, upstream, upstreamProxy, outbound, sniffTimeoutMs, upstreamMark, maxConnections, connectTimeoutMs, idleTimeoutMs, keepAliveMs, udp, headers)',
      ].join('\n'),
    );
  });
});

describe('flags over the file', () => {
  it('a flag overrides the file, for every listener', () => {
    const config = load('listeners:\n  - { name: a, port: 9000, maxConnections: 5 }\n  - { name: b, port: 9001, intercept: [udp:53] }\nlog: { format: json }\n', { 'max-connections': '7', 'log-format': 'text', 'no-rules': true });
    assert.deepEqual([config.listeners.map((l) => l.maxConnections), config.log.format, config.rules.apply], [[7, 7], 'text', false]);
  });

  it('--metrics-address, --admin-socket and --log-level set the operations settings over the file', () => {
    const config = load('metrics: { listen: 127.0.0.1:9100 }\nadmin: { socket: /run/a.sock }\n', { 'metrics-address': '127.0.0.1:0', 'admin-socket': '/run/b.sock', 'log-level': 'error' });
    assert.deepEqual([config.metrics.listen, config.admin.socket, config.log.level], [{ host: '127.0.0.1', port: 0 }, '/run/b.sock', 'error']);
    assert.equal(refusal('', { 'metrics-address': 'localhost' }), '--metrics-address: metrics.listen: "localhost" is not allowed: use HOST:PORT with an IPv4 address, [IPv6] or localhost, e.g. 127.0.0.1:9464 or [::1]:9464');
  });

  it('a flag names itself in errors, not the file', () => {
    assert.equal(refusal('listeners:\n  - port: 9000\n', { listen: '99999' }), '--listen: listeners[0].port: 99999 is not allowed: use a port from 1 to 65535');
    assert.equal(refusal('', { intercept: ['tcp:80', 'udp:x'] }), '--intercept: listeners[0].intercept[1]: "udp:x" is not allowed: "x" is not a port number (use PROTO:PORT[,PORT|FROM-TO...], e.g. tcp:80,443 or udp:53)');
  });

  it('flags naming one listener are refused with a file of several, so the file decides', () => {
    assert.equal(refusal('listeners:\n  - { name: a }\n  - { name: b, port: 9001 }\n', { intercept: ['udp:53'] }), 'tproxy.yaml:2:3: listeners: --intercept sets a setting of one listener, but there are 2: set intercept of each in the file');
  });

  it('without a file, flags alone make the configuration (errors have no file)', () => {
    assert.equal(loadConfig({}, { values: { listen: '9000', family: '6' } }).listeners[0]?.port, 9000);
    assert.throws(() => loadConfig({}, { values: { family: 'ipx' } }), (e: unknown) => isTproxyError(e) && e.message === '--family: listeners[0].families: "ipx" is not allowed: use a list of 4 or 6');
  });
});

describe('configuration files: hostile ones', () => {
  const refusal = (text: string, flags: Record<string, string> = {}): { message: string; json: string } => {
    try {
      loadConfig({ file: 'tproxy.yaml', text }, { values: flags });
    } catch (error) {
      assert.ok(isTproxyError(error, 'ERR_INVALID_ARGUMENT'), String(error));
      return { message: error.message, json: JSON.stringify(error.toJSON()) };
    }
    assert.fail('accepted');
  };

  it('masks the password of an upstream proxy URL it refuses, in the message and the details, from the file and from a flag', () => {
    const file = refusal('listeners:\n  - upstreamProxy: "socks5://alice:S3cr3t@203.0.113.20:99999"\n');
    assert.equal(file.message, 'tproxy.yaml:2:20: listeners[0].upstreamProxy: "socks5://alice:***@203.0.113.20:99999" is not allowed: not a URL; write socks5://ADDR:PORT or http://ADDR:PORT (ADDR an IP address, [..] around IPv6; user:pass@ before it for credentials)');
    const flag = refusal('', { 'upstream-proxy': 'http://bob:S3cr3t@203.0.113.20:0' });
    for (const r of [file, flag]) assert.ok(!r.json.includes('S3cr3t'), r.json);
    // A valid URL with a refused combination names it masked too.
    const combination = refusal('listeners:\n  - upstreamProxy: "socks5://alice:S3cr3t@203.0.113.20:1080"\n    upstream: transparent\n');
    assert.match(combination.message, /socks5:\/\/alice:\*\*\*@203\.0\.113\.20:1080 needs upstream direct/);
    assert.ok(!combination.json.includes('S3cr3t'));
  });

  it('quotes at most 200 characters of a huge value or key, and lists at most 20 problems', () => {
    const huge = refusal(`listeners:\n  - port: "${'x'.repeat(2_000_000)}"\n  - ? ${'k'.repeat(1_000_000)}\n    : 1\n`);
    assert.ok(huge.message.length < 2000, `${huge.message.length} characters`);
    assert.match(huge.message, /listeners\[0\]\.port: "x{200}…" \(2000000 characters\) is not allowed/);
    assert.match(huge.message, /listeners\[1\]\."k{200}…" \(1000000 characters\): unknown setting/);
    const many = refusal(`rules:\n  bypass:\n    destinations:\n${Array.from({ length: 50 }, (_, i) => `      - 10.0.0.${i}/8\n`).join('')}`);
    // A bypass list stops at its first bad prefix: one problem, not 49.
    assert.match(many.message, /^tproxy\.yaml:4:7: rules\.bypass\.destinations: "10\.0\.0\.1\/8" has host bits set below \/8: did you mean 10\.0\.0\.0\/8\?$/);
    const ports = refusal(`listeners:\n${Array.from({ length: 30 }, (_, i) => `  - { name: l${i}, port: ${70000 + i} }\n`).join('')}`);
    assert.match(ports.message, /^30 problems in the configuration:\n/);
    assert.equal(ports.message.split('\n').length, 1 + 20 + 1);
    assert.match(ports.message, /\n {2}\.\.\. and 10 more$/);
  });

  it('stops a "billion laughs" document at the alias limit with the error, not a stack trace', () => {
    const lol = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 9; i++) lol.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    const r = refusal(`${lol.join('\n')}\n`);
    assert.match(r.message, /tproxy\.yaml: too many aliases/);
  });
});
