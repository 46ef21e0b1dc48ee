/**
 * An ICMP or ICMPv6 error as a whole IP packet, and the packet it quotes: what a router sends back
 * when a probe's TTL runs out (time exceeded) or it cannot forward it (unreachable). The quote is
 * taken out as far as it goes: a quote may hold 28 bytes (RFC 792: the IP header and 8 bytes, the
 * TCP ports and sequence number), the whole packet, or anything in between; RFC 4884 zero padding
 * after the packet's own length is padding, never part of the packet.
 */
import { readU16, readU32 } from './bytes.js';
import type { EncodeOptions } from './encode-options.js';
import { formatExtensions } from './icmp-extensions.js';
import { decodeIcmp, describeIcmp, encodeIcmp, IcmpType, IPPROTO_ICMP, type DecodedIcmp, type IcmpMessage } from './icmp.js';
import { decodeIcmpv6, describeIcmpv6, encodeIcmpv6, Icmpv6Type, IPPROTO_ICMPV6 } from './icmpv6.js';
import { encodeIpv4, type Ipv4Header } from './ipv4.js';
import { encodeIpv6, type Ipv6Header } from './ipv6.js';
import { issue, type DecodeIssue } from './issues.js';
import { decodePacket, pseudoHeaderOf, type DecodedPacket, type IpHeader } from './packet.js';
import { formatPacket } from './format.js';
import type { TcpHeader } from './tcp.js';

/** What the error says happened to the quoted packet. */
export type IcmpErrorKind = 'time-exceeded' | 'unreachable' | 'packet-too-big' | 'parameter-problem' | 'other';

export interface DecodedQuote {
  /** The quoted bytes of the packet: the original datagram field up to the packet's own length. */
  bytes: Uint8Array;
  /** The packet's length as its quoted IP header gives it (undefined when the IP header itself is cut). */
  packetLength?: number;
  /** The quote holds the whole packet. */
  complete: boolean;
  /** The quoted packet decoded as far as its bytes go (the IP header; TCP when its 20 fixed bytes are there). */
  packet: DecodedPacket;
  /** Where the TCP header starts in `bytes`, when the IP header is whole and the packet is TCP. */
  tcpOffset?: number;
  /** The TCP fields a quote of fewer than 20 TCP bytes still holds (8 bytes: ports and sequence number). */
  tcpPrefix?: Partial<Pick<TcpHeader, 'srcPort' | 'dstPort' | 'seq' | 'ack'>>;
}

export interface DecodedIcmpError {
  /** The error's own IP header (the router's address is its source). */
  ip: IpHeader;
  icmp: DecodedIcmp;
  kind: IcmpErrorKind;
  quote: DecodedQuote;
  issues: DecodeIssue[];
}

/** Takes the quoted packet out of an error's original datagram field. Never throws. */
export function decodeQuote(datagram: Uint8Array): DecodedQuote {
  const version = datagram.length > 0 ? datagram[0] >>> 4 : 0;
  const headerWhole = (version === 4 && datagram.length >= 20) || (version === 6 && datagram.length >= 40);
  const packetLength = !headerWhole ? undefined : version === 4 ? readU16(datagram, 2) : 40 + readU16(datagram, 4);
  // A declared length below the header's own is garbage; then the field is read to its end.
  const end = packetLength !== undefined && packetLength >= (version === 4 ? 20 : 40) ? Math.min(datagram.length, packetLength) : datagram.length;
  const bytes = datagram.slice(0, end);
  const packet = decodePacket(bytes);
  const quote: DecodedQuote = { bytes, packet, complete: packetLength !== undefined && datagram.length >= packetLength };
  if (packetLength !== undefined) quote.packetLength = packetLength;
  if (packet.ip && packet.ip.protocol === 6) {
    const headerLength = packet.ip.version === 4 ? (packet.ip.ihl ?? 5) * 4 : 40 + (packet.ip.extensions?.length ?? 0);
    if (headerLength <= bytes.length) {
      quote.tcpOffset = headerLength;
      const tcp = bytes.subarray(headerLength);
      if (!packet.tcp && tcp.length > 0) {
        const prefix: DecodedQuote['tcpPrefix'] = {};
        if (tcp.length >= 2) prefix.srcPort = readU16(tcp, 0);
        if (tcp.length >= 4) prefix.dstPort = readU16(tcp, 2);
        if (tcp.length >= 8) prefix.seq = readU32(tcp, 4);
        if (tcp.length >= 12) prefix.ack = readU32(tcp, 8);
        quote.tcpPrefix = prefix;
      }
    }
  }
  return quote;
}

