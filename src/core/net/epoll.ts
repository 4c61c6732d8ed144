/**
 * struct epoll_event layout. Pure.
 *
 *   struct epoll_event { uint32_t events; epoll_data_t data; }
 *
 * The kernel declares it __attribute__((packed)) on x86_64 only (12 bytes, data at offset 4);
 * on other 64-bit architectures (aarch64) it is naturally aligned (16 bytes, data at offset 8).
 * We store the fd in the low 32 bits of `data`.
 */

export interface EpollEventLayout {
  readonly size: number;
  readonly dataOffset: number;
}

export function epollEventLayout(arch: string): EpollEventLayout {
  return arch === 'x64' ? { size: 12, dataOffset: 4 } : { size: 16, dataOffset: 8 };
}

export function writeEpollEvent(target: Buffer, layout: EpollEventLayout, index: number, events: number, fd: number): void {
  const at = index * layout.size;
  target.writeUInt32LE(events >>> 0, at);
  target.writeInt32LE(fd, at + layout.dataOffset);
  target.writeUInt32LE(0, at + layout.dataOffset + 4);
}

export function readEpollEvent(source: Buffer, layout: EpollEventLayout, index: number): { readonly events: number; readonly fd: number } {
  const at = index * layout.size;
  return { events: source.readUInt32LE(at), fd: source.readInt32LE(at + layout.dataOffset) };
}
