import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TproxyError } from '../../src/core/errors.js';
import { answer, parseAdminRequest, resultOf } from '../../src/daemon/admin-protocol.js';

describe('admin protocol', () => {
  it('reads requests, with the default number of busiest flows', () => {
    assert.deepEqual(parseAdminRequest('{"id":1,"method":"status"}'), { id: 1, method: 'status', top: 10 });
    assert.deepEqual(parseAdminRequest('{"method":"status","params":{"top":0}}'), { id: null, method: 'status', top: 0 });
    assert.deepEqual(parseAdminRequest('{"id":"a","method":"ping"}'), { id: 'a', method: 'ping', top: 10 });
  });

  const bad: [string, string][] = [
    ['status', 'admin request: not JSON: send one JSON object per line, e.g. {"id":1,"method":"status"}'],
    ['[1]', 'admin request: not a JSON object'],
    ['{"method":"reload"}', 'admin request: unknown method "reload": use ping, status, config, ready, drain, undrain'],
    ['{"id":{},"method":"ping"}', 'admin request: "id" must be a number or a string'],
    ['{"method":"status","params":[]}', 'admin request: "params" must be an object'],
    ['{"method":"status","params":{"top":1001}}', 'admin request: "params.top" must be an integer from 0 to 1000'],
    ['{"method":"status","params":{"top":1.5}}', 'admin request: "params.top" must be an integer from 0 to 1000'],
  ];
  for (const [line, message] of bad) {
    it(`refuses ${line}`, () => assert.throws(() => parseAdminRequest(line), (e: unknown) => e instanceof TproxyError && e.code === 'ERR_INVALID_ARGUMENT' && e.message === message));
  }

  it('answers every line with one response line, errors included', async () => {
    assert.deepEqual(JSON.parse(await answer('{"id":3,"method":"ping"}', () => Promise.resolve({ pid: 9 }))), { id: 3, ok: true, result: { pid: 9 } });
    assert.deepEqual(JSON.parse(await answer('{"id":4,"method":"nope"}', () => Promise.resolve(1))), { id: 4, ok: false, error: { code: 'ERR_INVALID_ARGUMENT', message: 'admin request: unknown method "nope": use ping, status, config, ready, drain, undrain' } });
    const failed = JSON.parse(await answer('{"id":5,"method":"status"}', () => Promise.reject(new TproxyError('ERR_COMMAND_FAILED', 'nft failed')))) as unknown;
    assert.deepEqual(failed, { id: 5, ok: false, error: { code: 'ERR_COMMAND_FAILED', message: 'nft failed' } });
  });

  it('resultOf returns the result or raises the daemon\'s error', () => {
    assert.deepEqual(resultOf('{"id":1,"ok":true,"result":{"pid":9}}'), { pid: 9 });
    assert.throws(() => resultOf('{"id":1,"ok":false,"error":{"code":"ERR_X","message":"m"}}'), /the daemon refused the request: m \[ERR_X\]/);
    assert.throws(() => resultOf('garbage'), /not JSON: garbage/);
  });
});
