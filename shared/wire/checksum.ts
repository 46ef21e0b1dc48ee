import { addressToBytes } from './address.js';

/** 16-bit one's-complement sum, folded; feed several buffers by passing the previous result as `initial`. */
export function onesComplementSum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  const evenEnd = bytes.length & ~1;
  for (let i = 0; i < evenEnd; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (bytes.length & 1) sum += bytes[bytes.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

export function internetChecksum(...chunks: Uint8Array[]): number {
  let sum = 0;
  for (const c of chunks) sum = onesComplementSum(c, sum);
  return ~sum & 0xffff;
}

/**
 * The pseudo-header is an explicit argument, never hidden state: the TCP checksum covers the IP
 * addresses, so a NAT that rewrites them must fix the checksum, and a test can check that it did.
 */
export interface PseudoHeader {
  src: string;
  dst: string;
  protocol: number;
}

export function pseudoHeaderBytes(pseudo: PseudoHeader, upperLength: number): Uint8Array {
  const src = addressToBytes(pseudo.src);
  const dst = addressToBytes(pseudo.dst);
  if (src.length === 4) {
    const b = new Uint8Array(12);
    b.set(src, 0);
    b.set(dst, 4);
    b[9] = pseudo.protocol;
    b[10] = (upperLength >>> 8) & 0xff;
    b[11] = upperLength & 0xff;
    return b;
  }
  const b = new Uint8Array(40);
  b.set(src, 0);
  b.set(dst, 16);
  b[32] = (upperLength >>> 24) & 0xff;
  b[33] = (upperLength >>> 16) & 0xff;
  b[34] = (upperLength >>> 8) & 0xff;
  b[35] = upperLength & 0xff;
  b[39] = pseudo.protocol;
  return b;
}

/** Checksum of a TCP/UDP segment whose own checksum field is zeroed or already filled (then 0 = valid). */
export function transportChecksum(pseudo: PseudoHeader, segment: Uint8Array): number {
  return internetChecksum(pseudoHeaderBytes(pseudo, segment.length), segment);
}
