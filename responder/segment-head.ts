import { ipv4ToString, ipv6ToString } from '../shared/wire/address.js';
import type { SegmentHead } from './registry.js';

const TCP = 6;

/**
 * What attribution needs of a segment (source address, ports, sequence number, flags), read
 * straight from the bytes of a plain IPv4 or IPv6 packet carrying a whole TCP header, as
 * decodePacket would give them. Anything else (IPv6 extension headers, fragments, a header cut
 * short, lengths that disagree) gives undefined: the caller decodes such a packet in full.
 */
export function headOf(b: Uint8Array): SegmentHead | undefined {
  const version = b.length > 0 ? b[0] >>> 4 : 0;
  let at: number;
  let src: string;
  if (version === 4) {
    const headerLength = (b[0] & 0x0f) * 4;
    const totalLength = (b[2] << 8) | b[3];
    const fragmented = (b[6] & 0x3f) !== 0 || b[7] !== 0; // more-fragments flag or an offset
    if (b.length < 20 || headerLength < 20 || b[9] !== TCP || fragmented || totalLength < headerLength + 20 || totalLength > b.length) return undefined;
    at = headerLength;
    src = ipv4ToString(b, 12);
  } else if (version === 6) {
    const payloadLength = (b[4] << 8) | b[5];
    if (b.length < 60 || b[6] !== TCP || payloadLength < 20 || 40 + payloadLength > b.length) return undefined;
    at = 40;
    src = ipv6ToString(b, 8);
  } else {
    return undefined;
  }
  return {
    src,
    srcPort: (b[at] << 8) | b[at + 1],
    dstPort: (b[at + 2] << 8) | b[at + 3],
    seq: ((b[at + 4] << 24) | (b[at + 5] << 16) | (b[at + 6] << 8) | b[at + 7]) >>> 0,
    flags: b[at + 13],
  };
}

/** The source network a segment came from, for counting: its IPv4 /24 or IPv6 /48 ("?" when not IP). */
export function sourcePrefixOf(b: Uint8Array): string {
  const version = b.length > 0 ? b[0] >>> 4 : 0;
  if (version === 4 && b.length >= 20) return `${b[12]}.${b[13]}.${b[14]}.0/24`;
  if (version === 6 && b.length >= 40) {
    const group = (i: number): string => ((b[8 + 2 * i] << 8) | b[9 + 2 * i]).toString(16);
    return `${group(0)}:${group(1)}:${group(2)}::/48`;
  }
  return '?';
}
