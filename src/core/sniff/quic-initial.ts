/**
 * The server name in a QUIC v1 client Initial packet (RFC 9000 section 17.2.2, RFC 9001 section 5).
 *
 * Initial packets are encrypted, but with keys anyone can derive from the packet itself:
 *
 *   initial_secret = HKDF-Extract(salt = 38762cf7f55934b34d179ae6a4c80cadccbb7f0a, DCID)
 *   client_secret  = HKDF-Expand-Label(initial_secret, "client in", "", 32)
 *   key, iv, hp    = HKDF-Expand-Label(client_secret, "quic key" / "quic iv" / "quic hp", "", 16 / 12 / 16)
 *
 * Header protection is removed with AES-128-ECB(hp, 16-byte sample taken 4 bytes after the packet
 * number's offset), then the payload is opened with AES-128-GCM(key, iv XOR packet number, AAD =
 * the unprotected header). The payload's CRYPTO frames carry the TLS ClientHello as handshake
 * bytes, which the TLS sniffer reads.
 *
 * A datagram may hold several QUIC packets (coalesced, RFC 9000 section 12.2): the first must be a
 * client Initial; the CRYPTO frames of every Initial after it with the same DCID are read too,
 * other long-header packets are skipped by their length, and reading stops at a short-header
 * packet or at bytes that are no packet (padding). CRYPTO frames are put back in order by offset
 * (some clients scatter them, also within one packet), and the ClientHello is read from the
 * contiguous bytes starting at offset 0.
 *
 * A ClientHello can take more than one datagram (Chrome's with post-quantum key shares does):
 * QuicClientHelloAssembly gathers the CRYPTO pieces of a flow's first Initial datagrams, bounded
 * in datagrams and bytes (the caller bounds the time), until the name is in. sniffQuicServerName
 * reads one datagram alone. Anything malformed, any other version, a failed authentication: 'none'.
 */
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { SNIFF_MORE, SNIFF_NONE, type SniffResult } from './result.js';
import { MAX_CLIENT_HELLO, sniffClientHelloMessage } from './tls-client-hello.js';

const QUIC_V1 = 0x00000001;
const INITIAL_SALT_V1 = Buffer.from('38762cf7f55934b34d179ae6a4c80cadccbb7f0a', 'hex');
const MAX_CID = 20;
const SAMPLE = 16;
const TAG = 16;
const FRAME_PADDING = 0x00;
const FRAME_PING = 0x01;
const FRAME_ACK = 0x02;
const FRAME_ACK_ECN = 0x03;
const FRAME_CRYPTO = 0x06;
const FRAME_CONNECTION_CLOSE = 0x1c;
/** Long-header packet types (RFC 9000 section 17.2, bits 4-5 of the first byte). */
const TYPE_INITIAL = 0;
const TYPE_RETRY = 3;

export interface InitialKeys {
  readonly key: Buffer;
  readonly iv: Buffer;
  readonly hp: Buffer;
}

/** HKDF-Expand-Label (RFC 8446 section 7.1) with an empty context, for outputs up to one SHA-256 block. */
function expandLabel(secret: Buffer, label: string, length: number): Buffer {
  const full = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.concat([Buffer.of(length >> 8, length & 0xff, full.length), full, Buffer.of(0)]);
  return createHmac('sha256', secret).update(info).update(Buffer.of(1)).digest().subarray(0, length);
}

/** The client's Initial keys for a Destination Connection ID (RFC 9001 section 5.2). */
export function clientInitialKeys(dcid: Uint8Array): InitialKeys {
  const initial = createHmac('sha256', INITIAL_SALT_V1).update(dcid).digest();
  const client = expandLabel(initial, 'client in', 32);
  return { key: expandLabel(client, 'quic key', 16), iv: expandLabel(client, 'quic iv', 12), hp: expandLabel(client, 'quic hp', 16) };
}

/** A QUIC variable-length integer (RFC 9000 section 16) at `pos`, or undefined past the end. */
function varint(bytes: Uint8Array, pos: number): { value: number; next: number } | undefined {
  if (pos >= bytes.length) return undefined;
  const length = 1 << (bytes[pos]! >> 6);
  if (pos + length > bytes.length) return undefined;
  let value = bytes[pos]! & 0x3f;
  for (let i = 1; i < length; i++) value = value * 256 + bytes[pos + i]!;
  return { value, next: pos + length };
}

export interface CryptoPiece {
  readonly offset: number;
  readonly data: Uint8Array;
}

/**
 * The DCID and the CRYPTO frame contents of `datagram` if its first packet is a QUIC v1 client
 * Initial that authenticates (with those of the Initials coalesced after it); undefined otherwise.
 * Never throws.
 */
