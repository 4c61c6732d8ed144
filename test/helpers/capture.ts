/**
 * Packet captures in a lab namespace with tcpdump (`-v` prints each packet's TOS / traffic class
 * and TTL / hop limit): start before the traffic, stop after it, read every IP packet seen.
 */
import type { HostName, Lab } from '../../src/lab/topology.js';

export interface CapturedPacket {
  readonly family: 4 | 6;
  /** TOS byte >> 2 (IPv4) or traffic class >> 2 (IPv6). */
  readonly dscp: number;
  /** TTL (IPv4) or hop limit (IPv6). */
  readonly ttl: number;
  readonly source: string;
  readonly destination: string;
  readonly line: string;
}

export interface Capture {
  /** Stop tcpdump (it flushes on SIGINT) and return what it saw. */
  stop(): Promise<CapturedPacket[]>;
}

const V4 = /\bIP \(tos (0x[0-9a-f]+)[^,]*, ttl (\d+),.*?\)\s+([\d.]+)\.\d+ > ([\d.]+)\.\d+:/;
const V6 = /\bIP6 \((?:class (0x[0-9a-f]+), )?(?:flowlabel 0x[0-9a-f]+, )?hlim (\d+),.*?\)\s+([0-9a-f:]+)\.\d+ > ([0-9a-f:]+)\.\d+:/;

/** Parse tcpdump -v -n text: a packet's first line plus its indented continuation. */
export function parseTcpdump(text: string): CapturedPacket[] {
  const packets: string[] = [];
  for (const line of text.split('\n')) {
    if (/^\s/.test(line) && packets.length > 0) packets[packets.length - 1] += ` ${line.trim()}`;
    else if (line.trim() !== '') packets.push(line);
  }
  const out: CapturedPacket[] = [];
  for (const line of packets) {
    const v4 = V4.exec(line);
    if (v4) {
      out.push({ family: 4, dscp: Number(v4[1]) >> 2, ttl: Number(v4[2]), source: v4[3] ?? '', destination: v4[4] ?? '', line });
      continue;
    }
    const v6 = V6.exec(line);
    if (v6) out.push({ family: 6, dscp: Number(v6[1] ?? 0) >> 2, ttl: Number(v6[2]), source: v6[3] ?? '', destination: v6[4] ?? '', line });
  }
  return out;
}

/** tcpdump on `device` in `host`'s namespace, TCP and UDP only; resolves once it is capturing. */
export async function startCapture(lab: Lab, host: HostName, device = 'eth0', filter = 'tcp or udp'): Promise<Capture> {
  const proc = lab.spawn(host, ['tcpdump', '-i', device, '-n', '-v', '-l', '-U', filter]);
  let errors = '';
  let text = '';
  proc.child.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcpdump did not start in ${host}: ${errors}`)), 10_000);
    proc.child.stderr!.on('data', (chunk: Buffer) => {
      errors += chunk.toString();
      if (errors.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void proc.exited.then((code) => reject(new Error(`tcpdump exited with ${code} in ${host}`)));
  });
  return {
    async stop() {
      // Packets already on the wire need a moment to be printed.
      await new Promise((r) => setTimeout(r, 300));
      proc.child.kill('SIGINT');
      await proc.exited;
      return parseTcpdump(text);
    },
  };
}
