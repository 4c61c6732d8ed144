// The mmproxy TCP listener between real peers in namespaces: HAProxy as the load balancer in front
// (send-proxy and send-proxy-v2), nginx as the backend on the same host (loopback) logging
// $remote_addr:$remote_port, and a second nginx on another host (the server namespace). The backend
// sees the real client's address and port, IPv4 and IPv6;
// bad headers and sources not allowed are reset, counted by reason and never reach nginx, while
// good flows go on. The replies come back through the rules `tproxy run` applies for its mmproxy
// section and removes when it stops: go-mmproxy's policy rule (`from 127.0.0.0/8 iif lo` / `from
// ::1 iif lo` to a local route) for loopback, and a divert rule and fwmark route for the other host.
// Nothing is typed by hand: the standalone listener (the agent) relies on the daemon's rules too.
// All of it on each TCP engine: splice (engine threads), uring (engine threads on io_uring) and
// stream (Node streams).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { JsonLines } from '../../../src/lab/json-lines.js';
import { Lab, LAB_ADDRESSES } from '../../../src/lab/topology.js';
import type { MmproxyTcpConfig } from '../../../src/dataplane/mmproxy/tcp-relay.js';
import { BIN, HEADER_SENDER, MMPROXY_AGENT, PIECEWISE_BACKEND, TRANSPARENT_HOLDER } from '../../helpers/paths.js';
import { until } from '../../helpers/until.js';

const BALANCER = { 4: LAB_ADDRESSES.routerClientSide.ipv4, 6: LAB_ADDRESSES.routerClientSide.ipv6 } as const;
const SERVER = { 4: LAB_ADDRESSES.server.ipv4, 6: LAB_ADDRESSES.server.ipv6 } as const;
const CLIENT = { 4: LAB_ADDRESSES.client.ipv4, 6: LAB_ADDRESSES.client.ipv6 } as const;
const hex = (text: string): string => Buffer.from(text, 'latin1').toString('hex');
const V2_SIGNATURE = '0d0a0d0a000d0a515549540a';

type Line = { type: string; engine?: string; why?: string; seq?: number; reason?: string; listener?: string; headerSource?: { address: string; port: number }; rejected?: Record<string, number>; connectErrors?: Record<string, number>; headersProxy?: number; headersLocal?: number };

