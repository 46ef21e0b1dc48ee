/**
 * RFC 4884 ICMP extensions: the structure a router may append after the original datagram of an
 * ICMP or ICMPv6 error (destination unreachable, time exceeded, parameter problem), e.g. RFC 4950's
 * MPLS label stack or RFC 5837's interface information. Kept raw as on the wire (a version, the
 * reserved bits, a checksum and objects of {length, class-num, c-type, data}); typed views are
 * derived (viewExtensionObject), never stored beside the bytes.
 *
 *    0                   1                   2                   3
 *   |Version|      (Reserved)           |           Checksum            |   extension header
 *   |             Length            |   Class-Num   |   C-Type      |   object header, then data
 */
import { checkField, readU16, readU32, writeU16 } from './bytes.js';
import { internetChecksum } from './checksum.js';
import type { EncodeOptions } from './encode-options.js';
import { issue, type DecodeIssue } from './issues.js';

export const EXTENSION_VERSION = 2;
export const EXTENSION_HEADER_LENGTH = 4;
/** RFC 4884: with extensions, the original datagram is zero padded to at least this many bytes. */
export const MIN_ORIGINAL_DATAGRAM = 128;

/** Class-Num values (IANA "ICMP Extension Object Classes"). */
export const ExtensionClass = { MPLS_LABEL_STACK: 1, INTERFACE_INFORMATION: 2, INTERFACE_IDENTIFICATION: 3, EXTENDED_INFORMATION: 4 } as const;

export interface IcmpExtensionObject {
  classNum: number;
  cType: number;
  /** The object's Length field (header included); unset = 4 + data.length. */
  length?: number;
  data: Uint8Array;
}

export interface IcmpExtensions {
  /** Unset = 2 (RFC 4884). */
  version?: number;
  /** The 12 reserved bits; unset = 0. */
  reserved?: number;
  /** Unset = computed over the whole structure. */
  checksum?: number;
  objects: IcmpExtensionObject[];
  /** Bytes after the last whole object that do not form one (a malformed structure), kept for the round trip. */
  tail?: Uint8Array;
}

export interface DecodedExtensions {
  extensions: Required<IcmpExtensions>;
  checksumValid: boolean;
  issues: DecodeIssue[];
}

/** One label stack entry (RFC 3032): label, traffic class (formerly EXP), bottom of stack, TTL. */
export interface MplsLabelEntry {
  label: number;
  trafficClass: number;
  bottomOfStack: boolean;
  ttl: number;
}

export type ExtensionObjectView =
  | { type: 'mpls-label-stack'; entries: MplsLabelEntry[] }
  | { type: 'interface-information'; role: number; flags: number; data: Uint8Array }
  | { type: 'unknown'; classNum: number; cType: number; data: Uint8Array }
  | { type: 'malformed'; classNum: number; cType: number; reason: string };

/**
 * Decodes an extension structure (the bytes after the padded original datagram). Never throws: an
 * object whose length is below 4 or runs past the structure ends the object list, and the bytes
 * from there are kept in `tail` with an issue. `base` is where the structure starts in the ICMP
 * message, for the issues' offsets.
 */
export function decodeExtensions(bytes: Uint8Array, base = 0): DecodedExtensions {
  const issues: DecodeIssue[] = [];
  if (bytes.length < EXTENSION_HEADER_LENGTH) {
    issues.push(issue('bad-extension', 'icmp', base, `ICMP extension structure needs a 4-byte header, only ${bytes.length} bytes present`));
    return { extensions: { version: 0, reserved: 0, checksum: 0, objects: [], tail: bytes.slice() }, checksumValid: false, issues };
  }
  const version = bytes[0] >>> 4;
  const reserved = ((bytes[0] & 0x0f) << 8) | bytes[1];
  const checksum = readU16(bytes, 2);
  if (version !== EXTENSION_VERSION) issues.push(issue('bad-extension', 'icmp', base, `ICMP extension version ${version}, RFC 4884 defines ${EXTENSION_VERSION}`));
  // RFC 4884 5: a checksum of 0 means "not computed".
  const checksumValid = checksum === 0 || internetChecksum(bytes) === 0;
  if (!checksumValid) issues.push(issue('bad-checksum', 'icmp', base + 2, `ICMP extension checksum 0x${checksum.toString(16).padStart(4, '0')} does not match the structure`));
  const objects: IcmpExtensionObject[] = [];
  let at = EXTENSION_HEADER_LENGTH;
  while (at < bytes.length) {
    if (at + 4 > bytes.length) {
      issues.push(issue('bad-extension', 'icmp', base + at, `${bytes.length - at} bytes after the last ICMP extension object are too few for an object header`));
      break;
    }
    const length = readU16(bytes, at);
    if (length < 4 || at + length > bytes.length) {
      issues.push(issue('bad-extension', 'icmp', base + at, `ICMP extension object length ${length} ${length < 4 ? 'is below its own 4-byte header' : `runs past the structure (${bytes.length - at} bytes left)`}`));
      break;
    }
    objects.push({ classNum: bytes[at + 2], cType: bytes[at + 3], length, data: bytes.slice(at + 4, at + length) });
    at += length;
  }
  return { extensions: { version, reserved, checksum, objects, tail: bytes.slice(at) }, checksumValid, issues };
}

