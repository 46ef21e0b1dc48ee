import { checkField, concatBytes, readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { transportChecksum, type PseudoHeader } from './checksum.js';
import type { EncodeOptions } from './encode-options.js';
import { EncodeError } from './errors.js';
import { issue, type DecodeIssue } from './issues.js';
import { decodeOptions, encodeOptions, type TcpOption } from './tcp-options.js';

export const IPPROTO_TCP = 6;

/** Flag bits: the low 8 bits are byte 13 of the header; AE (RFC 3540 NS, now AccECN) is bit 8. */
export const TcpFlag = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
  AE: 0x100,
} as const;

export interface TcpHeader {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** In 32-bit words; unset = computed from the options. */
  dataOffset?: number;
  /** The three reserved bits between data offset and AE (RFC 9293); unset = 0. */
  reserved?: number;
  /** 9 bits, see TcpFlag. */
  flags: number;
  window: number;
  /** Unset = computed over the pseudo-header, header and payload. */
  checksum?: number;
  urgentPointer?: number;
  options?: TcpOption[];
  /** Raw bytes after the option list inside the header (padding after EOL, unparseable bytes); unset = zero padding to 32 bits. */
  optionsTail?: Uint8Array;
}

export interface DecodedTcp {
  /** Every field set, so that encoding it reproduces the bytes. */
  header: Required<TcpHeader>;
  payload: Uint8Array;
  /** Set when a pseudo-header was given and the segment is complete. */
  checksumValid?: boolean;
  issues: DecodeIssue[];
}

export const TCP_MIN_HEADER = 20;

/** Decodes a TCP segment; returns undefined header only when fewer than 20 bytes are present. */
export function decodeTcp(bytes: Uint8Array, pseudo?: PseudoHeader, opts: { complete?: boolean } = {}): DecodedTcp | { header?: undefined; issues: DecodeIssue[] } {
  const issues: DecodeIssue[] = [];
  if (bytes.length < TCP_MIN_HEADER) {
    return { issues: [issue('truncated', 'tcp', 0, `TCP header needs 20 bytes, only ${bytes.length} present`)] };
  }
  const dataOffset = bytes[12] >>> 4;
  let headerEnd = dataOffset * 4;
  if (dataOffset < 5) {
    issues.push(issue('bad-data-offset', 'tcp', 12, `data offset ${dataOffset} is below the minimum of 5; payload taken from byte 20`));
    headerEnd = TCP_MIN_HEADER;
  } else if (headerEnd > bytes.length) {
    issues.push(issue('bad-data-offset', 'tcp', 12, `data offset ${dataOffset} (${headerEnd} bytes) runs past the ${bytes.length}-byte segment`));
    headerEnd = bytes.length;
  }
  const decodedOptions = decodeOptions(bytes.subarray(TCP_MIN_HEADER, headerEnd), TCP_MIN_HEADER);
  issues.push(...decodedOptions.issues);
  const header: Required<TcpHeader> = {
    srcPort: readU16(bytes, 0),
    dstPort: readU16(bytes, 2),
    seq: readU32(bytes, 4),
    ack: readU32(bytes, 8),
    dataOffset,
    reserved: (bytes[12] >>> 1) & 0x07,
    flags: ((bytes[12] & 0x01) << 8) | bytes[13],
    window: readU16(bytes, 14),
    checksum: readU16(bytes, 16),
    urgentPointer: readU16(bytes, 18),
    options: decodedOptions.options,
    optionsTail: decodedOptions.tail,
  };
  const result: DecodedTcp = { header, payload: bytes.slice(headerEnd), issues };
  // The checksum can only be judged over the whole segment (not over a snaplen-truncated capture).
  if (pseudo && opts.complete !== false) {
    result.checksumValid = transportChecksum(pseudo, bytes) === 0;
    if (!result.checksumValid) issues.push(issue('bad-checksum', 'tcp', 16, `TCP checksum 0x${header.checksum.toString(16).padStart(4, '0')} does not match the segment`));
  }
  return result;
}

/**
 * Encodes a TCP segment. The pseudo-header is needed only when the checksum is computed.
 * Never mutates `header` or `payload`.
 */
export function encodeTcp(header: TcpHeader, payload: Uint8Array, pseudo: PseudoHeader | undefined, opts: EncodeOptions = {}): Uint8Array {
  const optionBytes = encodeOptions(header.options ?? [], opts.fixLengths);
  let tail = header.optionsTail ?? new Uint8Array(0);
  const unpadded = optionBytes.length + tail.length;
  if (header.optionsTail === undefined || opts.fixLengths) {
    // Pad the option space to a multiple of 4 with zeros (EOL), as a sender must.
    const pad = (4 - (unpadded % 4)) % 4;
    if (pad) tail = concatBytes([tail, new Uint8Array(pad)]);
  }
  const headerLength = TCP_MIN_HEADER + optionBytes.length + tail.length;
  let dataOffset = header.dataOffset;
  if (dataOffset === undefined || opts.fixLengths) {
    if (headerLength > 60) {
      throw new EncodeError('OPTIONS_TOO_LONG', `TCP options take ${headerLength - 20} bytes; at most 40 fit. Remove options, or set dataOffset to write a malformed header on purpose.`);
    }
    dataOffset = headerLength / 4;
  }
  const out = new Uint8Array(headerLength + payload.length);
  writeU16(out, 0, checkField('tcp', 'srcPort', header.srcPort, 16));
  writeU16(out, 2, checkField('tcp', 'dstPort', header.dstPort, 16));
  writeU32(out, 4, checkField('tcp', 'seq', header.seq, 32));
  writeU32(out, 8, checkField('tcp', 'ack', header.ack, 32));
  const flags = checkField('tcp', 'flags', header.flags, 9);
  out[12] = (checkField('tcp', 'dataOffset', dataOffset, 4) << 4) | (checkField('tcp', 'reserved', header.reserved ?? 0, 3) << 1) | (flags >>> 8);
  out[13] = flags & 0xff;
  writeU16(out, 14, checkField('tcp', 'window', header.window, 16));
  writeU16(out, 18, checkField('tcp', 'urgentPointer', header.urgentPointer ?? 0, 16));
  out.set(optionBytes, TCP_MIN_HEADER);
  out.set(tail, TCP_MIN_HEADER + optionBytes.length);
  out.set(payload, headerLength);
  if (header.checksum === undefined || opts.computeChecksums) {
    if (!pseudo) throw new EncodeError('NO_PSEUDO_HEADER', 'computing the TCP checksum needs the IP addresses: pass a pseudo-header or set checksum');
    writeU16(out, 16, transportChecksum(pseudo, out));
  } else {
    writeU16(out, 16, checkField('tcp', 'checksum', header.checksum, 16));
  }
  return out;
}

const FLAG_LETTERS: Array<[number, string]> = [
  [TcpFlag.SYN, 'S'],
  [TcpFlag.FIN, 'F'],
  [TcpFlag.RST, 'R'],
  [TcpFlag.PSH, 'P'],
  [TcpFlag.URG, 'U'],
  [TcpFlag.ECE, 'E'],
  [TcpFlag.CWR, 'W'],
  [TcpFlag.AE, 'N'],
];

/** tcpdump's flag string: "S", "S.", "P.", "F.", "R", with "." for ACK. */
export function formatFlags(flags: number): string {
  let s = '';
  for (const [bit, letter] of FLAG_LETTERS) if (flags & bit) s += letter;
  if (flags & TcpFlag.ACK) s += '.';
  return s || 'none';
}

export function hasFlags(header: Pick<TcpHeader, 'flags'>, mask: number): boolean {
  return (header.flags & mask) === mask;
}
