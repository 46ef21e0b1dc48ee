/**
 * A router's quote against the packet as sent: the same diff as everywhere else (shared/diff.ts),
 * restricted to what the quote holds. A field the quote does not reach is "not visible at that hop",
 * never "removed": a 28-byte quote (RFC 792) shows the IP header, the ports and the sequence number
 * and nothing of the options; a quote cut inside the payload shows the headers and the payload's start.
 */
import { diffSegments, type DiffRow } from './diff.js';
import { decodePacket, type DecodedPacket } from './wire/packet.js';
import type { DecodedQuote } from './wire/icmp-packet.js';

/** How much of the packet a quote shows. */
export interface QuoteVisibility {
  /** Bytes of the packet the quote holds, and the packet's length (as the quote's IP header says, else as sent). */
  quoted: number;
  length: number;
  /** The IP header (with IPv6 extension headers) is whole. */
  ipHeader: boolean;
  /** TCP bytes the quote holds (0 when the IP header is cut). */
  tcpBytes: number;
  /** The TCP header with all its options is whole. */
  options: boolean;
  /** Payload bytes shown, of payloadLength. */
  payloadBytes: number;
  payloadLength: number;
}

export interface QuoteComparison {
  /** diffSegments(sent, quote) rows of the fields the quote shows. */
  rows: DiffRow[];
  visibility: QuoteVisibility;
  /** Fields of the sent packet the quote does not show: `tcp.ack`, `tcp.window`, ..., `option`, `payload`. */
  notVisible: string[];
}

/** Where each fixed TCP field lies in the header (byte offsets, end exclusive). */
const TCP_FIELDS: ReadonlyArray<[field: string, end: number]> = [
  ['srcPort', 2], ['dstPort', 4], ['seq', 8], ['ack', 12], ['dataOffset', 13], ['reserved', 13], ['flags', 14], ['window', 16], ['checksum', 18], ['urgentPointer', 20],
];

/**
 * Compares a quote with the packet as sent. When the quote is cut, the bytes it lacks are taken from
 * the sent packet if both have the same layout (header lengths and packet length), so the diff finds
 * only changes inside the quote; rows of fields beyond it are dropped and those fields listed as not
 * visible. A TCP checksum is judged only over a whole quote.
 */
export function compareQuote(sentSegment: Uint8Array, quote: DecodedQuote): QuoteComparison {
  const sent = decodePacket(sentSegment);
  const visibility = visibilityOf(quote, sent);
  if (quote.complete) return { rows: diffSegments(sent, quote.packet), visibility, notVisible: [] };
  const sameLayout = quote.packet.ip !== undefined && sent.ip !== undefined && quote.packetLength === sentSegment.length
    && headerLength(quote.bytes) === headerLength(sentSegment)
    && (quote.tcpOffset === undefined || quote.bytes.length < quote.tcpOffset + 13 || (quote.bytes[quote.tcpOffset + 12] >>> 4) === (sentSegment[quote.tcpOffset + 12] >>> 4));
  const whole = new Uint8Array(sameLayout ? sentSegment.length : Math.max(quote.packetLength ?? 0, quote.bytes.length));
  if (sameLayout) whole.set(sentSegment);
  whole.set(quote.bytes);
  const rows = diffSegments(sent, decodePacket(whole)).filter((row) => rowVisible(row, visibility, sameLayout));
  return { rows, visibility, notVisible: notVisibleFields(sent, visibility) };
}

/** Is `field` (`ip.dscp`, `tcp.ack`, `option.mss`, `option`, `payload`) shown by a quote of this visibility? */
export function fieldVisible(field: string, v: QuoteVisibility): boolean {
  const [layer, name] = [field.slice(0, field.indexOf('.') < 0 ? field.length : field.indexOf('.')), field.slice(field.indexOf('.') + 1)];
  if (layer === 'ip') return v.ipHeader;
  if (layer === 'option') return v.options;
  if (layer === 'payload') return v.payloadLength === 0 ? v.options : v.payloadBytes > 0;
  if (layer === 'tcp') {
    const base = name.replace(/\.relative$/, '');
    const spec = TCP_FIELDS.find(([f]) => f === base);
    if (!spec) return false;
    // Whether a checksum is right can only be told over the whole segment.
    return base === 'checksum' ? v.quoted >= v.length : v.tcpBytes >= spec[1];
  }
  return false;
}

function rowVisible(row: DiffRow, v: QuoteVisibility, sameLayout: boolean): boolean {
  if (row.layer === 'payload') return sameLayout && v.payloadBytes > 0;
  if (row.layer === 'option') return v.options;
  if (row.layer === 'tcp') return fieldVisible(`tcp.${row.field}`, v);
  // IP rows: a whole IP header; the total length compares what the quote's header says.
  return v.ipHeader;
}

function notVisibleFields(sent: DecodedPacket, v: QuoteVisibility): string[] {
  if (!sent.ip) return [];
  const out: string[] = [];
  if (!v.ipHeader) out.push('ip');
  if (sent.tcp) {
    for (const [field] of TCP_FIELDS) if (!fieldVisible(`tcp.${field}`, v) && !out.includes(`tcp.${field}`)) out.push(`tcp.${field}`);
    if ((sent.tcp.options?.length ?? 0) > 0 && !v.options) out.push('option');
    if (v.payloadLength > 0 && v.payloadBytes < v.payloadLength) out.push('payload');
  }
  return out;
}

function headerLength(bytes: Uint8Array): number {
  return bytes[0] >>> 4 === 4 ? (bytes[0] & 0x0f) * 4 : 40;
}

function visibilityOf(quote: DecodedQuote, sent: DecodedPacket): QuoteVisibility {
  const quoted = quote.bytes.length;
  const length = quote.packetLength ?? quoted;
  const ipEnd = quote.tcpOffset ?? (quote.packet.ip ? (quote.packet.ip.version === 4 ? (quote.packet.ip.ihl ?? 5) * 4 : 40 + (quote.packet.ip.extensions?.length ?? 0)) : Infinity);
  const ipHeader = quoted >= ipEnd;
  const tcpBytes = ipHeader ? Math.max(0, quoted - ipEnd) : 0;
  // The header length of the TCP header as quoted (byte 12), else as sent.
  const offsetByte = tcpBytes > 12 ? quote.bytes[ipEnd + 12] >>> 4 : (sent.tcp?.dataOffset ?? 5);
  const tcpHeader = Math.max(20, offsetByte * 4);
  const payloadLength = Math.max(0, length - ipEnd - tcpHeader);
  return {
    quoted,
    length,
    ipHeader,
    tcpBytes,
    options: tcpBytes >= tcpHeader,
    payloadBytes: Math.max(0, Math.min(payloadLength, tcpBytes - tcpHeader)),
    payloadLength,
  };
}