const V4_KINDS: Record<number, IcmpErrorKind> = {
  [IcmpType.TIME_EXCEEDED]: 'time-exceeded',
  [IcmpType.DESTINATION_UNREACHABLE]: 'unreachable',
  [IcmpType.PARAMETER_PROBLEM]: 'parameter-problem',
};
const V6_KINDS: Record<number, IcmpErrorKind> = {
  [Icmpv6Type.TIME_EXCEEDED]: 'time-exceeded',
  [Icmpv6Type.DESTINATION_UNREACHABLE]: 'unreachable',
  [Icmpv6Type.PACKET_TOO_BIG]: 'packet-too-big',
  [Icmpv6Type.PARAMETER_PROBLEM]: 'parameter-problem',
};

/**
 * Decodes an IP packet carrying an ICMP or ICMPv6 error: its header, the message, the quote.
 * Undefined when the packet is not one (another protocol, an echo, fewer bytes than an IP header).
 * Never throws.
 */
export function decodeIcmpError(bytes: Uint8Array): DecodedIcmpError | undefined {
  const outer = decodePacket(bytes);
  const ip = outer.ip;
  if (!ip) return undefined;
  const issues = outer.issues.filter((i) => i.code !== 'not-tcp');
  let icmp: DecodedIcmp;
  let kind: IcmpErrorKind;
  if (ip.version === 4 && ip.protocol === IPPROTO_ICMP) {
    icmp = decodeIcmp(outer.payload);
    if (icmp.datagram === undefined) return undefined;
    kind = V4_KINDS[icmp.message.type] ?? 'other';
  } else if (ip.version === 6 && ip.protocol === IPPROTO_ICMPV6) {
    icmp = decodeIcmpv6(outer.payload, pseudoHeaderOf(ip));
    if (icmp.datagram === undefined) return undefined;
    kind = V6_KINDS[icmp.message.type] ?? 'other';
  } else {
    return undefined;
  }
  if (issues.some((i) => i.code === 'truncated')) issues.push(issue('truncated', 'icmp', 0, 'the ICMP error itself was cut short; its quote may be shorter than the router sent it'));
  issues.push(...icmp.issues);
  return { ip, icmp, kind, quote: decodeQuote(icmp.datagram), issues };
}

/** An ICMP/ICMPv6 packet: the IP header (protocol 1 or 58 is set here) and the message; checksums and lengths computed where unset. */
export function encodeIcmpPacket(ip: Omit<Ipv4Header, 'protocol'> | Omit<Ipv6Header, 'protocol'>, message: IcmpMessage, opts: EncodeOptions = {}): Uint8Array {
  if (ip.version === 4) return encodeIpv4({ ...ip, protocol: IPPROTO_ICMP }, encodeIcmp(message, opts), opts);
  const header: Ipv6Header = { ...ip, protocol: IPPROTO_ICMPV6 };
  return encodeIpv6(header, encodeIcmpv6(message, pseudoHeaderOf(header), opts), opts);
}

/**
 * One line in the style of `tcpdump -nn`, the quote after a colon:
 * `IP 198.18.64.5 > 198.18.3.2: ICMP time exceeded in-transit, quoting 28 of 64 bytes: IP 198.18.3.2.40000 > ...`
 */
export function formatIcmpError(error: DecodedIcmpError): string {
  const family = error.ip.version === 4 ? 'IP' : 'IP6';
  const { type, code } = error.icmp.message;
  const what = error.ip.version === 4 ? `ICMP ${describeIcmp(type, code)}` : `ICMP6 ${describeIcmpv6(type, code)}`;
  const q = error.quote;
  const size = q.complete ? `${q.bytes.length} bytes` : `${q.bytes.length} of ${q.packetLength ?? '?'} bytes`;
  const extensions = error.icmp.message.extensions ? `, extensions [${formatExtensions(error.icmp.message.extensions)}]` : '';
  const inner = q.packet.tcp ? formatPacket(q.packet) : q.packet.ip && q.tcpPrefix
    ? `${q.packet.ip.version === 4 ? 'IP' : 'IP6'} ${q.packet.ip.src}.${q.tcpPrefix.srcPort ?? '?'} > ${q.packet.ip.dst}.${q.tcpPrefix.dstPort ?? '?'}: tcp${q.tcpPrefix.seq !== undefined ? `, seq ${q.tcpPrefix.seq}` : ''}`
    : formatPacket(q.packet);
  return `${family} ${error.ip.src} > ${error.ip.dst}: ${what}, quoting ${size}${extensions}: ${inner}`;
}