for (const engine of ['splice', 'uring', 'stream'] as const) {
  describe(`mmproxy TCP on the ${engine} engine: HAProxy in front, nginx behind on loopback (root)`, () => {
    let lab: Lab;
    let dir: string;
    let lines: JsonLines<Line>;
    let agent: ReturnType<Lab['spawn']>;
    let daemon: ReturnType<Lab['spawn']>;
    let daemonLog: JsonLines<Line>;
    const accessLog = (): string[] => readFileSync(path.join(dir, 'access.log'), 'utf8').split('\n').filter((l) => l !== '');

    const baseConfig = { upstreamMark: 0x2, headerTimeoutMs: 1500, maxHeaderBytes: 512, connectTimeoutMs: 5000, idleTimeoutMs: 60_000, allowedSources: ['127.0.0.0/8', '::1'] };
    before(async () => {
      dir = mkdtempSync(path.join(tmpdir(), 'tproxy-mmproxy-'));
      lab = await Lab.create();
      try {
        // Strict reverse-path filtering on the mmproxy host (some distributions' default): the reply
        // routing must not depend on it being off.
        for (const key of ['all', 'default', 'lo']) await lab.run('router', ['sysctl', '-qw', `net.ipv4.conf.${key}.rp_filter=1`]);
        writeFileSync(
          path.join(dir, 'nginx-remote.conf'),
          [
            'worker_processes 1;',
            `pid ${dir}/nginx-remote.pid;`,
            `error_log ${dir}/nginx-remote-error.log;`,
            'events { worker_connections 64; }',
            'http {',
            `  client_body_temp_path ${dir}/rbody; proxy_temp_path ${dir}/rproxy; fastcgi_temp_path ${dir}/rfcgi; uwsgi_temp_path ${dir}/ruwsgi; scgi_temp_path ${dir}/rscgi;`,
            `  access_log off;`,
            `  server { listen ${SERVER[4]}:8080; listen [${SERVER[6]}]:8080; location / { return 200 "remote backend saw $remote_addr:$remote_port\\n"; } }`,
            '}',
          ].join('\n'),
        );
        lab.spawn('server', ['nginx', '-p', dir, '-c', path.join(dir, 'nginx-remote.conf'), '-g', 'daemon off; user root;']);
        writeFileSync(
          path.join(dir, 'nginx.conf'),
          [
            'worker_processes 1;',
            `pid ${dir}/nginx.pid;`,
            `error_log ${dir}/nginx-error.log;`,
            'events { worker_connections 64; }',
            'http {',
            `  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;`,
            '  log_format peer "$remote_addr:$remote_port $request_uri";',
            `  access_log ${dir}/access.log peer;`,
            '  server { listen 127.0.0.1:8080; listen [::1]:8080; location / { return 200 "backend saw $remote_addr:$remote_port\\n"; } }',
            '}',
          ].join('\n'),
        );
        writeFileSync(
          path.join(dir, 'haproxy.cfg'),
          [
            'global',
            `  pidfile ${dir}/haproxy.pid`,
            'defaults',
            '  mode tcp',
            '  timeout connect 5s',
            '  timeout client 30s',
            '  timeout server 30s',
            'frontend v1',
            `  bind ${BALANCER[4]}:80`,
            `  bind [${BALANCER[6]}]:80`,
            '  default_backend v1',
            'frontend v2',
            `  bind ${BALANCER[4]}:81`,
            `  bind [${BALANCER[6]}]:81`,
            '  default_backend v2',
            'frontend daemon',
            `  bind ${BALANCER[4]}:82`,
            `  bind [${BALANCER[6]}]:82`,
            '  default_backend daemon',
            'frontend remote',
            `  bind ${BALANCER[4]}:83`,
            `  bind [${BALANCER[6]}]:83`,
            '  default_backend remote',
            'backend remote',
            '  server mm 127.0.0.1:8445 send-proxy-v2',
            'backend daemon',
            '  server mm 127.0.0.1:8444 send-proxy-v2',
            'backend v1',
            '  server mm 127.0.0.1:8443 send-proxy',
            'backend v2',
            '  server mm [::1]:8443 send-proxy-v2',
          ].join('\n') + '\n',
        );
        const config: MmproxyTcpConfig = {
          ...baseConfig,
          name: 'web',
          listen: [{ address: '127.0.0.1', port: 8443 }, { address: '::1', port: 8443 }, { address: BALANCER[4], port: 8443 }],
          allowedSources: ['127.0.0.0/8', '::1'],
          backend4: { address: '127.0.0.1', port: 8080 },
          backend6: { address: '::1', port: 8080 },
          headerTimeoutMs: 1500,
          maxHeaderBytes: 512,
          upstreamMark: 0x2,
          connectTimeoutMs: 5000,
          idleTimeoutMs: 60_000,
        };
        agent = lab.spawn('router', [process.execPath, MMPROXY_AGENT, JSON.stringify(config), engine]);
        lines = new JsonLines<Line>(agent.child.stdout!);
        await lines.waitFor((l) => l.type === 'ready', 10_000, 'the mmproxy listener ready');
        // The same job done by `tproxy run` from a configuration file (its own listener on 8444).
        writeFileSync(
          path.join(dir, 'tproxy.yaml'),
          [
            // The transparent listener intercepts UDP only, so the TCP divert rule is there for the mmproxy listener alone.
            'listeners: [{port: 8000, intercept: ["udp:9"]}]',
            'metrics: {listen: "127.0.0.1:9464"}',
            `admin: {socket: ${path.join(dir, 'admin.sock')}}`,
            'mmproxy:',
            '  - name: lb',
            '    listen: [127.0.0.1:8444]',
            '    backend4: 127.0.0.1:8080',
            '    backend6: "[::1]:8080"',
            '    headerTimeoutMs: 2000',
            '    healthTarget: 127.0.0.1:8080',
            '  - name: remote',
            '    listen: [127.0.0.1:8445]',
            `    backend4: ${SERVER[4]}:8080`,
            `    backend6: "[${SERVER[6]}]:8080"`,
          ].join('\n') + '\n',
        );
        daemon = lab.spawn('router', [process.execPath, BIN, 'run', '--config', path.join(dir, 'tproxy.yaml'), '--tcp-engine', engine, '--log-format', 'json', '--log-level', 'debug']);
        daemonLog = new JsonLines<Line>(daemon.child.stderr!);
        await daemonLog.waitFor((l) => l.type === 'ready', 15_000, 'tproxy run ready');
        lab.spawn('router', ['nginx', '-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off; user root;']);
        lab.spawn('router', ['haproxy', '-db', '-f', path.join(dir, 'haproxy.cfg')]);
        await until(async () => (await lab.run('router', ['ss', '-ltnH'], { check: false })).stdout, (s) => s.includes(`${BALANCER[4]}:81`) && s.includes('127.0.0.1:8080'), 10_000, 'haproxy and nginx listening');
      } catch (error) {
        await lab.destroy();
        throw error;
      }
    });
    after(async () => {
      await lab?.destroy();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    let asked = 0;
    const counters = async (): Promise<Line> => {
      const seq = ++asked;
      agent.child.stdin!.write(`counters ${seq}\n`);
      return lines.waitFor((l) => l.type === 'counters' && l.seq === seq, 5000, 'the counters');
    };

    if (engine === 'uring') {
      it('runs on io_uring: the listener\'s threads hold rings, and tproxy run says its mmproxy entries run on uring', async () => {
        const rings = (await lab.run('router', ['find', `/proc/${agent.child.pid}/fd`, '-lname', 'anon_inode:\\[io_uring\\]'])).stdout.trim().split('\n').filter((l) => l !== '');
        assert.ok(rings.length >= 2, `a ring per engine thread: ${rings.join(', ')}`);
        const said = daemonLog.find((l) => l.type === 'tcp.engine' && (l.why ?? '').startsWith('mmproxy TCP entries'));
        assert.equal(said?.engine, 'uring', JSON.stringify(said));
      });

      // The client's bytes come with the header: the backend socket delays the handshake's last ACK
      // so it goes with them (TCP_QUICKACK 0 before the connect), then turns quick ACKs back on. Left
      // delaying, this backend's second piece would wait for our delayed-ACK timer.
      it("a backend answering in small pieces with Nagle on: the handshake's ACK came with the request (2 segments in, not 3), and no ACK of ours waited for its timer", async () => {
        const backend = lab.spawn('router', [process.execPath, PIECEWISE_BACKEND, '127.0.0.1', '8090', '3']);
        const said = new JsonLines<{ listening?: boolean; segmentsIn?: number; delayedAcks?: number }>(backend.child.stdout!);
        const relay = lab.spawn('router', [process.execPath, MMPROXY_AGENT, JSON.stringify({ ...baseConfig, name: 'pieces', listen: [{ address: '127.0.0.1', port: 8446 }], backend4: { address: '127.0.0.1', port: 8090 } }), engine]);
        try {
          await said.waitFor((l) => l.listening === true, 5000, 'the piecewise backend listening');
          await new JsonLines<Line>(relay.child.stdout!).waitFor((l) => l.type === 'ready', 10_000, 'the second mmproxy listener ready');
          for (let i = 0; i < 3; i++) {
            const request = hex(`PROXY TCP4 ${CLIENT[4]} ${BALANCER[4]} ${43500 + i} 80\r\nGET /pieces HTTP/1.0\r\n\r\n`);
            const r = await lab.run('router', [process.execPath, HEADER_SENDER, '127.0.0.1', '8446', request]);
            const out = JSON.parse(r.stdout.trim()) as { how: string; received: string };
            assert.deepEqual([out.how, out.received], ['end', 'piece 1\npiece 2\npiece 3\n']);
          }
          const counted = (): { segmentsIn?: number; delayedAcks?: number }[] => said.items.filter((l) => l.segmentsIn !== undefined);
          const counts = await until(() => Promise.resolve(counted()), (c) => c.length === 3, 5000, "the backend's three counts");
          assert.deepEqual(counts.map((c) => c.segmentsIn), [2, 2, 2], 'the SYN, then the request carrying the handshake\'s ACK');
          assert.deepEqual(counts.map((c) => c.delayedAcks), [0, 0, 0], 'no delayed-ACK timer fired while the pieces went');
        } finally {
          relay.child.kill('SIGTERM');
          backend.child.kill('SIGTERM');
          await Promise.all([relay.exited, backend.exited]);
        }
      });
    }

    if (engine !== 'stream') {
      it('a connection that sends nothing is not handed over at once (TCP_DEFER_ACCEPT): no descriptor until its SYN-ACK is sent again (1 s), then the header timeout cuts it', async () => {
        const pid = agent.child.pid ?? -1;
        const sockets = (): number => readdirSync(`/proc/${pid}/fd`).filter((fd) => { try { return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:'); } catch { return false; } }).length;
        const before = sockets();
        const cutBefore = (await counters()).rejected?.['header-timeout'] ?? 0;
        const started = Date.now();
        // Connects and sends nothing (no bytes, a tick that sends none), then waits for the end.
        const silent = lab.run('router', [process.execPath, HEADER_SENDER, '127.0.0.1', '8443', '', '100']);
        await new Promise((r) => setTimeout(r, 400));
        const held = sockets();
        // (Only while the resend is surely not due: a test process held up past it proves nothing.)
        if (Date.now() - started < 800) assert.equal(held, before, 'no socket accepted for it yet');
        const out = JSON.parse((await silent).stdout.trim()) as { how: string };
        assert.equal(out.how, 'reset', 'cut at the header timeout once accepted');
        assert.ok(Date.now() - started >= 1000 + baseConfig.headerTimeoutMs - 100, `accepted after the resend, then timed out: ${Date.now() - started} ms`);
        assert.equal((await counters()).rejected?.['header-timeout'], cutBefore + 1);
      });
    }

    let localPort = 41_000;
    for (const [version, balancerPort] of [['v1', 80], ['v2', 81]] as const) {
      for (const family of [4, 6] as const) {
        it(`${version} (send-proxy${version === 'v2' ? '-v2' : ''}), IPv${family}: nginx sees the client's own address and port`, async () => {
          const port = ++localPort;
          const url = family === 4 ? `http://${BALANCER[4]}:${balancerPort}/${version}-${family}` : `http://[${BALANCER[6]}]:${balancerPort}/${version}-${family}`;
          const r = await lab.run('client', ['curl', '-sS', '--max-time', '10', '--local-port', `${port}`, url]);
          const seen = family === 4 ? `${CLIENT[4]}:${port}` : `${CLIENT[6]}:${port}`;
          assert.equal(r.stdout.trim(), `backend saw ${seen}`);
          await until(() => Promise.resolve(accessLog()), (log) => log.includes(`${seen} /${version}-${family}`), 5000, 'the access log line');
        });
      }
    }

    for (const family of [4, 6] as const) {
      it(`a backend on another host, IPv${family}: it sees the client, its replies come back through the divert rule`, async () => {
        const port = ++localPort;
        const url = family === 4 ? `http://${BALANCER[4]}:83/` : `http://[${BALANCER[6]}]:83/`;
        const r = await lab.run('client', ['curl', '-sS', '--max-time', '10', '--local-port', `${port}`, url]);
        assert.equal(r.stdout.trim(), `remote backend saw ${CLIENT[family]}:${port}`);
      });
    }

    const BAD = [
      { what: 'a wrong signature', bytes: hex('GET / HTTP/1.1\r\n\r\n'), reason: 'bad-signature' },
      { what: 'a truncated header (the sender half-closes inside it)', bytes: hex('PROXY TCP4 198.51.100.10'), end: true, reason: 'truncated' },
      { what: 'a v1 line without CRLF', bytes: hex(`PROXY TCP4 198.51.100.10 198.51.100.1 40000 80 ${'x'.repeat(80)}`), reason: 'v1-no-crlf' },
      { what: 'a v2 length beyond the bound', bytes: `${V2_SIGNATURE}2111ffff${'00'.repeat(16)}`, reason: 'v2-too-long' },
      { what: 'a header one byte a second (cut at the header timeout)', bytes: hex('PROXY TCP4 198.51.100.10 198.51.100.1 40000 80\r\n'), delayMs: 700, reason: 'header-timeout' },
    ];
    /** CPU time (ms) the agent process used so far: user and system, from /proc. */
    const agentCpuMs = (): number => {
      const fields = readFileSync(`/proc/${agent.child.pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
    };
    for (const bad of BAD) {
      it(`${bad.what}: reset, counted as ${bad.reason}, never relayed`, async () => {
        const before = accessLog().length;
        const cpuBefore = agentCpuMs();
        const r = await lab.run('router', [process.execPath, HEADER_SENDER, '127.0.0.1', '8443', bad.bytes, `${bad.delayMs ?? 0}`, bad.end ? 'end' : '']);
        const out = JSON.parse(r.stdout.trim()) as { how: string; received: string; sentBytes: number };
        assert.equal(out.how, 'reset', JSON.stringify(out));
        assert.equal(out.received, '');
        await lines.waitFor((l) => l.type === 'mmproxy.reject' && l.reason === bad.reason, 5000, `the ${bad.reason} rejection`);
        if (bad.delayMs) {
          assert.ok(out.sentBytes < 10, `the slow header was cut after ${out.sentBytes} bytes`);
          // Waiting 1.5 s on a header prefix already peeked costs next to nothing (no loop spinning on it).
          const used = agentCpuMs() - cpuBefore;
          assert.ok(used < 150, `the listener used ${used} ms of CPU while the slow header waited`);
        }
        assert.ok(((await counters()).rejected?.[bad.reason] ?? 0) >= 1);
        assert.equal(accessLog().length, before, 'nothing reached nginx');
      });
    }

    it('a header sent one byte at a time, complete within the header timeout, is relayed with the bytes after it', async () => {
      const request = hex(`PROXY TCP4 ${CLIENT[4]} ${BALANCER[4]} 43434 80\r\nGET /bytewise HTTP/1.0\r\n\r\n`);
      const r = await lab.run('router', [process.execPath, HEADER_SENDER, '127.0.0.1', '8443', request, '10']);
      const out = JSON.parse(r.stdout.trim()) as { how: string; received: string };
      assert.equal(out.how, 'end', JSON.stringify(out));
      assert.match(out.received, new RegExp(`backend saw ${CLIENT[4]}:43434`));
      await until(() => Promise.resolve(accessLog()), (log) => log.includes(`${CLIENT[4]}:43434 /bytewise`), 5000, 'the access log line');
    });

    it('a first write far larger than one read (header, a 40 kB body, a pipelined request) reaches the backend whole and in order', async () => {
      // The splice engine reads the header with up to 16 KiB of the client's bytes after it (sent
      // to the backend first) and splices the rest: a byte lost, doubled or moved at that seam
      // shifts the end of the body, and the request after it no longer parses (its one-letter
      // method `G`: a byte less leaves a line starting with a space, a byte more a lowercase `x`).
      const body = 'x'.repeat(40_000);
      const request = hex(`PROXY TCP4 ${CLIENT[4]} ${BALANCER[4]} 42425 80\r\nPOST /big HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}G /after HTTP/1.0\r\n\r\n`);
      const r = await lab.run('router', [process.execPath, HEADER_SENDER, '127.0.0.1', '8443', request]);
      const out = JSON.parse(r.stdout.trim()) as { how: string; received: string };
      assert.equal(out.how, 'end', JSON.stringify(out).slice(0, 500));
      assert.equal(out.received.split(`backend saw ${CLIENT[4]}:42425`).length - 1, 2, 'both requests answered');
      await until(() => Promise.resolve(accessLog()), (log) => log.includes(`${CLIENT[4]}:42425 /big`) && log.includes(`${CLIENT[4]}:42425 /after`), 5000, 'both access log lines');
    });

    it('a source that is not allowed is reset before a byte is read, counted as source-not-allowed', async () => {
      const header = hex(`PROXY TCP4 ${CLIENT[4]} ${BALANCER[4]} 40000 8080\r\nGET / HTTP/1.0\r\n\r\n`);
      const before = accessLog().length;
      const r = await lab.run('client', [process.execPath, HEADER_SENDER, BALANCER[4], '8443', header]);
      assert.equal((JSON.parse(r.stdout.trim()) as { how: string }).how, 'reset');
      await lines.waitFor((l) => l.type === 'mmproxy.reject' && l.reason === 'source-not-allowed', 5000, 'the source-not-allowed rejection');
      assert.equal((await counters()).rejected?.['source-not-allowed'], 1);
      assert.equal(accessLog().length, before);
    });

    it('the client bytes that came in the same read as the header reach the backend, and a slow header does not hold up other flows', async () => {
      const slow = lab.run('router', [process.execPath, HEADER_SENDER, '127.0.0.1', '8443', hex('PROXY TCP6 '), '500']);
      const request = hex(`PROXY TCP6 ${CLIENT[6]} ${BALANCER[6]} 42424 80\r\nGET /early HTTP/1.0\r\n\r\n`);
      const r = await lab.run('router', [process.execPath, HEADER_SENDER, '::1', '8443', request, '0']);
      const out = JSON.parse(r.stdout.trim()) as { how: string; received: string };
      assert.equal(out.how, 'end');
      assert.match(out.received, new RegExp(`backend saw ${CLIENT[6]}:42424`));
      await slow;
      const c = await counters();
      assert.ok((c.headersProxy ?? 0) >= 6);
    });

    // The client's address and port already taken on this host toward the same backend: a connection
    // of ours still closing, as when the balancer reuses a client port at once. With SO_REUSEADDR
    // the bind succeeds and the connect meets EADDRNOTAVAIL; without it the bind meets EADDRINUSE.
    // Either way the flow goes from the client's address with another port, nothing is refused.
    for (const mode of ['reuse', 'exclusive'] as const) {
      it(`the client's address and port taken toward the backend (${mode === 'reuse' ? 'connect: EADDRNOTAVAIL' : 'bind: EADDRINUSE'}): relayed from the client's address with another port`, async () => {
        const port = ++localPort;
        const errorsBefore = (await counters()).connectErrors;
        const holder = lab.spawn('router', [process.execPath, TRANSPARENT_HOLDER, CLIENT[4], `${port}`, '127.0.0.1', '8080', mode]);
        try {
          const held = await new JsonLines<{ event: string; code?: string }>(holder.child.stdout!).waitFor((l) => l.event !== undefined, 5000, 'the connection held');
          assert.equal(held.event, 'connected', JSON.stringify(held));
          const request = hex(`PROXY TCP4 ${CLIENT[4]} ${BALANCER[4]} ${port} 80\r\nGET /taken-${mode} HTTP/1.0\r\n\r\n`);
          const r = await lab.run('router', [process.execPath, HEADER_SENDER, '127.0.0.1', '8443', request]);
          const out = JSON.parse(r.stdout.trim()) as { how: string; received: string };
          assert.equal(out.how, 'end', JSON.stringify(out));
          const seen = new RegExp(`backend saw ${CLIENT[4].replace(/\./g, '\\.')}:(\\d+)`).exec(out.received);
          assert.ok(seen, out.received);
          assert.notEqual(Number(seen[1]), port, 'another port than the one taken');
          assert.deepEqual((await counters()).connectErrors, errorsBefore, 'no connect error');
        } finally {
          holder.child.stdin!.end();
          await holder.exited;
        }
      });
    }

    for (const family of [4, 6] as const) {
      it(`tproxy run with an mmproxy section, IPv${family}: nginx sees the client, the flow is logged with its client`, async () => {
        const port = ++localPort;
        const url = family === 4 ? `http://${BALANCER[4]}:82/daemon-${family}` : `http://[${BALANCER[6]}]:82/daemon-${family}`;
        const r = await lab.run('client', ['curl', '-sS', '--max-time', '10', '--local-port', `${port}`, url]);
        assert.equal(r.stdout.trim(), `backend saw ${CLIENT[family]}:${port}`);
        const close = await daemonLog.waitFor((l) => l.type === 'mmproxy.close' && l.headerSource?.port === port, 5000, 'the flow logged');
        assert.equal(close.listener, 'lb');
        assert.equal(close.headerSource?.address, CLIENT[family]);
      });
    }

    it('a LOCAL header (health check) without a health target is closed cleanly after the header, counted as local', async () => {
      const before = accessLog().length;
      const r = await lab.run('router', [process.execPath, HEADER_SENDER, '127.0.0.1', '8443', `${V2_SIGNATURE}20000000${hex('GET / HTTP/1.0\r\n\r\n')}`]);
      assert.equal((JSON.parse(r.stdout.trim()) as { how: string }).how, 'end');
      await lines.waitFor((l) => l.type === 'mmproxy.local', 5000, 'the health check reported');
      assert.equal((await counters()).headersLocal, 1);
      assert.equal(accessLog().length, before, 'a health check reaches no backend');
    });

    it('a LOCAL header with a health target is relayed to it from this host (tproxy run)', async () => {
      const r = await lab.run('router', [process.execPath, HEADER_SENDER, '127.0.0.1', '8444', `${V2_SIGNATURE}20000000${hex('GET /health HTTP/1.0\r\n\r\n')}`]);
      const out = JSON.parse(r.stdout.trim()) as { how: string; received: string };
      assert.equal(out.how, 'end');
      assert.match(out.received, /backend saw 127\.0\.0\.1:\d+/);
    });

    it('tproxy run exports the mmproxy counters: headers by command, rejections by reason', async () => {
      await lab.run('router', [process.execPath, HEADER_SENDER, '127.0.0.1', '8444', hex('SSH-2.0-x\r\n')]);
      const metrics = (await lab.run('router', ['curl', '-sS', '--max-time', '5', 'http://127.0.0.1:9464/metrics'])).stdout;
      assert.match(metrics, /^tproxy_mmproxy_headers_total\{listener="lb",command="proxy"\} 2$/m);
      assert.match(metrics, /^tproxy_mmproxy_rejected_total\{listener="lb",reason="bad-signature"\} 1$/m);
      assert.match(metrics, /^tproxy_mmproxy_headers_total\{listener="lb",command="local"\} 1$/m);
      assert.match(metrics, /^tproxy_mmproxy_connections_closed_total\{listener="lb",reason="done"\} 3$/m);
    });

    it('a reload (SIGHUP) changing an mmproxy entry keeps its port and its counters; tproxy status lists the mmproxy listeners', async () => {
      const file = path.join(dir, 'tproxy.yaml');
      writeFileSync(file, readFileSync(file, 'utf8').replace('    headerTimeoutMs: 2000\n', '    headerTimeoutMs: 2500\n'));
      let readies = 0;
      daemon.child.kill('SIGHUP');
      await daemonLog.waitFor((l) => l.type === 'ready' && ++readies === 2, 15_000, 'ready again after the reload');
      assert.equal(daemonLog.find((l) => l.type === 'reload.rejected'), undefined);
      const port = ++localPort;
      const r = await lab.run('client', ['curl', '-sS', '--max-time', '10', '--local-port', `${port}`, `http://${BALANCER[4]}:82/after-reload`]);
      assert.equal(r.stdout.trim(), `backend saw ${CLIENT[4]}:${port}`);
      const status = (await lab.run('router', [process.execPath, BIN, 'status', '--socket', path.join(dir, 'admin.sock')])).stdout;
      assert.match(status, /^mmproxy lb: tcp 127\.0\.0\.1:8444 \(PROXY v1\/v2\) -> IPv4 127\.0\.0\.1:8080, IPv6 \[::1\]:8080$/m);
      // The two flows and the bad header of the tests above, and this flow: the counters went on over the reload.
      assert.match(status, /^ {2}headers: 3 proxy, 1 local; refused: bad-signature 1; connect errors: none$/m);
      assert.match(status, /^mmproxy remote: tcp 127\.0\.0\.1:8445 \(PROXY v1\/v2\) -> IPv4 203\.0\.113\.20:8080, IPv6 \[2001:db8:2::20\]:8080$/m);
    });

    it('tproxy run applied the reply routing of its mmproxy section: loopback rule, fwmark rule, local route, TCP divert', async () => {
      const rules4 = (await lab.run('router', ['ip', '-4', 'rule'])).stdout;
      const rules6 = (await lab.run('router', ['ip', '-6', 'rule'])).stdout;
      assert.match(rules4, /^9000:\s+from 127\.0\.0\.0\/8 iif lo lookup 100/m);
      assert.match(rules6, /^9000:\s+from ::1 iif lo lookup 100/m);
      assert.match(rules4, /^9000:\s+from all fwmark 0x1\/0x1 lookup 100/m);
      assert.match(rules6, /^9000:\s+from all fwmark 0x1\/0x1 lookup 100/m);
      assert.match((await lab.run('router', ['ip', '-6', 'route', 'show', 'table', '100'])).stdout, /^local default dev lo/m);
      const table = (await lab.run('router', ['nft', 'list', 'table', 'inet', 'tproxy_rules'])).stdout;
      // The replies of the flows above went through it (its counter moved); the transparent listener diverts UDP only.
      for (const family of [4, 6]) assert.match(table, new RegExp(`meta nfproto ipv${family} tcp [^\\n]*socket transparent 1 [^\\n]* counter packets [1-9]\\d* bytes \\d+ accept comment "tproxy: divert tcp ipv${family}"`));
    });

    it('tproxy doctor follows each mmproxy backend\'s reply on this host: loopback and remote, IPv4 and IPv6, all pass', async () => {
      const r = await lab.run('router', [process.execPath, BIN, 'doctor', '--json', '--config', path.join(dir, 'tproxy.yaml')], { check: false });
      const report = JSON.parse(r.stdout) as { findings: { id: string; severity: string; seen: string }[] };
      const mm = report.findings.filter((f) => f.id.startsWith('mmproxy.'));
      assert.deepEqual(mm.map((f) => `${f.id} ${f.severity}`).sort(), ['mmproxy.reply.lb.ipv4 pass', 'mmproxy.reply.lb.ipv6 pass', 'mmproxy.reply.remote.ipv4 pass', 'mmproxy.reply.remote.ipv6 pass'], JSON.stringify(mm, null, 2));
      assert.match(mm.find((f) => f.id === 'mmproxy.reply.remote.ipv4')!.seen, new RegExp(`backend ${SERVER[4].replace(/\./g, '\\.')}:8080 on another host \\(via `));
    });

    it('tproxy explain --mmproxy names the rule and route that bring a backend\'s reply back, for this host', async () => {
      const explain = async (name: string, client: string): Promise<string> => (await lab.run('router', [process.execPath, BIN, 'explain', '--config', path.join(dir, 'tproxy.yaml'), '--mmproxy', name, client])).stdout;
      assert.match(await explain('lb', `${CLIENT[4]}:40000`), /^brought back by: ip rule 9000: from 127\.0\.0\.0\/8 iif lo lookup 100 -> local default dev lo table 100/m);
      assert.match(await explain('lb', `[${CLIENT[6]}]:40000`), /^brought back by: ip rule 9000: from ::1(\/128)? iif lo lookup 100 -> local default dev lo table 100/m);
      assert.match(await explain('remote', `${CLIENT[4]}:40000`), /^brought back by: ip rule 9000: from all fwmark 0x1\/0x1 lookup 100 -> local default dev lo table 100, arriving on \S+ with mark 0x1/m);
    });

    it('tproxy run stops its mmproxy listeners on SIGTERM and removes their reply routing', async () => {
      daemon.child.kill('SIGTERM');
      assert.equal(await daemon.exited, 0);
      const ss = await lab.run('router', ['ss', '-ltnH']);
      assert.doesNotMatch(ss.stdout, /127\.0\.0\.1:8444/);
      for (const family of ['-4', '-6']) {
        const rules = (await lab.run('router', ['ip', family, 'rule'])).stdout;
        assert.doesNotMatch(rules, /iif lo|fwmark|lookup 100/, rules);
        assert.equal((await lab.run('router', ['ip', family, 'route', 'show', 'table', '100'])).stdout.trim(), '');
      }
      assert.notEqual((await lab.run('router', ['nft', 'list', 'table', 'inet', 'tproxy_rules'], { check: false })).exitCode, 0);
    });
  });
}
