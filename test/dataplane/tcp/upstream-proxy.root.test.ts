// TCP flows relayed through an upstream proxy (SOCKS5 and HTTP CONNECT), each engine, through
// real kernel rules: the proxy is asked for the original destination, bytes arrive intact both
// ways, half-close crosses, refusals and a dead proxy reset the client, and bytes a destination
// sends right after the proxy's reply are not lost.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { JsonLines } from '../../../src/lab/json-lines.js';
import { LAB_ADDRESSES } from '../../../src/lab/topology.js';
import { UPSTREAM_PROXY_AGENT } from '../../helpers/paths.js';
import { startProxyLab, type ProxyLab } from '../../helpers/proxy-lab.js';

const SERVER = { 4: LAB_ADDRESSES.server.ipv4, 6: LAB_ADDRESSES.server.ipv6 } as const;
const MiB = 1024 * 1024;
type ProxyLine = { event: string; from?: { address: string }; target?: { address: string; port: number }; result?: string };

const CASES = [
  { engine: 'splice', protocol: 'socks5', port: 1080, auth: 'alice:s3cret', refused: 'socks5-connection-refused' },
  { engine: 'stream', protocol: 'http', port: 3128, auth: 'bob:pw', refused: 'http-connect-502' },
  { engine: 'splice', protocol: 'http', port: 3128, auth: undefined, refused: 'http-connect-502' },
  { engine: 'stream', protocol: 'socks5', port: 1080, auth: undefined, refused: 'socks5-connection-refused' },
  { engine: 'uring', protocol: 'socks5', port: 1080, auth: 'alice:s3cret', refused: 'socks5-connection-refused' },
  { engine: 'uring', protocol: 'http', port: 3128, auth: 'bob:pw', refused: 'http-connect-502' },
] as const;

for (const c of CASES) {
  describe(`TCP through an upstream ${c.protocol} proxy${c.auth ? ' with credentials' : ''} (${c.engine} engine) (root)`, () => {
    let p: ProxyLab;
    let agent: { child: import('node:child_process').ChildProcess };
    let requests: JsonLines<ProxyLine>;
    before(async () => {
      // The proxy runs in the server namespace, reached over IPv4 in the splice and uring labs and
      // over IPv6 in the stream labs; IPv4 and IPv6 destinations both go through it either way (SOCKS5
      // carries the address type, HTTP the bracketed authority).
      const url = `${c.protocol}://${c.auth ? `${c.auth}@` : ''}${c.engine !== 'stream' ? SERVER[4] : `[${SERVER[6]}]`}:${c.port}`;
      p = await startProxyLab(['--intercept', 'tcp:81-83', '--workers', '1', '--tcp-engine', c.engine, '--table', 'tproxy_up', '--upstream-proxy', url]);
      try {
        agent = p.lab.spawn('server', [process.execPath, UPSTREAM_PROXY_AGENT, c.protocol, `${c.port}`, ...(c.auth ? ['--auth', c.auth] : []), '--early-port', '83']);
        requests = new JsonLines<ProxyLine>(agent.child.stdout!);
        await requests.waitFor((l) => l.event === 'ready', 10_000, 'the upstream proxy ready');
      } catch (error) {
        await p.lab.destroy();
        throw error;
      }
    });
    after(() => p.lab.destroy());

    if (c.engine === 'uring') {
      it('runs the uring engine, not its splice fallback', async () => {
        const line = await p.logs.waitFor((l) => l.type === 'tcp.engine', 5000, 'the tcp.engine line');
        assert.equal(line.engine, 'uring', JSON.stringify(line));
      });
    }

    for (const family of [4, 6] as const) {
      it(`IPv${family}: the proxy is asked for the original destination, from this host's address`, async () => {
        const r = await p.client<{ how: string; seen: { address: string } }>('peer', SERVER[family], 81);
        assert.equal(r.how, 'end');
        const req = await requests.waitFor((l) => l.event === 'connect' && l.target?.address === SERVER[family] && l.target.port === 81, 5000, 'the CONNECT request');
        assert.equal(req.result, 'ok');
        const routerSide = c.engine !== 'stream' ? LAB_ADDRESSES.routerServerSide.ipv4 : LAB_ADDRESSES.routerServerSide.ipv6;
        assert.equal(req.from?.address.replace(/^::ffff:/, ''), routerSide);
      });
    }

    it('16 MiB each way arrive intact, and the bytes are counted without the handshake', async () => {
      const r = await p.client<{ how: string; receivedBytes: number; sentSha256: string; receivedSha256: string }>('bulk', SERVER[6], 81, 16 * MiB);
      assert.equal(r.how, 'end');
      assert.equal(r.receivedBytes, 16 * MiB);
      assert.equal(r.receivedSha256, r.sentSha256);
      const close = await p.logs.waitFor((l) => l.type === 'tcp.close' && l.bytesFromClient === 16 * MiB + 5, 10_000, 'the flow closed');
      assert.equal(close.bytesFromServer, 16 * MiB, 'ECHO reply only: no proxy reply bytes');
    });

    it('half-close crosses the proxy: the client FINs first and still receives everything', async () => {
      const r = await p.client<{ how: string; receivedBytes: number; intact: boolean }>('halfclose', SERVER[4], 81, 2 * MiB);
      assert.deepEqual(r, { how: 'end', receivedBytes: 2 * MiB, intact: true });
    });

    it('bytes the destination sends right after the proxy reply reach the client', async () => {
      const r = await p.client<{ how: string; reply: string }>('hold', SERVER[4], 83, 1500);
      assert.equal(r.reply, 'HELLO\nOK\n');
    });

    it('a destination the proxy cannot reach resets the client, logged with the proxy reason', async () => {
      assert.equal((await p.client<{ how: string }>('raw', SERVER[4], 82)).how, 'reset');
      await requests.waitFor((l) => l.event === 'connect' && l.target?.port === 82 && l.result === 'ECONNREFUSED', 5000, 'the proxy refused');
      await p.logs.waitFor((l) => l.type === 'tcp.close' && l.reason === c.refused, 5000, `the flow closed with ${c.refused}`);
    });

    it('a proxy that is down resets the client (connect refused, counted)', async () => {
      agent.child.kill('SIGTERM');
      await new Promise((r) => (agent.child.exitCode !== null ? r(undefined) : agent.child.once('exit', r)));
      assert.equal((await p.client<{ how: string }>('raw', SERVER[4], 81)).how, 'reset');
      await p.logs.waitFor((l) => l.type === 'tcp.close' && l.reason === 'ECONNREFUSED', 5000, 'the refused proxy connect');
    });
  });
}