/** Encodes an extension structure; unset version/length/checksum are computed. Never mutates its input. */
export function encodeExtensions(ext: IcmpExtensions, opts: EncodeOptions = {}): Uint8Array {
  const tail = ext.tail ?? new Uint8Array(0);
  const size = EXTENSION_HEADER_LENGTH + ext.objects.reduce((n, o) => n + 4 + o.data.length, 0) + tail.length;
  const out = new Uint8Array(size);
  out[0] = (checkField('icmp-extension', 'version', ext.version ?? EXTENSION_VERSION, 4) << 4) | (checkField('icmp-extension', 'reserved', ext.reserved ?? 0, 12) >>> 8);
  out[1] = (ext.reserved ?? 0) & 0xff;
  let at = EXTENSION_HEADER_LENGTH;
  for (const o of ext.objects) {
    const length = o.length === undefined || opts.fixLengths ? 4 + o.data.length : o.length;
    writeU16(out, at, checkField('icmp-extension', 'object length', length, 16));
    out[at + 2] = checkField('icmp-extension', 'class-num', o.classNum, 8);
    out[at + 3] = checkField('icmp-extension', 'c-type', o.cType, 8);
    out.set(o.data, at + 4);
    at += 4 + o.data.length;
  }
  out.set(tail, at);
  const checksum = ext.checksum === undefined || opts.computeChecksums ? internetChecksum(out) : checkField('icmp-extension', 'checksum', ext.checksum, 16);
  writeU16(out, 2, checksum);
  return out;
}

/** The typed view of an object: MPLS label stacks (RFC 4950) and interface information (RFC 5837) are read; others stay raw. */
export function viewExtensionObject(o: IcmpExtensionObject): ExtensionObjectView {
  if (o.classNum === ExtensionClass.MPLS_LABEL_STACK && o.cType === 1) {
    if (o.data.length % 4 !== 0) return { type: 'malformed', classNum: o.classNum, cType: o.cType, reason: `an MPLS label stack is whole 4-byte entries, got ${o.data.length} bytes` };
    const entries: MplsLabelEntry[] = [];
    for (let at = 0; at < o.data.length; at += 4) {
      const word = readU32(o.data, at);
      entries.push({ label: word >>> 12, trafficClass: (word >>> 9) & 0x07, bottomOfStack: ((word >>> 8) & 0x01) === 1, ttl: word & 0xff });
    }
    return { type: 'mpls-label-stack', entries };
  }
  if (o.classNum === ExtensionClass.INTERFACE_INFORMATION) {
    // RFC 5837: the C-Type byte holds the interface role (2 bits), reserved bits and the flags of what follows.
    return { type: 'interface-information', role: o.cType >>> 6, flags: o.cType & 0x0f, data: o.data };
  }
  return { type: 'unknown', classNum: o.classNum, cType: o.cType, data: o.data };
}

/** An MPLS label stack object (RFC 4950) with these entries; the last one gets the bottom-of-stack bit unless `bottomOfStack` says otherwise. */
export function mplsLabelStack(entries: ReadonlyArray<Partial<MplsLabelEntry> & { label: number }>): IcmpExtensionObject {
  const data = new Uint8Array(entries.length * 4);
  entries.forEach((e, i) => {
    const bottom = e.bottomOfStack ?? i === entries.length - 1;
    const word = ((checkField('mpls', 'label', e.label, 20) << 12) | (checkField('mpls', 'trafficClass', e.trafficClass ?? 0, 3) << 9) | ((bottom ? 1 : 0) << 8) | checkField('mpls', 'ttl', e.ttl ?? 1, 8)) >>> 0;
    data[i * 4] = word >>> 24;
    data[i * 4 + 1] = (word >>> 16) & 0xff;
    data[i * 4 + 2] = (word >>> 8) & 0xff;
    data[i * 4 + 3] = word & 0xff;
  });
  return { classNum: ExtensionClass.MPLS_LABEL_STACK, cType: 1, data };
}

