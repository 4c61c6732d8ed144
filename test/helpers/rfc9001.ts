/**
 * RFC 9001 Appendix A.2: the client Initial packet of the specification's worked example
 * (DCID 8394c8f03e515708, packet number 2, a ClientHello for example.com padded to 1200 bytes).
 * Test vectors from the RFC text.
 */
import { createCipheriv } from 'node:crypto';
import { clientInitialKeys } from '../../src/core/sniff/quic-initial.js';

const hex = (lines: string): Buffer => Buffer.from(lines.replace(/\s+/g, ''), 'hex');

export const RFC9001_DCID = hex('8394c8f03e515708');

/** Expected client keys (A.1). */
export const RFC9001_CLIENT_KEYS = { key: '1f369613dd76d5467730efcbe3b1a22d', iv: 'fa044b2f42a3fd3b46fb255c', hp: '9f50449e04a0e810283a1e9933adedd2' };

/** The unprotected payload (A.2): one CRYPTO frame holding the ClientHello, then PADDING. */
export const RFC9001_CLIENT_CRYPTO_FRAME = hex(`
  060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868
  04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578
  616d706c652e636f6dff01000100000a00080006001d00170018001000070005
  04616c706e000500050100000000003300260024001d00209370b2c9caa47fba
  baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400
  0d0010000e0403050306030203080408050806002d00020101001c0002400100
  3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000
  75300901100f088394c8f03e51570806048000ffff`);

/** The protected packet (A.2), 1200 bytes. */
export const RFC9001_CLIENT_INITIAL = hex(`
  c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11
  d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399
  1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c
  8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212
  30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5
  457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208
  4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec
  4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3
  485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db
  059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c
  7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8
  9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556
  be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74
  68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a
  c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00
  f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632
  291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964
  25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd
  14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff
  ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198
  e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd
  c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73
  203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f
  cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e
  fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade
  a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047
  90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2
  162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4
  40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0
  6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e
  8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0
  be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400
  54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab
  760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9
  f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4
  056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064
  7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241
  e221af44860018ab0856972e194cd934`);

/**
 * A protected client Initial (the sender's side of RFC 9001 section 5), for packets the RFC does
 * not give: `payload` is the frames; padded with PADDING frames to `size` bytes (1200 by default).
 */
export function protectClientInitial(dcid: Uint8Array, payload: Uint8Array, options: { packetNumber?: number; size?: number; scid?: Uint8Array; token?: Uint8Array } = {}): Buffer {
  const { packetNumber = 0, size = 1200, scid = Buffer.alloc(0), token = Buffer.alloc(0) } = options;
  const keys = clientInitialKeys(dcid);
  const pnLength = 4;
  const varint2 = (n: number): Buffer => Buffer.of(0x40 | (n >> 8), n & 0xff);
  const fixed = (padded: number): Buffer =>
    Buffer.concat([Buffer.of(0xc0 | (pnLength - 1), 0, 0, 0, 1, dcid.length), dcid, Buffer.of(scid.length), scid, Buffer.of(token.length), token, varint2(padded + pnLength + 16)]);
  const headerLength = fixed(0).length + pnLength;
  const padded = Math.max(payload.length, size - headerLength - 16);
  const plain = Buffer.concat([payload, Buffer.alloc(padded - payload.length)]);
  const pn = Buffer.alloc(4);
  pn.writeUInt32BE(packetNumber);
  const header = Buffer.concat([fixed(padded), pn]);
  const nonce = Buffer.from(keys.iv);
  for (let i = 0; i < 4; i++) nonce[8 + i] = nonce[8 + i]! ^ pn[i]!;
  const cipher = createCipheriv('aes-128-gcm', keys.key, nonce);
  cipher.setAAD(header);
  const sealed = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  const pnOffset = header.length - pnLength;
  const mask = createCipheriv('aes-128-ecb', keys.hp, null).setAutoPadding(false).update(sealed.subarray(4 - pnLength, 4 - pnLength + 16));
  header[0] = header[0]! ^ (mask[0]! & 0x0f);
  for (let i = 0; i < pnLength; i++) header[pnOffset + i] = header[pnOffset + i]! ^ mask[1 + i]!;
  return Buffer.concat([header, sealed]);
}

/** A CRYPTO frame (type 6, offset and length as 4-byte varints). */
export function cryptoFrame(offset: number, data: Uint8Array): Buffer {
  const v4 = (n: number): Buffer => Buffer.of(0x80 | (n >>> 24), (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  return Buffer.concat([Buffer.of(0x06), v4(offset), v4(data.length), data]);
}
