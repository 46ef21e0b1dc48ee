import { ipv4ToBytes, ipv4ToString } from './address.js';
import { checkField, readU16, writeU16 } from './bytes.js';
import { internetChecksum } from './checksum.js';
import type { EncodeOptions } from './encode-options.js';
import { EncodeError } from './errors.js';
import { issue, type DecodeIssue } from './issues.js';

export const Ipv4Flag = { RESERVED: 0x4, DF: 0x2, MF: 0x1 } as const;

export interface Ipv4Header {
  version: 4;
  /** Header length in 32-bit words; unset = computed from the options. */
  ihl?: number;
  /** The whole TOS byte: DSCP (upper 6 bits) and ECN (lower 2). */
  tos: number;
  /** Unset = header + payload length. */
  totalLength?: number;
  id: number;
  /** 3 bits: reserved, DF, MF. */
  flags: number;
  fragmentOffset: number;
  ttl: number;
  protocol: number;
  /** Unset = computed. */
  checksum?: number;
  src: string;
  dst: string;
  /** IP options, kept raw (padding included). */
  options?: Uint8Array;
}

export interface DecodedIpv4 {
  header: Required<Ipv4Header>;
  /** The bytes the total length covers after the header (less if the capture was cut short). */
  payload: Uint8Array;
  /** Bytes past the total length: Ethernet padding of short frames, or garbage. */
  trailer: Uint8Array;
  /** False when the payload is shorter than the total length says (snaplen, truncation). */
  complete: boolean;
  checksumValid: boolean;
  issues: DecodeIssue[];
}

/** Caller guarantees at least 20 bytes and version nibble 4 (decodePacket checks both). */
export function decodeIpv4(bytes: Uint8Array): DecodedIpv4 {
  const issues: DecodeIssue[] = [];
  const ihl = bytes[0] & 0x0f;
  let headerEnd = ihl * 4;
  if (ihl < 5) {
    issues.push(issue('bad-header-length', 'ip', 0, `IPv4 header length ${ihl} words is below the minimum of 5; payload taken from byte 20`));
    headerEnd = 20;
  } else if (headerEnd > bytes.length) {
    issues.push(issue('truncated', 'ip', 0, `IPv4 header length ${headerEnd} runs past the ${bytes.length} captured bytes`));
    headerEnd = bytes.length;
  }
  const totalLength = readU16(bytes, 2);
  let end = totalLength;
  let complete = true;
  if (totalLength < headerEnd) {
    issues.push(issue('bad-total-length', 'ip', 2, `IPv4 total length ${totalLength} is shorter than its own header (${headerEnd}); payload taken to the end of the capture`));
    end = bytes.length;
  } else if (totalLength > bytes.length) {
    issues.push(issue('truncated', 'ip', 2, `IPv4 total length ${totalLength} but only ${bytes.length} bytes captured`));
    end = bytes.length;
    complete = false;
  }
  const header: Required<Ipv4Header> = {
    version: 4,
    ihl,
    tos: bytes[1],
    totalLength,
    id: readU16(bytes, 4),
    flags: bytes[6] >>> 5,
    fragmentOffset: readU16(bytes, 6) & 0x1fff,
    ttl: bytes[8],
    protocol: bytes[9],
    checksum: readU16(bytes, 10),
    src: ipv4ToString(bytes, 12),
    dst: ipv4ToString(bytes, 16),
    options: bytes.slice(20, headerEnd),
  };
  const checksumValid = ihl >= 5 && headerEnd === ihl * 4 && internetChecksum(bytes.subarray(0, headerEnd)) === 0;
  if (!checksumValid) issues.push(issue('bad-checksum', 'ip', 10, `IPv4 header checksum 0x${header.checksum.toString(16).padStart(4, '0')} does not match the header`));
  return { header, payload: bytes.slice(headerEnd, end), trailer: bytes.slice(end), complete, checksumValid, issues };
}

/** Encodes the header followed by `payload`. Never mutates its arguments. */
export function encodeIpv4(header: Ipv4Header, payload: Uint8Array, opts: EncodeOptions = {}): Uint8Array {
  const options = header.options ?? new Uint8Array(0);
  if (options.length % 4 !== 0 && (header.ihl === undefined || opts.fixLengths)) {
    throw new EncodeError('BAD_IP_OPTIONS', `IPv4 options are ${options.length} bytes; pad them to a multiple of 4, or set ihl to write a malformed header on purpose`);
  }
  const headerLength = 20 + options.length;
  const ihl = header.ihl === undefined || opts.fixLengths ? headerLength / 4 : header.ihl;
  if (ihl > 15) throw new EncodeError('BAD_IP_OPTIONS', `IPv4 options are ${options.length} bytes; at most 40 fit`);
  const totalLength = header.totalLength === undefined || opts.fixLengths ? headerLength + payload.length : header.totalLength;
  const out = new Uint8Array(headerLength + payload.length);
  out[0] = (checkField('ipv4', 'version', header.version, 4) << 4) | checkField('ipv4', 'ihl', ihl, 4);
  out[1] = checkField('ipv4', 'tos', header.tos, 8);
  writeU16(out, 2, checkField('ipv4', 'totalLength', totalLength, 16));
  writeU16(out, 4, checkField('ipv4', 'id', header.id, 16));
  writeU16(out, 6, (checkField('ipv4', 'flags', header.flags, 3) << 13) | checkField('ipv4', 'fragmentOffset', header.fragmentOffset, 13));
  out[8] = checkField('ipv4', 'ttl', header.ttl, 8);
  out[9] = checkField('ipv4', 'protocol', header.protocol, 8);
  out.set(ipv4ToBytes(header.src), 12);
  out.set(ipv4ToBytes(header.dst), 16);
  out.set(options, 20);
  const checksum = header.checksum === undefined || opts.computeChecksums ? internetChecksum(out.subarray(0, headerLength)) : checkField('ipv4', 'checksum', header.checksum, 16);
  writeU16(out, 10, checksum);
  out.set(payload, headerLength);
  return out;
}
