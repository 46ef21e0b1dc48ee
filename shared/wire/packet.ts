import { concatBytes } from './bytes.js';
import type { PseudoHeader } from './checksum.js';
import type { EncodeOptions } from './encode-options.js';
import { decodeIpv4, encodeIpv4, Ipv4Flag, type Ipv4Header } from './ipv4.js';
import { decodeIpv6, encodeIpv6, finalDestination, type Ipv6Header } from './ipv6.js';
import { issue, type DecodeIssue } from './issues.js';
import { decodeTcp, encodeTcp, IPPROTO_TCP, type TcpHeader } from './tcp.js';

export type IpHeader = Ipv4Header | Ipv6Header;

/**
 * One IP packet as on the wire. `tcp` is absent when the packet is not TCP or its TCP header could
 * not be read; then `payload` holds the whole IP payload, so encoding still reproduces the bytes.
 */
export interface Packet {
  ip: IpHeader;
  tcp?: TcpHeader;
  payload: Uint8Array;
  /** Bytes after the IP packet (Ethernet padding of short frames). */
  trailer?: Uint8Array;
}

export interface DecodedPacket {
  /** Absent only when the bytes are not an IP packet at all (then `payload` is every byte). */
  ip?: IpHeader;
  tcp?: TcpHeader;
  payload: Uint8Array;
  trailer: Uint8Array;
  checksums: { ip?: boolean; tcp?: boolean };
  issues: DecodeIssue[];
}

/** Decodes an IP packet (IPv4 or IPv6, TCP inside). Never throws: problems become `issues`. */
export function decodePacket(bytes: Uint8Array): DecodedPacket {
  const version = bytes.length > 0 ? bytes[0] >>> 4 : -1;
  const minimum = version === 6 ? 40 : 20;
  if ((version !== 4 && version !== 6) || bytes.length < minimum) {
    const problem = version !== 4 && version !== 6
      ? issue('bad-version', 'ip', 0, bytes.length === 0 ? 'empty packet' : `IP version ${version} is neither 4 nor 6`)
      : issue('truncated', 'ip', 0, `IPv${version} header needs ${minimum} bytes, only ${bytes.length} present`);
    return { payload: bytes.slice(), trailer: new Uint8Array(0), checksums: {}, issues: [problem] };
  }
  let ip: IpHeader;
  let ipPayload: Uint8Array;
  let trailer: Uint8Array;
  let complete: boolean;
  let fragmented: boolean;
  const issues: DecodeIssue[] = [];
  const checksums: DecodedPacket['checksums'] = {};
  if (version === 4) {
    const d = decodeIpv4(bytes);
    ({ header: ip, payload: ipPayload, trailer, complete } = d);
    issues.push(...d.issues);
    checksums.ip = d.checksumValid;
    fragmented = (d.header.flags & Ipv4Flag.MF) !== 0 || d.header.fragmentOffset !== 0;
  } else {
    const d = decodeIpv6(bytes);
    ({ header: ip, payload: ipPayload, trailer, complete, fragmented } = d);
    issues.push(...d.issues);
  }
  const packet: DecodedPacket = { ip, payload: ipPayload, trailer, checksums, issues };
  if (ip.protocol !== IPPROTO_TCP) {
    issues.push(issue('not-tcp', 'ip', 9, `IP protocol ${ip.protocol} is not TCP; payload kept raw`));
    return packet;
  }
  if (fragmented) {
    // A fragment is not a whole segment: reading a TCP header out of it would invent fields.
    issues.push(issue('fragment', 'ip', 6, 'IP fragment: TCP is not decoded from fragments; payload kept raw'));
    return packet;
  }
  const tcp = decodeTcp(ipPayload, pseudoHeaderOf(ip), { complete });
  issues.push(...tcp.issues);
  if (tcp.header) {
    packet.tcp = tcp.header;
    packet.payload = tcp.payload;
    checksums.tcp = tcp.checksumValid;
  }
  return packet;
}

/** The TCP pseudo-header; for IPv6 its destination is the final one when a routing header is under way (RFC 8200 8.1). */
export function pseudoHeaderOf(ip: IpHeader): PseudoHeader {
  return { src: ip.src, dst: ip.version === 6 ? finalDestination(ip) : ip.dst, protocol: ip.protocol };
}

/** Encodes a packet; `encodePacket(decodePacket(b))` equals `b`. Never mutates its input. */
export function encodePacket(packet: Packet, opts: EncodeOptions = {}): Uint8Array {
  const ipPayload = packet.tcp ? encodeTcp(packet.tcp, packet.payload, pseudoHeaderOf(packet.ip), opts) : packet.payload;
  const ipBytes = packet.ip.version === 4 ? encodeIpv4(packet.ip, ipPayload, opts) : encodeIpv6(packet.ip, ipPayload, opts);
  return packet.trailer && packet.trailer.length > 0 ? concatBytes([ipBytes, packet.trailer]) : ipBytes;
}

/** A decoded packet as an encodable one, or undefined if the bytes were not IP. */
export function asPacket(decoded: DecodedPacket): Packet | undefined {
  if (!decoded.ip) return undefined;
  return { ip: decoded.ip, tcp: decoded.tcp, payload: decoded.payload, trailer: decoded.trailer };
}

/** DSCP and ECN, from the IPv4 TOS byte or the IPv6 traffic class. */
export function trafficClassOf(ip: IpHeader): number {
  return ip.version === 4 ? ip.tos : ip.trafficClass;
}
export const dscpOf = (ip: IpHeader): number => trafficClassOf(ip) >>> 2;
export const ecnOf = (ip: IpHeader): number => trafficClassOf(ip) & 0x03;
export const ttlOf = (ip: IpHeader): number => (ip.version === 4 ? ip.ttl : ip.hopLimit);
