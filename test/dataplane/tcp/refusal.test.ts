import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { refusalReason } from '../../../src/dataplane/tcp/refusal.js';

const ctx = { localAddresses: new Set(['198.51.100.1', '203.0.113.1']), listenPort: 8000, activeFlows: 0, maxConnections: 10 };
const client = { family: 4, address: '198.51.100.10', port: 40000 } as const;
const at = (address: string, port: number) => ({ family: 4 as const, address, port });

describe('TCP refusal', () => {
  const cases: [string, ReturnType<typeof at>, Partial<typeof ctx>, string | undefined][] = [
    ['a TPROXY\'d connection to a remote server', at('203.0.113.20', 80), {}, undefined],
    ['a direct connection to the listener', at('198.51.100.1', 8000), {}, 'not-intercepted'],
    ['an original destination on this host (loop)', at('203.0.113.1', 80), {}, 'loop'],
    ['a destination equal to the client (loop)', at('198.51.100.10', 80), {}, 'loop'],
    ['a connection over the cap', at('203.0.113.20', 80), { activeFlows: 10 }, 'limit'],
  ];
  for (const [what, destination, change, expected] of cases) {
    it(`${expected ?? 'accepts'}: ${what}`, () => assert.equal(refusalReason(client, destination, { ...ctx, ...change }), expected));
  }
});
