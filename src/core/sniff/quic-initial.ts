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
 * Only the first packet of the datagram is read (a client's Initial always comes first). CRYPTO
 * frames are put back in order by offset (some clients scatter them), and the ClientHello is read
 * from the contiguous bytes starting at offset 0. A ClientHello that continues in a later
 * datagram (large ones, e.g. with post-quantum key shares, take two) gives 'none' when its name
 * is not in the first: `decryptClientInitial` gives the CRYPTO pieces for a caller that wants to
 * reassemble across datagrams. Anything malformed, any other version, a failed authentication: 'none'.
 */
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { SNIFF_NONE, type SniffResult } from './result.js';
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
 * The DCID and the CRYPTO frame contents of the first packet of `datagram` if it is a QUIC v1
 * client Initial that authenticates; undefined otherwise. Never throws.
 */
export function decryptClientInitial(datagram: Uint8Array): { readonly dcid: Uint8Array; readonly crypto: readonly CryptoPiece[] } | undefined {
  // Long header (1), fixed bit (1), type Initial (00): 0b1100xxxx.
  if (datagram.length < 7 || (datagram[0]! & 0xf0) !== 0xc0) return undefined;
  const version = ((datagram[1]! << 24) | (datagram[2]! << 16) | (datagram[3]! << 8) | datagram[4]!) >>> 0;
  if (version !== QUIC_V1) return undefined;
  let pos = 5;
  const dcidLength = datagram[pos++]!;
  if (dcidLength > MAX_CID || pos + dcidLength >= datagram.length) return undefined;
  const dcid = datagram.subarray(pos, pos + dcidLength);
  pos += dcidLength;
  const scidLength = datagram[pos++]!;
  if (scidLength > MAX_CID) return undefined;
  pos += scidLength;
  const token = varint(datagram, pos);
  if (token === undefined) return undefined;
  pos = token.next + token.value;
  const length = varint(datagram, pos);
  if (length === undefined) return undefined;
  const pnOffset = length.next;
  const packetEnd = pnOffset + length.value;
  if (length.value < 4 + SAMPLE || packetEnd > datagram.length) return undefined;

  try {
    const keys = clientInitialKeys(dcid);
    const mask = createCipheriv('aes-128-ecb', keys.hp, null).setAutoPadding(false).update(datagram.subarray(pnOffset + 4, pnOffset + 4 + SAMPLE));
    const header = Buffer.from(datagram.subarray(0, pnOffset + 4));
    header[0] = header[0]! ^ (mask[0]! & 0x0f);
    if ((header[0] & 0x0c) !== 0) return undefined; // reserved bits must be zero once unprotected
    const pnLength = (header[0] & 0x03) + 1;
    let packetNumber = 0;
    for (let i = 0; i < pnLength; i++) {
      header[pnOffset + i] = header[pnOffset + i]! ^ mask[1 + i]!;
      packetNumber = packetNumber * 256 + header[pnOffset + i]!;
    }
    const payloadStart = pnOffset + pnLength;
    if (packetEnd - payloadStart < TAG) return undefined;
    const nonce = Buffer.from(keys.iv);
    for (let i = 0; i < 4; i++) nonce[nonce.length - 1 - i] = nonce[nonce.length - 1 - i]! ^ ((packetNumber >>> (8 * i)) & 0xff);
    const decipher = createDecipheriv('aes-128-gcm', keys.key, nonce);
    decipher.setAAD(header.subarray(0, payloadStart));
    decipher.setAuthTag(datagram.subarray(packetEnd - TAG, packetEnd));
    const plain = Buffer.concat([decipher.update(datagram.subarray(payloadStart, packetEnd - TAG)), decipher.final()]);
    const crypto = cryptoFrames(plain);
    return crypto === undefined ? undefined : { dcid: Uint8Array.from(dcid), crypto };
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

export function sniffQuicServerName(datagram: Uint8Array): SniffResult {
  const initial = decryptClientInitial(datagram);
  if (initial === undefined) return SNIFF_NONE;
  const result = sniffClientHelloMessage(contiguousCrypto(initial.crypto), 'quic');
  return result.kind === 'name' ? result : SNIFF_NONE;
}
