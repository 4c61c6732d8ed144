import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IO_URING_OP_SUPPORTED, ioUringSupport, kernelVersion, PARAMS_SIZE, PROBE_HEADER_SIZE, PROBE_OP_SIZE, probedOpcodes, readParams, userData, writeParams } from '../../../src/core/net/io-uring.js';
import { resolveTcpEngine } from '../../../src/dataplane/tcp/engines.js';

const base = { release: '6.18.44-fc-v1300', disabledSysctl: 0, setupErrno: undefined, root: true };

describe('io_uring ABI and support', () => {
  it('reads the ring offsets where io_uring_params keeps them', () => {
    const params = Buffer.alloc(PARAMS_SIZE);
    writeParams(params, 0x3188, 1024);
    assert.equal(params.readUInt32LE(4), 1024);
    assert.equal(params.readUInt32LE(8), 0x3188);
    params.writeUInt32LE(256, 0);
    params.writeUInt32LE(0x1ff, 20);
    params.writeUInt32LE(4, 44); // sq_off.tail
    params.writeUInt32LE(4160, 64); // sq_off.array
    params.writeUInt32LE(12, 84); // cq_off.tail
    params.writeUInt32LE(64, 100); // cq_off.cqes
    const o = readParams(params);
    assert.equal(o.sqEntries, 256);
    assert.equal(o.cqEntries, 1024);
    assert.equal(o.features, 0x1ff);
    assert.equal(o.sq.tail, 4);
    assert.equal(o.sq.array, 4160);
    assert.equal(o.cq.tail, 12);
    assert.equal(o.cq.cqes, 64);
  });

  it('packs an operation kind and an id into user_data', () => {
    assert.equal(userData(5, 0xffffffff), (5n << 32n) | 0xffffffffn);
    assert.equal(userData(1, -1), (1n << 32n) | 0xffffffffn, 'ids wrap at 32 bits');
  });

  it('reads the supported opcodes from an IORING_REGISTER_PROBE answer', () => {
    const probe = Buffer.alloc(PROBE_HEADER_SIZE + 4 * PROBE_OP_SIZE);
    probe.writeUInt8(56, 0); // last_op
    probe.writeUInt8(3, 1); // ops_len: the fourth entry is past it
    const entry = (i: number, op: number, flags: number): void => {
      probe.writeUInt8(op, PROBE_HEADER_SIZE + i * PROBE_OP_SIZE);
      probe.writeUInt16LE(flags, PROBE_HEADER_SIZE + i * PROBE_OP_SIZE + 2);
    };
    entry(0, 45, IO_URING_OP_SUPPORTED);
    entry(1, 46, 0);
    entry(2, 56, IO_URING_OP_SUPPORTED);
    entry(3, 19, IO_URING_OP_SUPPORTED);
    assert.deepEqual([...probedOpcodes(probe)].sort((a, b) => a - b), [45, 56]);
  });

  it('says why io_uring cannot run: old kernel, the sysctl, a seccomp refusal', () => {
    assert.deepEqual(kernelVersion('6.18.44-fc-v1300'), [6, 18]);
    assert.equal(kernelVersion('weird'), undefined);
    assert.equal(ioUringSupport(base).available, true);
    assert.match(ioUringSupport({ ...base, release: '5.15.0-91-generic' }).why, /older than 6\.1/);
    assert.match(ioUringSupport({ ...base, disabledSysctl: 2 }).why, /io_uring_disabled is 2/);
    assert.equal(ioUringSupport({ ...base, disabledSysctl: 1 }).available, true, 'root may, at 1');
    assert.match(ioUringSupport({ ...base, disabledSysctl: 1, root: false }).why, /only root/);
    const seccomp = ioUringSupport({ ...base, setupErrno: 'EPERM' });
    assert.equal(seccomp.available, false);
    assert.match(seccomp.why, /seccomp/);
    assert.equal(ioUringSupport({ ...base, setupErrno: 'ENOSYS' }).available, false);
  });
});

describe('choosing the TCP engine', () => {
  it('runs uring only where io_uring works (any routing), saying why otherwise', () => {
    const yes = () => ({ available: true as const, why: 'io_uring is available' });
    const no = () => ({ available: false as const, why: 'io_uring_setup failed with EPERM' });
    assert.deepEqual(resolveTcpEngine('splice', no), { engine: 'splice', why: undefined });
    assert.deepEqual(resolveTcpEngine('uring', yes), { engine: 'uring', why: 'io_uring is available' });
    const refused = resolveTcpEngine('uring', no);
    assert.equal(refused.engine, 'splice');
    assert.match(refused.why ?? '', /EPERM: the splice engine runs instead/);
  });
});
