/**
 * ICMP for IPv4 (RFC 792): the 8-byte header kept raw (type, code, checksum and bytes 4-7, which
 * carry the RFC 4884 length, a pointer or a next-hop MTU depending on the type) and the body. For
 * the error messages the body is the original datagram, the packet that caused the error as the
 * router quoted it: 28 bytes (RFC 792: IP header and 64 bits), more (RFC 1812; Linux fills the
 * message up to 576 bytes), or 128 bytes padded and followed by RFC 4884 extensions.
 */
import { checkField } from './bytes.js';
import { internetChecksum } from './checksum.js';
import type { EncodeOptions } from './encode-options.js';
import { EncodeError } from './errors.js';
import { encodeExtensions, padOriginalDatagram, splitErrorBody, type IcmpExtensions } from './icmp-extensions.js';
import { issue, type DecodeIssue } from './issues.js';

export const IPPROTO_ICMP = 1;
export const ICMP_HEADER_LENGTH = 8;

export const IcmpType = {
  ECHO_REPLY: 0,
  DESTINATION_UNREACHABLE: 3,
  SOURCE_QUENCH: 4,
  REDIRECT: 5,
  ECHO_REQUEST: 8,
  TIME_EXCEEDED: 11,
  PARAMETER_PROBLEM: 12,
} as const;

/** Time exceeded codes: the TTL ran out in transit (what traceroute and locate use), or fragment reassembly timed out. */
export const TimeExceededCode = { IN_TRANSIT: 0, REASSEMBLY: 1 } as const;

/** Messages that quote the datagram that caused them. */
const ERROR_TYPES: ReadonlySet<number> = new Set([3, 4, 5, 11, 12]);
/** Errors whose byte 5 is the RFC 4884 length of the original datagram, in 32-bit words. */
const LENGTH_TYPES: ReadonlySet<number> = new Set([3, 11, 12]);

export interface IcmpMessage {
  type: number;
  code: number;
  /** Unset = computed over the whole message. */
  checksum?: number;
  /** Bytes 4-7 as on the wire; unset = zeros, with the RFC 4884 length when `extensions` are given. */
  rest?: Uint8Array;
  /** What follows the header (before any extensions): for an error, its original datagram field as on the wire. */
  body: Uint8Array;
  /** RFC 4884 extension structure after the original datagram (destination unreachable, time exceeded, parameter problem). */
  extensions?: IcmpExtensions;
}

export interface DecodedIcmp {
  /** Every field set, so that encoding it reproduces the bytes. */
  message: IcmpMessage & { checksum: number; rest: Uint8Array };
  checksumValid: boolean;
  /** Errors only: the original datagram field (with any RFC 4884 zero padding). */
  datagram?: Uint8Array;
  /** The RFC 4884 length field, in bytes (0: not given). */
  originalLength?: number;
  /** Extensions found without a length field, at byte 128 (pre-RFC 4884 routers). */
  legacyExtensions?: boolean;
  extensionsChecksumValid?: boolean;
  issues: DecodeIssue[];
}

export const isIcmpError = (type: number): boolean => ERROR_TYPES.has(type);

