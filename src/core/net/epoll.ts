/**
 * struct epoll_event layout. On x86_64 the kernel declares it packed (12 bytes: u32 events, u64
 * data); on other 64-bit architectures it is naturally aligned (16 bytes). Pure.
 */
export function epollEventSize(arch: string = process.arch): number {
  return arch === 'x64' ? 12 : 16;
}

export function writeEpollEvent(buf: Buffer, index: number, events: number, data: number, size = epollEventSize()): void {
  const o = index * size;
  buf.writeUInt32LE(events >>> 0, o);
  buf.writeBigUInt64LE(BigInt(data), o + (size === 12 ? 4 : 8));
}

export function readEpollEvent(buf: Buffer, index: number, size = epollEventSize()): { events: number; data: number } {
  const o = index * size;
  return { events: buf.readUInt32LE(o), data: Number(buf.readBigUInt64LE(o + (size === 12 ? 4 : 8))) };
}