export function decryptClientInitial(datagram: Uint8Array): { readonly dcid: Uint8Array; readonly crypto: readonly CryptoPiece[] } | undefined {
  const first = longHeader(datagram, 0);
  if (first === undefined || first.type !== TYPE_INITIAL) return undefined;
  const crypto = openInitial(datagram, first);
  if (crypto === undefined) return undefined;
  const dcid = Uint8Array.from(first.dcid);
  const pieces = [...crypto];
  // Coalesced packets: a sender never mixes connection IDs in one datagram; what is not a packet ends it.
  for (let at = first.packetEnd; at < datagram.length; ) {
    const next = longHeader(datagram, at);
    if (next === undefined || !sameBytes(next.dcid, dcid)) break;
    if (next.type === TYPE_INITIAL) {
      const more = openInitial(datagram, next);
      if (more === undefined) break;
      pieces.push(...more);
    }
    at = next.packetEnd;
  }
  return { dcid, crypto: pieces };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

interface LongHeader {
  readonly start: number;
  readonly type: number;
  readonly dcid: Uint8Array;
  /** Where the (protected) packet number begins. */
  readonly pnOffset: number;
  readonly packetEnd: number;
}

/** The long header of a QUIC v1 packet (not Retry) starting at `start`, or undefined. */
function longHeader(datagram: Uint8Array, start: number): LongHeader | undefined {
  // Long header (1), fixed bit (1), then the type.
  if (datagram.length - start < 7 || (datagram[start]! & 0xc0) !== 0xc0) return undefined;
  const type = (datagram[start]! >> 4) & 0x03;
  if (type === TYPE_RETRY) return undefined;
  const version = ((datagram[start + 1]! << 24) | (datagram[start + 2]! << 16) | (datagram[start + 3]! << 8) | datagram[start + 4]!) >>> 0;
  if (version !== QUIC_V1) return undefined;
  let pos = start + 5;
  const dcidLength = datagram[pos++]!;
  if (dcidLength > MAX_CID || pos + dcidLength >= datagram.length) return undefined;
  const dcid = datagram.subarray(pos, pos + dcidLength);
  pos += dcidLength;
  const scidLength = datagram[pos++]!;
  if (scidLength > MAX_CID) return undefined;
  pos += scidLength;
  if (type === TYPE_INITIAL) {
    const token = varint(datagram, pos);
    if (token === undefined) return undefined;
    pos = token.next + token.value;
  }
  const length = varint(datagram, pos);
  if (length === undefined) return undefined;
  const pnOffset = length.next;
  const packetEnd = pnOffset + length.value;
  if (length.value < 4 + SAMPLE || packetEnd > datagram.length) return undefined;
  return { start, type, dcid, pnOffset, packetEnd };
}

/** The CRYPTO frames of one client Initial packet, or undefined if it does not open. */
function openInitial(datagram: Uint8Array, packet: LongHeader): CryptoPiece[] | undefined {
  const { start, pnOffset, packetEnd } = packet;
  try {
    const keys = clientInitialKeys(packet.dcid);
    const mask = createCipheriv('aes-128-ecb', keys.hp, null).setAutoPadding(false).update(datagram.subarray(pnOffset + 4, pnOffset + 4 + SAMPLE));
    const header = Buffer.from(datagram.subarray(start, pnOffset + 4));
    const pnAt = pnOffset - start;
    header[0] = header[0]! ^ (mask[0]! & 0x0f);
    if ((header[0] & 0x0c) !== 0) return undefined; // reserved bits must be zero once unprotected
    const pnLength = (header[0] & 0x03) + 1;
    let packetNumber = 0;
    for (let i = 0; i < pnLength; i++) {
      header[pnAt + i] = header[pnAt + i]! ^ mask[1 + i]!;
      packetNumber = packetNumber * 256 + header[pnAt + i]!;
    }
    const payloadStart = pnOffset + pnLength;
    if (packetEnd - payloadStart < TAG) return undefined;
    const nonce = Buffer.from(keys.iv);
    for (let i = 0; i < 4; i++) nonce[nonce.length - 1 - i] = nonce[nonce.length - 1 - i]! ^ ((packetNumber >>> (8 * i)) & 0xff);
    const decipher = createDecipheriv('aes-128-gcm', keys.key, nonce);
    decipher.setAAD(header.subarray(0, pnAt + pnLength));
    decipher.setAuthTag(datagram.subarray(packetEnd - TAG, packetEnd));
    const plain = Buffer.concat([decipher.update(datagram.subarray(payloadStart, packetEnd - TAG)), decipher.final()]);
    return cryptoFrames(plain);
  } catch {
    return undefined; // authentication failed: not an Initial (or not for this DCID)
  }
}

/** The CRYPTO frames of a decrypted Initial payload; undefined on a frame an Initial cannot carry. */
function cryptoFrames(plain: Uint8Array): CryptoPiece[] | undefined {
  const pieces: CryptoPiece[] = [];
  for (let pos = 0; pos < plain.length; ) {
    const type = plain[pos]!;
    if (type === FRAME_PADDING || type === FRAME_PING) {
      pos++;
      continue;
    }
    const fields = (count: number): number | undefined => {
      let at = pos + 1;
      for (let i = 0; i < count; i++) {
        const v = varint(plain, at);
        if (v === undefined) return undefined;
        at = v.next;
      }
      return at;
    };
    if (type === FRAME_CRYPTO) {
      const offset = varint(plain, pos + 1);
      const length = offset && varint(plain, offset.next);
      if (!offset || !length || length.next + length.value > plain.length) return undefined;
      if (offset.value + length.value <= MAX_CLIENT_HELLO + 4) pieces.push({ offset: offset.value, data: plain.subarray(length.next, length.next + length.value) });
      pos = length.next + length.value;
    } else if (type === FRAME_ACK || type === FRAME_ACK_ECN) {
      // Largest Acknowledged, ACK Delay, ACK Range Count, First ACK Range, 2 per range, [3 ECN counts].
      const afterTwo = fields(2);
      const count = afterTwo === undefined ? undefined : varint(plain, afterTwo);
      if (count === undefined || count.value > plain.length) return undefined;
      let at = fields(4);
      for (let i = 0; at !== undefined && i < 2 * count.value + (type === FRAME_ACK_ECN ? 3 : 0); i++) at = varint(plain, at)?.next;
      if (at === undefined) return undefined;
      pos = at;
    } else if (type === FRAME_CONNECTION_CLOSE) {
      // Error Code, Frame Type, Reason Phrase Length, Reason Phrase.
      const afterTwo = fields(2);
      const reason = afterTwo === undefined ? undefined : varint(plain, afterTwo);
      if (reason === undefined) return undefined;
      pos = reason.next + reason.value;
    } else {
      return undefined;
    }
  }
  return pieces;
}

/** The bytes from CRYPTO offset 0 on that the pieces cover without a gap. */
export function contiguousCrypto(pieces: readonly CryptoPiece[]): Uint8Array {
  const sorted = [...pieces].sort((a, b) => a.offset - b.offset);
  const out: Uint8Array[] = [];
  let end = 0;
  for (const { offset, data } of sorted) {
    if (offset > end) break;
    const fresh = data.subarray(end - offset);
    if (fresh.length > 0) {
      out.push(fresh);
      end += fresh.length;
    }
  }
  return Buffer.concat(out);
}

/** The server name in one datagram alone: 'none' when the ClientHello goes on in a later one. */
export function sniffQuicServerName(datagram: Uint8Array): SniffResult {
  return new QuicClientHelloAssembly({ maxDatagrams: 1 }).offer(datagram);
}

export interface QuicAssemblyLimits {
  /** Datagrams offered at most (the first included) before giving up: 'none'. */
  readonly maxDatagrams: number;
  /** CRYPTO bytes gathered at most (repeats included): past it, 'none'. */
  readonly maxCryptoBytes: number;
}

/** Chrome's ClientHello with a post-quantum key share takes 2 datagrams; 4 leaves room for larger ones. */
export const QUIC_ASSEMBLY_LIMITS: QuicAssemblyLimits = { maxDatagrams: 4, maxCryptoBytes: 2 * (MAX_CLIENT_HELLO + 4) };

/**
 * The ClientHello of one flow, gathered from the CRYPTO frames of its first client Initial
 * datagrams (all with the first one's DCID), in any order. offer() each datagram of the flow in
 * turn: 'name' once the name is in, 'more' while the ClientHello is incomplete and the bounds
 * allow another datagram, else 'none'. A first datagram that is no client Initial is 'none' at
 * once (nothing else is waited for); a later one that is no Initial of this flow (0-RTT, a
 * retransmission's other DCID) adds nothing but counts toward the bound. Pure, no clock: the
 * caller bounds the time.
 */
export class QuicClientHelloAssembly {
  private dcid: Uint8Array | undefined;
  private readonly pieces: CryptoPiece[] = [];
  private cryptoBytes = 0;
  private datagrams = 0;
  private readonly limits: QuicAssemblyLimits;

  constructor(limits: Partial<QuicAssemblyLimits> = {}) {
    this.limits = { ...QUIC_ASSEMBLY_LIMITS, ...limits };
  }

  offer(datagram: Uint8Array): SniffResult {
    this.datagrams++;
    const initial = decryptClientInitial(datagram);
    if (initial === undefined || (this.dcid !== undefined && !sameBytes(initial.dcid, this.dcid))) return this.dcid === undefined ? SNIFF_NONE : this.another();
    this.dcid ??= initial.dcid;
    for (const piece of initial.crypto) {
      this.cryptoBytes += piece.data.length;
      this.pieces.push(piece);
    }
    if (this.cryptoBytes > this.limits.maxCryptoBytes) return SNIFF_NONE;
    const result = sniffClientHelloMessage(contiguousCrypto(this.pieces), 'quic');
    return result.kind === 'more' ? this.another() : result;
  }

  private another(): SniffResult {
    return this.datagrams < this.limits.maxDatagrams ? SNIFF_MORE : SNIFF_NONE;
  }
}