/** tcpdump-like: "MPLS label 16001 exp 0 [S] ttl 1" per entry; other objects by class. */
export function formatExtensions(ext: IcmpExtensions): string {
  return ext.objects.map((o) => {
    const v = viewExtensionObject(o);
    switch (v.type) {
      case 'mpls-label-stack':
        return v.entries.map((e) => `MPLS label ${e.label} exp ${e.trafficClass}${e.bottomOfStack ? ' [S]' : ''} ttl ${e.ttl}`).join(', ');
      case 'interface-information':
        return `interface information (role ${v.role}, ${v.data.length} bytes)`;
      case 'malformed':
        return `class ${v.classNum} c-type ${v.cType}: ${v.reason}`;
      default:
        return `class ${v.classNum} c-type ${v.cType} (${v.data.length} bytes)`;
    }
  }).join('; ');
}

/** An error's body after its 8-byte header, split (RFC 4884) into the original datagram and the extension structure. */
export interface SplitErrorBody {
  /** The original datagram field, as on the wire (RFC 4884 zero padding included). */
  datagram: Uint8Array;
  extensions?: DecodedExtensions;
  /** Extensions found at byte 128 of a message whose length field is 0 (routers older than RFC 4884, RFC 4884 5). */
  legacyExtensions: boolean;
  issues: DecodeIssue[];
}

/**
 * Splits an error body: `lengthBytes` is the RFC 4884 length field times its unit (4 for ICMP, 8 for
 * ICMPv6), `base` the body's offset in the message (for issues). A length of 0 means no length was
 * given: then an extension structure is recognised at byte 128 only when it has version 2 and a
 * valid non-zero checksum (a quote's own bytes there are taken for data otherwise).
 */
export function splitErrorBody(body: Uint8Array, lengthBytes: number, base: number): SplitErrorBody {
  const issues: DecodeIssue[] = [];
  if (lengthBytes > 0) {
    if (lengthBytes > body.length) {
      issues.push(issue('bad-original-length', 'icmp', 5, `RFC 4884 length ${lengthBytes} bytes runs past the ${body.length}-byte original datagram field; taken as no length`));
      return { datagram: body.slice(), legacyExtensions: false, issues };
    }
    if (lengthBytes < MIN_ORIGINAL_DATAGRAM) issues.push(issue('bad-original-length', 'icmp', 5, `RFC 4884 length ${lengthBytes} bytes is below the ${MIN_ORIGINAL_DATAGRAM} an original datagram is padded to`));
    if (lengthBytes === body.length) return { datagram: body.slice(), legacyExtensions: false, issues };
    if (body.length - lengthBytes < EXTENSION_HEADER_LENGTH) {
      // Too few bytes for an extension header: kept in the datagram field, so the message re-encodes as it came.
      issues.push(issue('bad-extension', 'icmp', base + lengthBytes, `${body.length - lengthBytes} bytes after the original datagram are too few for an ICMP extension header`));
      return { datagram: body.slice(), legacyExtensions: false, issues };
    }
    const datagram = body.slice(0, lengthBytes);
    const extensions = decodeExtensions(body.subarray(lengthBytes), base + lengthBytes);
    issues.push(...extensions.issues);
    return { datagram, extensions, legacyExtensions: false, issues };
  }
  const at = MIN_ORIGINAL_DATAGRAM;
  if (body.length >= at + EXTENSION_HEADER_LENGTH && body[at] >>> 4 === EXTENSION_VERSION && readU16(body, at + 2) !== 0 && internetChecksum(body.subarray(at)) === 0) {
    const extensions = decodeExtensions(body.subarray(at), base + at);
    issues.push(...extensions.issues);
    return { datagram: body.slice(0, at), extensions, legacyExtensions: true, issues };
  }
  return { datagram: body.slice(), legacyExtensions: false, issues };
}

/** The original datagram padded as RFC 4884 asks when extensions follow: to `unit` bytes, and to at least 128. */
export function padOriginalDatagram(datagram: Uint8Array, unit: 4 | 8): Uint8Array {
  const size = Math.max(MIN_ORIGINAL_DATAGRAM, Math.ceil(datagram.length / unit) * unit);
  if (size === datagram.length) return datagram;
  const out = new Uint8Array(size);
  out.set(datagram);
  return out;
}
