/**
 * ICMPv6 (RFC 4443): as ICMP (shared/wire/icmp.ts), but the checksum covers a pseudo-header (an
 * argument, as for TCP), the errors quote as much of the packet as fits in 1280 bytes, and the
 * RFC 4884 length of destination unreachable and time exceeded is byte 4, in 64-bit words.
 */
import { checkField } from './bytes.js';
import { internetChecksum, pseudoHeaderBytes, type PseudoHeader } from './checksum.js';
import type { EncodeOptions } from './encode-options.js';
import { EncodeError } from './errors.js';
import { ICMP_HEADER_LENGTH, layOutBody, type DecodedIcmp, type IcmpMessage } from './icmp.js';
import { encodeExtensions, splitErrorBody } from './icmp-extensions.js';
import { issue, type DecodeIssue } from './issues.js';

export const IPPROTO_ICMPV6 = 58;

export const Icmpv6Type = {
  DESTINATION_UNREACHABLE: 1,
  PACKET_TOO_BIG: 2,
  TIME_EXCEEDED: 3,
  PARAMETER_PROBLEM: 4,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
} as const;

/** Error messages are types 0-127 (RFC 4443 2.1). */
export const isIcmpv6Error = (type: number): boolean => type < 128;
/** Errors whose byte 4 is the RFC 4884 length of the original datagram, in 64-bit words. */
const LENGTH_TYPES: ReadonlySet<number> = new Set([1, 3]);

/** An ICMPv6 message has ICMP's shape (icmp.ts); the types differ. */
export type Icmpv6Message = IcmpMessage;
export type DecodedIcmpv6 = DecodedIcmp;

/**
 * Decodes an ICMPv6 message (the payload after the IPv6 header and its extensions). The checksum is
 * judged when the pseudo-header (source, final destination, protocol 58) is given. Never throws.
 */
export function decodeIcmpv6(bytes: Uint8Array, pseudo?: PseudoHeader): DecodedIcmpv6 {
  const issues: DecodeIssue[] = [];
  if (bytes.length < ICMP_HEADER_LENGTH) {
    const header = new Uint8Array(ICMP_HEADER_LENGTH);
    header.set(bytes);
    issues.push(issue('truncated', 'icmp', 0, `ICMPv6 header needs 8 bytes, only ${bytes.length} present`));
    return {
      message: { type: header[0], code: header[1], checksum: (header[2] << 8) | header[3], rest: header.slice(4, 8), body: new Uint8Array(0) },
      checksumValid: false,
      issues,
    };
  }
  const type = bytes[0];
  const checksum = (bytes[2] << 8) | bytes[3];
  const checksumValid = pseudo !== undefined && icmpv6Checksum(pseudo, bytes) === 0;
  if (pseudo && !checksumValid) issues.push(issue('bad-checksum', 'icmp', 2, `ICMPv6 checksum 0x${checksum.toString(16).padStart(4, '0')} does not match the message`));
  const rest = bytes.slice(4, 8);
  const body = bytes.subarray(ICMP_HEADER_LENGTH);
  const message: DecodedIcmpv6['message'] = { type, code: bytes[1], checksum, rest, body: body.slice() };
  if (!isIcmpv6Error(type)) return { message, checksumValid, issues };
  const originalLength = LENGTH_TYPES.has(type) ? rest[0] * 8 : 0;
  const split = splitErrorBody(body, originalLength, ICMP_HEADER_LENGTH);
  issues.push(...split.issues.map((i) => (i.code === 'bad-original-length' ? { ...i, offset: 4 } : i)));
  message.body = split.datagram;
  const decoded: DecodedIcmpv6 = { message, checksumValid, datagram: split.datagram, originalLength, issues };
  if (split.extensions) {
    message.extensions = split.extensions.extensions;
    decoded.extensionsChecksumValid = split.extensions.checksumValid;
    decoded.legacyExtensions = split.legacyExtensions;
  }
  return decoded;
}

/**
 * Encodes an ICMPv6 message. The pseudo-header is needed only when the checksum is computed.
 * Never mutates its input.
 */
export function encodeIcmpv6(message: Icmpv6Message, pseudo: PseudoHeader | undefined, opts: EncodeOptions = {}): Uint8Array {
  const { body, rest } = layOutBody(message, 8);
  const extensions = message.extensions ? encodeExtensions(message.extensions, opts) : new Uint8Array(0);
  const out = new Uint8Array(ICMP_HEADER_LENGTH + body.length + extensions.length);
  out[0] = checkField('icmpv6', 'type', message.type, 8);
  out[1] = checkField('icmpv6', 'code', message.code, 8);
  out.set(rest, 4);
  out.set(body, ICMP_HEADER_LENGTH);
  out.set(extensions, ICMP_HEADER_LENGTH + body.length);
  let checksum: number;
  if (message.checksum === undefined || opts.computeChecksums) {
    if (!pseudo) throw new EncodeError('NO_PSEUDO_HEADER', 'computing the ICMPv6 checksum needs the IPv6 addresses: pass a pseudo-header or set checksum');
    checksum = icmpv6Checksum(pseudo, out);
  } else {
    checksum = checkField('icmpv6', 'checksum', message.checksum, 16);
  }
  out[2] = checksum >>> 8;
  out[3] = checksum & 0xff;
  return out;
}

/** The checksum over pseudo-header and message (0 when the message's own checksum is right). */
export function icmpv6Checksum(pseudo: PseudoHeader, message: Uint8Array): number {
  return internetChecksum(pseudoHeaderBytes({ ...pseudo, protocol: IPPROTO_ICMPV6 }, message.length), message);
}

const DESCRIPTIONS: Record<number, (code: number) => string> = {
  [Icmpv6Type.DESTINATION_UNREACHABLE]: (code) => `destination unreachable (code ${code})`,
  [Icmpv6Type.PACKET_TOO_BIG]: () => 'packet too big',
  [Icmpv6Type.TIME_EXCEEDED]: (code) => (code === 0 ? 'time exceeded in-transit' : code === 1 ? 'time exceeded in reassembly' : `time exceeded (code ${code})`),
  [Icmpv6Type.PARAMETER_PROBLEM]: (code) => `parameter problem (code ${code})`,
  [Icmpv6Type.ECHO_REQUEST]: () => 'echo request',
  [Icmpv6Type.ECHO_REPLY]: () => 'echo reply',
};

/** "time exceeded in-transit", "packet too big", ... */
export function describeIcmpv6(type: number, code: number): string {
  return DESCRIPTIONS[type]?.(code) ?? `type ${type} code ${code}`;
}
