import { ipv6ToBytes, ipv6ToString } from './address.js';
import { checkField, readU16, writeU16 } from './bytes.js';
import type { EncodeOptions } from './encode-options.js';
import { EncodeError } from './errors.js';
import { issue, type DecodeIssue } from './issues.js';

/** Extension headers we walk to find the upper-layer protocol; their bytes are kept raw. */
const EXTENSION_HEADERS = new Set([0 /* hop-by-hop */, 43 /* routing */, 44 /* fragment */, 51 /* AH */, 60 /* destination */, 135, 139, 140]);

export interface Ipv6Header {
  version: 6;
  trafficClass: number;
  flowLabel: number;
  /** Unset = extensions + payload length. */
  payloadLength?: number;
  /** The fixed header's Next Header; unset = `protocol` (only possible without extension headers). */
  nextHeader?: number;
  hopLimit: number;
  src: string;
  dst: string;
  /** Extension headers, raw, in wire order. */
  extensions?: Uint8Array;
  /** The upper-layer protocol after the extension headers (6 for TCP). */
  protocol: number;
}

export interface DecodedIpv6 {
  header: Required<Ipv6Header>;
  payload: Uint8Array;
  trailer: Uint8Array;
  complete: boolean;
  /** True when a fragment header (other than an atomic fragment's) was crossed: the payload is not a whole upper-layer segment. */
  fragmented: boolean;
  issues: DecodeIssue[];
}

/** Caller guarantees at least 40 bytes and version nibble 6. */
export function decodeIpv6(bytes: Uint8Array): DecodedIpv6 {
  const issues: DecodeIssue[] = [];
  const payloadLength = readU16(bytes, 4);
  let end = 40 + payloadLength;
  let complete = true;
  if (end > bytes.length) {
    issues.push(issue('truncated', 'ip', 4, `IPv6 payload length ${payloadLength} but only ${bytes.length - 40} bytes captured after the header`));
    end = bytes.length;
    complete = false;
  }
  const nextHeader = bytes[6];
  let protocol = nextHeader;
  let at = 40;
  let fragmented = false;
  while (EXTENSION_HEADERS.has(protocol)) {
    if (at + 8 > end) {
      issues.push(issue('truncated', 'ip', at, `IPv6 extension header ${protocol} runs past the packet`));
      break;
    }
    const length = protocol === 44 ? 8 : protocol === 51 ? (bytes[at + 1] + 2) * 4 : (bytes[at + 1] + 1) * 8;
    // An atomic fragment (offset 0, M clear; RFC 6946) holds a whole packet and is processed as one.
    if (protocol === 44 && (readU16(bytes, at + 2) & 0xfff9) !== 0) fragmented = true;
    if (at + length > end) {
      issues.push(issue('truncated', 'ip', at, `IPv6 extension header ${protocol} (${length} bytes) runs past the packet`));
      break;
    }
    protocol = bytes[at];
    at += length;
  }
  const header: Required<Ipv6Header> = {
    version: 6,
    trafficClass: ((bytes[0] & 0x0f) << 4) | (bytes[1] >>> 4),
    flowLabel: ((bytes[1] & 0x0f) << 16) | readU16(bytes, 2),
    payloadLength,
    nextHeader,
    hopLimit: bytes[7],
    src: ipv6ToString(bytes, 8),
    dst: ipv6ToString(bytes, 24),
    extensions: bytes.slice(40, at),
    protocol,
  };
  return { header, payload: bytes.slice(at, end), trailer: bytes.slice(end), complete, fragmented, issues };
}

export function encodeIpv6(header: Ipv6Header, payload: Uint8Array, opts: EncodeOptions = {}): Uint8Array {
  const extensions = header.extensions ?? new Uint8Array(0);
  if (header.nextHeader === undefined && extensions.length > 0) {
    throw new EncodeError('NO_NEXT_HEADER', 'IPv6 with extension headers needs nextHeader set to the first extension header type');
  }
  const nextHeader = header.nextHeader ?? header.protocol;
  const payloadLength = header.payloadLength === undefined || opts.fixLengths ? extensions.length + payload.length : header.payloadLength;
  const out = new Uint8Array(40 + extensions.length + payload.length);
  const trafficClass = checkField('ipv6', 'trafficClass', header.trafficClass, 8);
  const flowLabel = checkField('ipv6', 'flowLabel', header.flowLabel, 20);
  out[0] = (checkField('ipv6', 'version', header.version, 4) << 4) | (trafficClass >>> 4);
  out[1] = ((trafficClass & 0x0f) << 4) | (flowLabel >>> 16);
  writeU16(out, 2, flowLabel & 0xffff);
  writeU16(out, 4, checkField('ipv6', 'payloadLength', payloadLength, 16));
  out[6] = checkField('ipv6', 'nextHeader', nextHeader, 8);
  out[7] = checkField('ipv6', 'hopLimit', header.hopLimit, 8);
  out.set(ipv6ToBytes(header.src), 8);
  out.set(ipv6ToBytes(header.dst), 24);
  out.set(extensions, 40);
  out.set(payload, 40 + extensions.length);
  return out;
}

/**
 * The destination the upper-layer checksum covers (RFC 8200 8.1): with a Routing header whose
 * Segments Left is not zero, the packet is still on its way and the final destination is the last
 * address of the route, not the Destination Address field. Understood routing types: 0 (RFC 5095,
 * deprecated), 2 (Mobile IPv6 home address, RFC 6275), 3 (RPL, RFC 6554, compressed addresses) and
 * 4 (SRv6, RFC 8754: segment list[0] is the last segment), as Wireshark does. Anything else, or
 * a routing header too short for its addresses, leaves the Destination Address field.
 */
export function finalDestination(header: Ipv6Header): string {
  const ext = header.extensions ?? new Uint8Array(0);
  let type = header.nextHeader ?? header.protocol;
  let at = 0;
  while (EXTENSION_HEADERS.has(type) && at + 8 <= ext.length) {
    const length = type === 44 ? 8 : type === 51 ? (ext[at + 1] + 2) * 4 : (ext[at + 1] + 1) * 8;
    if (at + length > ext.length) break;
    if (type === 43) {
      const segmentsLeft = ext[at + 3];
      if (segmentsLeft === 0) return header.dst;
      const route = ext.subarray(at, at + length);
      return routeFinalAddress(route, header.dst) ?? header.dst;
    }
    type = ext[at];
    at += length;
  }
  return header.dst;
}

function routeFinalAddress(route: Uint8Array, dst: string): string | undefined {
  const address = (offset: number): string | undefined => (offset >= 8 && offset + 16 <= route.length ? ipv6ToString(route, offset) : undefined);
  switch (route[2]) {
    case 0: {
      const count = Math.floor((route.length - 8) / 16);
      return count > 0 ? address(8 + (count - 1) * 16) : undefined;
    }
    case 2:
      return address(8);
    case 4:
      return address(8);
    case 3: {
      // Addresses 1..n-1 keep 16 - CmprI octets, address n keeps 16 - CmprE; the elided prefix octets come from dst.
      const cmprI = route[4] >>> 4;
      const cmprE = route[4] & 0x0f;
      const pad = route[5] >>> 4;
      const room = route.length - 8 - pad - (16 - cmprE);
      if (room < 0 || room % (16 - cmprI) !== 0) return undefined;
      const last = 8 + room;
      const full = ipv6ToBytes(dst);
      full.set(route.subarray(last, last + 16 - cmprE), cmprE);
      return ipv6ToString(full);
    }
    default:
      return undefined;
  }
}