/** Decodes an ICMP message (the IPv4 payload). Never throws: problems become issues. */
export function decodeIcmp(bytes: Uint8Array): DecodedIcmp {
  const issues: DecodeIssue[] = [];
  if (bytes.length < ICMP_HEADER_LENGTH) {
    const header = new Uint8Array(ICMP_HEADER_LENGTH);
    header.set(bytes);
    issues.push(issue('truncated', 'icmp', 0, `ICMP header needs 8 bytes, only ${bytes.length} present`));
    return {
      message: { type: header[0], code: header[1], checksum: (header[2] << 8) | header[3], rest: header.slice(4, 8), body: new Uint8Array(0) },
      checksumValid: false,
      issues,
    };
  }
  const type = bytes[0];
  const checksum = (bytes[2] << 8) | bytes[3];
  const checksumValid = internetChecksum(bytes) === 0;
  if (!checksumValid) issues.push(issue('bad-checksum', 'icmp', 2, `ICMP checksum 0x${checksum.toString(16).padStart(4, '0')} does not match the message`));
  const rest = bytes.slice(4, 8);
  const body = bytes.subarray(ICMP_HEADER_LENGTH);
  const message: DecodedIcmp['message'] = { type, code: bytes[1], checksum, rest, body: body.slice() };
  if (!ERROR_TYPES.has(type)) return { message, checksumValid, issues };
  const originalLength = LENGTH_TYPES.has(type) ? rest[1] * 4 : 0;
  const split = splitErrorBody(body, originalLength, ICMP_HEADER_LENGTH);
  issues.push(...split.issues);
  message.body = split.datagram;
  const decoded: DecodedIcmp = { message, checksumValid, datagram: split.datagram, originalLength, issues };
  if (split.extensions) {
    message.extensions = split.extensions.extensions;
    decoded.extensionsChecksumValid = split.extensions.checksumValid;
    decoded.legacyExtensions = split.legacyExtensions;
  }
  return decoded;
}

/** Encodes an ICMP message. Never mutates its input. */
export function encodeIcmp(message: IcmpMessage, opts: EncodeOptions = {}): Uint8Array {
  const { body, rest } = layOutBody(message, 4);
  const extensions = message.extensions ? encodeExtensions(message.extensions, opts) : new Uint8Array(0);
  const out = new Uint8Array(ICMP_HEADER_LENGTH + body.length + extensions.length);
  out[0] = checkField('icmp', 'type', message.type, 8);
  out[1] = checkField('icmp', 'code', message.code, 8);
  out.set(rest, 4);
  out.set(body, ICMP_HEADER_LENGTH);
  out.set(extensions, ICMP_HEADER_LENGTH + body.length);
  const checksum = message.checksum === undefined || opts.computeChecksums ? internetChecksum(out) : checkField('icmp', 'checksum', message.checksum, 16);
  out[2] = checksum >>> 8;
  out[3] = checksum & 0xff;
  return out;
}

/**
 * The body and bytes 4-7 to write: as given when `rest` is set; else zeros, and with extensions the
 * original datagram padded (RFC 4884: to the unit, 128 bytes at least) and its length written at
 * byte `lengthAt` (5 for ICMP, 4 for ICMPv6) in units of `unit` bytes. Shared with icmpv6.ts.
 */
export function layOutBody(message: Pick<IcmpMessage, 'rest' | 'body' | 'extensions'>, unit: 4 | 8): { body: Uint8Array; rest: Uint8Array } {
  if (message.rest !== undefined) {
    if (message.rest.length !== 4) throw new EncodeError('BAD_ICMP_HEADER', `ICMP bytes 4-7 are 4 bytes, got ${message.rest.length}`);
    return { body: message.body, rest: message.rest };
  }
  const rest = new Uint8Array(4);
  if (!message.extensions) return { body: message.body, rest };
  const body = padOriginalDatagram(message.body, unit);
  rest[unit === 4 ? 1 : 0] = checkField('icmp', 'original datagram length', body.length / unit, 8);
  return { body, rest };
}

const DESCRIPTIONS: Record<number, (code: number) => string> = {
  [IcmpType.ECHO_REPLY]: () => 'echo reply',
  [IcmpType.ECHO_REQUEST]: () => 'echo request',
  [IcmpType.DESTINATION_UNREACHABLE]: (code) => `unreachable (code ${code})`,
  [IcmpType.TIME_EXCEEDED]: (code) => (code === 0 ? 'time exceeded in-transit' : code === 1 ? 'time exceeded in reassembly' : `time exceeded (code ${code})`),
  [IcmpType.PARAMETER_PROBLEM]: (code) => `parameter problem (code ${code})`,
};

/** "time exceeded in-transit", "unreachable (code 13)", ... */
export function describeIcmp(type: number, code: number): string {
  return DESCRIPTIONS[type]?.(code) ?? `type ${type} code ${code}`;
}
