/**
 * Cross-check of the packet codec against an independent dissector, tshark.
 *
 * One pcapng file, written by our own writer (shared/pcapng.ts, LINKTYPE_RAW, nanosecond
 * timestamps, one comment per packet naming it), holds every Linux fixture and the crafted
 * segments below (well-formed ones covering all flags and option types, and malformed ones).
 * tshark reads it once (PDML output); for every packet we assert that tshark's fields equal our
 * decode: IP header fields and checksum status, ports, raw seq/ack, the 12 flag bits (reserved,
 * AE, CWR..FIN), window, urgent pointer, header length, TCP checksum and its status, and for each
 * option its position, kind and length and, for the kinds both know, its value (MSS, window
 * scale, SACK edges, timestamps, TFO cookie, experimental ExID, MPTCP subtype and fields).
 * IPv6 extension headers are included: with a Routing header under way (Segments Left > 0) the
 * TCP checksum covers the final destination (RFC 8200 8.1), for routing types 0, 2, 3 and 4.
 * Where our decoder reports a problem, tshark must flag the packet too (expert info or malformed),
 * and for each malformed segment the test names what tshark says. That tshark reads every packet
 * of the file (names, lengths, nanosecond timestamps) also shows our pcapng files open in Wireshark.
 *
 * Where tshark and we legitimately differ (each is asserted precisely where it happens, below):
 *  - TCP data offset < 5: tshark reports "Bogus TCP header length" and stops after the header length
 *    (no flags, window, checksum or options); we decode the 20 fixed bytes anyway and take the
 *    payload from byte 20, so that a mangled offset can be studied and re-encoded.
 *  - IPv4 IHL < 5: tshark reports "Bogus IP header length" and does not dissect TCP at all; we decode
 *    TCP from byte 20 (and report bad-header-length and bad-checksum).
 *  - IP total length (or IPv6 payload length) larger than the frame, frame not cut by snaplen:
 *    tshark reports the length error and then verifies the TCP checksum over the bytes present
 *    (Good here, since the segment is whole); we call the segment truncated and leave its checksum
 *    unjudged (checksums.tcp undefined). For a snaplen-cut frame both leave it unverified.
 *  - Non-zero bytes after EOL: tshark reports "Non-zero header padding" (an error); we report no
 *    issue, since everything after EOL is padding by definition, and keep the bytes in
 *    `optionsTail` (shared/diff.ts compares it) so that the round trip stays exact.
 *  - TFO with a 1-byte cookie: we report bad-option-length (RFC 7413: 4 to 16 bytes, even);
 *    tshark shows the cookie without complaint.
 *  - Padding after EOL: tshark lists every zero padding byte as another EOL option; we keep the
 *    first EOL as an option and the bytes after it as `optionsTail`. (The comparison models this.)
 *  - Options tshark knows and we do not (echo 6, user timeout 28, Riverbed 76): we compare kind,
 *    length and the raw bytes only.
 *  - An exception inside an option (MPTCP too short, DSS mapping past the option) ends tshark's
 *    option list there ([Malformed Packet]); ours goes on, so tshark's list is a prefix of ours.
 *  - tshark shows the DSS checksum only when it saw checksums negotiated in the MP_CAPABLE handshake.
 *  - 'fragment' and 'not-tcp' are not problems but reasons why neither side dissects TCP.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LINKTYPE_RAW, writePcapng } from '../../shared/pcapng.js';
import {
  decodePacket, encodePacket, eol, experimental, fastOpen, ipv6ToBytes, mptcpCapable, mptcpDss, mss, nop, OptionKind, rawOption,
  sack, sackPermitted, TcpFlag, timestamps, toHex, viewOption, windowScale, type DecodedPacket, type DecodeIssueCode, type EncodeOptions,
  type Ipv4Header, type Ipv6Header, type Packet, type TcpHeader, type TcpOption,
} from '../../shared/wire/index.js';
import { loadFixtures } from '../helpers/fixtures.js';
import { installed } from '../helpers/tools.js';

interface Entry {
  name: string;
  bytes: Uint8Array;
  /** Length on the wire when the capture was cut short (pcapng original length). */
  originalLength?: number;
  /** The issue codes our decoder must report, in order (empty for well-formed segments). */
  issues: DecodeIssueCode[];
  /** What tshark must say about the packet (expert info messages, or a [Malformed Packet] marker). */
  tshark?: RegExp[];
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s/g, ''), 'hex'));

function craftedSegments(): Entry[] {
  const out: Entry[] = [];
  let n = 0;
  // Every segment gets its own ports (its own TCP stream for tshark) and sequence number.
  const v4 = (tcp: Partial<TcpHeader>, more: { payload?: Uint8Array; ip?: Partial<Ipv4Header> } = {}): Packet => {
    n++;
    return {
      ip: { version: 4, tos: 0, id: 0x1000 + n, flags: 2, fragmentOffset: 0, ttl: 64, protocol: 6, src: '192.0.2.1', dst: '198.51.100.2', ...more.ip },
      tcp: { srcPort: 40000 + n, dstPort: 61000 + n, seq: 0x10000000 * (n % 15) + n, ack: 0, flags: TcpFlag.SYN, window: 64240, ...tcp },
      payload: more.payload ?? new Uint8Array(0),
    };
  };
  const v6 = (tcp: Partial<TcpHeader>, more: { payload?: Uint8Array; ip?: Partial<Ipv6Header> } = {}): Packet => {
    n++;
    return {
      ip: { version: 6, trafficClass: 0, flowLabel: n * 7919, hopLimit: 64, protocol: 6, src: '2001:db8::1', dst: '2001:db8:1::2', ...more.ip },
      tcp: { srcPort: 40000 + n, dstPort: 61000 + n, seq: 0x10000000 * (n % 15) + n, ack: 0, flags: TcpFlag.SYN, window: 64800, ...tcp },
      payload: more.payload ?? new Uint8Array(0),
    };
  };
  const add = (name: string, packet: Packet, expectations: { issues?: DecodeIssueCode[]; tshark?: RegExp[] } = {}, opts: EncodeOptions = {}): void => {
    out.push({ name, bytes: encodePacket(packet, opts), issues: expectations.issues ?? [], tshark: expectations.tshark });
  };
  const A = TcpFlag;
  const linuxSyn = (): TcpOption[] => [mss(1460), sackPermitted(), timestamps(1, 0), nop(), windowScale(7)];
  const optionLength = (issues: DecodeIssueCode[] = ['bad-option-length']) => (...tshark: RegExp[]) => ({ issues, tshark });

  // Flags, including AE and the reserved bits.
  add('v4-syn', v4({ options: linuxSyn() }));
  add('v4-synack', v4({ flags: A.SYN | A.ACK, ack: 0xdeadbeef, options: linuxSyn() }));
  add('v4-ack', v4({ flags: A.ACK, ack: 12345 }));
  add('v4-psh-ack-data', v4({ flags: A.PSH | A.ACK, ack: 1 }, { payload: text('hello, world\n') }));
  add('v4-fin-ack', v4({ flags: A.FIN | A.ACK, ack: 77 }));
  add('v4-rst', v4({ flags: A.RST, window: 0 }));
  add('v4-rst-ack', v4({ flags: A.RST | A.ACK, ack: 0xffffffff, window: 0 }));
  add('v4-urg', v4({ flags: A.URG | A.ACK | A.PSH, ack: 1, urgentPointer: 3 }, { payload: text('abc') }));
  add('v4-urgptr-without-urg', v4({ flags: A.ACK, ack: 1, urgentPointer: 0xbeef }));
  add('v4-syn-ece-cwr', v4({ flags: A.SYN | A.ECE | A.CWR, options: linuxSyn() }));
  add('v4-accecn-syn-ae', v4({ flags: A.SYN | A.ECE | A.CWR | A.AE, options: linuxSyn() }));
  add('v4-ae-ack', v4({ flags: A.AE | A.ACK, ack: 9 }, { ip: { tos: 0x01 } }));
  add('v4-all-flags-reserved-7', v4({ flags: 0x1ff, reserved: 7, ack: 5, urgentPointer: 1 }));
  add('v4-null-reserved-1', v4({ flags: 0, reserved: 1 }));
  add('v4-reserved-4-syn', v4({ flags: A.SYN, reserved: 4 }));
  add('v4-xmas', v4({ flags: A.FIN | A.PSH | A.URG, urgentPointer: 0 }));
  add('v4-syn-fin', v4({ flags: A.SYN | A.FIN }));
  add('v4-ce-dscp-ttl1', v4({ flags: A.ACK, ack: 1 }, { ip: { tos: 0xb8 | 3, ttl: 1, flags: 0 } }));

  // Every option type.
  add('v4-mss-only', v4({ options: [mss(536)] }));
  add('v4-mss-extremes', v4({ options: [mss(0), mss(65535)] }));
  add('v4-wscale-14', v4({ options: [nop(), windowScale(14)] }));
  add('v4-sackok-only', v4({ options: [sackPermitted()] }));
  add('v4-timestamps', v4({ flags: A.ACK, ack: 1, options: [nop(), nop(), timestamps(0xffffffff, 0x80000000)] }));
  add('v4-sack-1', v4({ flags: A.ACK, ack: 1000, options: [nop(), nop(), sack([[2000, 3000]])] }));
  add('v4-sack-2', v4({ flags: A.ACK, ack: 1000, options: [nop(), nop(), sack([[5000, 6000], [2000, 3000]])] }));
  add('v4-sack-3-ts', v4({ flags: A.ACK, ack: 1000, options: [nop(), nop(), timestamps(5, 6), nop(), nop(), sack([[1, 2], [3, 4], [0xfffffff0, 0x10]])] }));
  add('v4-sack-4', v4({ flags: A.ACK, ack: 1000, options: [nop(), nop(), sack([[10, 20], [30, 40], [50, 60], [70, 80]])] }));
  add('v4-tfo-request', v4({ options: [mss(1460), fastOpen()] }));
  add('v4-tfo-cookie-8-data', v4({ options: [mss(1460), fastOpen(hex('0011223344556677'))] }, { payload: text('GET / HTTP/1.0\r\n\r\n') }));
  add('v4-tfo-cookie-16', v4({ options: [fastOpen(hex('000102030405060708090a0b0c0d0e0f'))] }));
  add('v4-tfo-exp-254', v4({ options: [mss(1460), experimental(0xf989, hex('a1b2c3d4'))] }));
  add('v4-exp-253', v4({ flags: A.ACK, ack: 3, options: [experimental(0x1234, hex('0102'), 253), nop(), nop()] }));
  add('v4-exp-254-exid-only', v4({ flags: A.ACK, ack: 3, options: [experimental(0xabcd)] }));
  add('v4-unknown-kind-200', v4({ options: [rawOption(200, hex('010203'))] }));
  add('v4-unknown-kind-99-empty', v4({ options: [rawOption(99, new Uint8Array(0)), nop(), nop()] }));
  add('v4-unknown-to-us-6-28-76', v4({ options: [rawOption(6, hex('00000001')), rawOption(28, hex('8005')), rawOption(76, hex('ff'))] }));
  add('v4-mpc-syn-4', v4({ options: [mss(1460), mptcpCapable()] }));
  add('v4-mpc-synack-12', v4({ flags: A.SYN | A.ACK, ack: 1, options: [mptcpCapable({ senderKey: 0x0102030405060708n })] }));
  add('v4-mpc-ack-20', v4({ flags: A.ACK, ack: 1, options: [mptcpCapable({ senderKey: 0x1111111111111111n, receiverKey: 0xfedcba9876543210n })] }));
  add('v4-mpc-data-22', v4({ flags: A.ACK | A.PSH, ack: 1, options: [rawOption(30, hex('0181 1111111111111111 2222222222222222 0004'))] }, { payload: text('ping') }));
  add('v4-mpc-data-csum-24', v4({ flags: A.ACK | A.PSH, ack: 1, options: [rawOption(30, hex('01c1 1111111111111111 2222222222222222 0004 abcd'))] }, { payload: text('pong') }));
  add('v4-dss-ack4', v4({ flags: A.ACK, ack: 1, options: [mptcpDss({ dataAck: 0x01020304 })] }));
  add('v4-dss-ack4-map4', v4({ flags: A.ACK | A.PSH, ack: 1, options: [mptcpDss({ dataAck: 7, dataSequence: 100, subflowSequence: 1, dataLength: 5 })] }, { payload: text('hello') }));
  add('v4-dss-ack8-map8-csum-fin', v4({ flags: A.ACK | A.PSH, ack: 1, options: [rawOption(30, hex('201f 0000000100000002 0000000300000004 00000001 0003 beef'))] }, { payload: text('bye') }));
  add('v4-mp-join-syn', v4({ options: [rawOption(30, hex('1001 a1b2c3d4 01020304'))] }));
  add('v4-mp-prio', v4({ flags: A.ACK, ack: 1, options: [rawOption(30, hex('5001'))] }));
  add('v4-mp-fastclose', v4({ flags: A.ACK, ack: 1, options: [rawOption(30, hex('7000 0102030405060708'))] }));
  add('v4-eol-padding', v4({ options: [mss(1460), eol()] }));
  add('v4-ip-options', v4({ flags: A.ACK, ack: 1 }, { ip: { options: hex('94040000') } }));

  // IPv6.
  add('v6-syn', v6({ options: [mss(1440), sackPermitted(), timestamps(100, 0), nop(), windowScale(10)] }));
  add('v6-data-ect0', v6({ flags: A.PSH | A.ACK, ack: 42 }, { payload: text('over IPv6'), ip: { trafficClass: 0x02 } }));
  add('v6-accecn-ae-reserved', v6({ flags: A.SYN | A.ACK | A.AE, reserved: 2, ack: 1 }, { ip: { trafficClass: 0xff, flowLabel: 0xfffff } }));
  add('v6-sack-3', v6({ flags: A.ACK, ack: 10, options: [nop(), nop(), sack([[100, 200], [300, 400], [500, 600]])] }));
  add('v6-ts-dss', v6({ flags: A.ACK, ack: 10, options: [nop(), nop(), timestamps(1, 2), mptcpDss({ dataAck: 99, dataSequence: 1, subflowSequence: 1, dataLength: 0 })] }));
  add('v6-tfo-cookie-data', v6({ options: [mss(1440), fastOpen(hex('e8a8d78b79baab36'))] }, { payload: text('fast open data') }));
  add('v6-exp-unknown', v6({ options: [rawOption(254, hex('f98901')), rawOption(150, hex('aabbccdd'))] }));

  // IPv6 extension headers. With a Routing header still under way (Segments Left > 0) the TCP
  // checksum covers the final destination (RFC 8200 8.1), which our encoder computes and tshark checks.
  const final = toHex(ipv6ToBytes('2001:db8:ffff::99'));
  const via = toHex(ipv6ToBytes('2001:db8:aaaa::1'));
  const ext = (nextHeader: number, extensions: string) => ({ nextHeader, extensions: hex(extensions) });
  add('v6-hbh-dstopts', v6({ flags: A.ACK, ack: 1 }, { ip: ext(0, '3c00 0104 00000000' + '0600 0104 00000000') }));
  add('v6-srh-sl1', v6({ options: [mss(1440)] }, { ip: ext(43, `0604 0401 0100 0000 ${final} ${via}`) }));
  add('v6-srh-sl0', v6({ options: [mss(1440)] }, { ip: ext(43, `0604 0400 0100 0000 ${final} ${via}`) }));
  add('v6-rh0-sl2', v6({ options: [mss(1440)] }, { ip: ext(43, `0604 0002 0000 0000 ${via} ${final}`) }));
  add('v6-rh2-home-address', v6({ flags: A.ACK, ack: 1 }, { ip: ext(43, `0602 0201 0000 0000 ${final}`) }));
  // RPL (type 3): CmprI = CmprE = 8, so each address keeps 8 octets and the last one takes its prefix from the header's destination.
  add('v6-rpl-sl1', v6({ flags: A.ACK, ack: 1 }, { ip: ext(43, '0602 0301 8800 0000 0000000000000007 0000000000000099') }));
  add('v6-atomic-fragment', v6({ flags: A.ACK | A.PSH, ack: 1 }, { payload: text('whole'), ip: ext(44, '0600 0000 12345678') }));
  add('v6-first-fragment', v6({ flags: A.ACK | A.PSH, ack: 1 }, { payload: text('first of two'), ip: ext(44, '0600 0001 12345679') }), { issues: ['fragment'] });
  add('v4-first-fragment', v4({ flags: A.ACK | A.PSH, ack: 1 }, { payload: text('first of two'), ip: { flags: 1 } }), { issues: ['fragment'] });
  add('v4-udp', { ip: { ...v4({}).ip, protocol: 17 }, payload: hex('9c40 0035 0008 0000') }, { issues: ['not-tcp'] });

  // Malformed segments.
  add('bad-opt-len-0', v4({ options: [mss(1460), rawOption(200, hex('0909'), 0)] }), optionLength()(/\(0xc8\) \(with too-short option length = 0 bytes\)/));
  add('bad-opt-len-1', v4({ options: [mss(1460), rawOption(200, hex('0909'), 1)] }), optionLength()(/\(0xc8\) \(with too-short option length = 1 byte\)/));
  add('bad-opt-mss-len-0', v4({ options: [rawOption(2, hex('05b4'), 0)] }), optionLength()(/Maximum segment size \(with too-short option length = 0 bytes\)/));
  add('bad-opt-past-header', v4({ options: [nop(), rawOption(200, hex('0102'), 30)] }), optionLength()(/option length = 30 bytes says option goes past end of options/));
  add('bad-opt-mss-past-header', v4({ options: [nop(), nop()], optionsTail: hex('0204') }), optionLength()(/Maximum segment size \(option length = 4 bytes says option goes past end of options\)/));
  add('bad-opt-no-length-byte', v4({ options: [nop(), nop(), nop()], optionsTail: hex('08') }), optionLength()(/Timestamps \(length byte past end of options\)/));
  add('bad-opt-mss-len-3', v4({ options: [rawOption(2, hex('05'))] }), optionLength()(/option length should be 4/));
  add('bad-opt-wscale-len-4', v4({ options: [rawOption(3, hex('0707'))] }), optionLength()(/option length should be 3/));
  add('bad-opt-sackok-len-3', v4({ options: [rawOption(4, hex('00'))] }), optionLength()(/option length should be 2/));
  add('bad-opt-ts-len-8', v4({ options: [rawOption(8, hex('000000010000'))] }), optionLength()(/option length should be 10/));
  add('bad-opt-sack-len-12', v4({ flags: A.ACK, ack: 1, options: [rawOption(5, hex('0000000100000002ffff'))] }), optionLength()(/suboption would go past end of option/));
  // tshark accepts a 1-byte TFO cookie; RFC 7413 allows 4 to 16 bytes (even), so we report it.
  add('bad-opt-tfo-len-3', v4({ options: [rawOption(34, hex('aa'))] }), { issues: ['bad-option-length'] });
  add('bad-opt-mptcp-len-2', v4({ options: [rawOption(30, new Uint8Array(0))] }), optionLength()(/Malformed Packet/));
  add('bad-opt-exp-len-3', v4({ options: [rawOption(254, hex('f9'))] }), optionLength()(/option length 3 smaller than 4/));
  add('bad-dss-mapping-short', v4({ flags: A.ACK, ack: 1, options: [rawOption(30, hex('2004 00000001 0000'))] }), optionLength()(/Malformed Packet/));
  add('bad-v6-opt-len-1', v6({ options: [rawOption(2, hex(''), 1), nop()] }), optionLength()(/Maximum segment size \(with too-short option length = 1 byte\)/));
  add('bad-data-offset-2', v4({ dataOffset: 2, options: [] }, { payload: hex('01020304') }), { issues: ['bad-data-offset'], tshark: [/Bogus TCP header length \(8, must be at least 20\)/] });
  add('bad-data-offset-4', v4({ dataOffset: 4, options: [] }, { payload: hex('0101080a00000001') }), { issues: ['bad-data-offset'], tshark: [/Bogus TCP header length \(16, must be at least 20\)/] });
  add('bad-data-offset-past-segment', v4({ dataOffset: 15, options: [mss(1460)] }, { payload: hex('0101') }), {
    issues: ['bad-data-offset'], tshark: [/Short segment\. Segment\/fragment does not contain a full TCP header/, /Malformed Packet/],
  });
  add('bad-tcp-checksum', v4({ flags: A.ACK, ack: 1, checksum: 0xbeef }), { issues: ['bad-checksum'], tshark: [/^Bad checksum \[should be 0x[0-9a-f]{4}\]$/] });
  add('bad-ip-checksum', v4({ flags: A.ACK, ack: 1 }, { ip: { checksum: 0x1234 } }), { issues: ['bad-checksum'], tshark: [/^Bad checksum \[should be 0x[0-9a-f]{4}\]$/] });
  add('bad-both-checksums', v4({ flags: A.ACK, ack: 1, checksum: 0 }, { ip: { checksum: 0 } }), { issues: ['bad-checksum', 'bad-checksum'], tshark: [/^Bad checksum/] });
  add('bad-v6-tcp-checksum', v6({ flags: A.ACK, ack: 1, checksum: 0x0001 }, { payload: text('x') }), { issues: ['bad-checksum'], tshark: [/^Bad checksum/] });
  add('bad-ip-total-length-too-long', v4({ flags: A.ACK | A.PSH, ack: 1 }, { payload: text('truncated'), ip: { totalLength: 100 } }), {
    issues: ['truncated'], tshark: [/IPv4 total length exceeds packet length \(49 bytes\)/],
  });
  add('bad-v6-payload-length-too-long', v6({ flags: A.ACK, ack: 1, options: [nop(), nop(), timestamps(1, 1)] }, { ip: { payloadLength: 200 } }), {
    issues: ['truncated'], tshark: [/IPv6 payload length exceeds framing length \(32 bytes\)/],
  });
  add('bad-ip-total-length-short', v4({ flags: A.ACK, ack: 1 }, { payload: text('xyz'), ip: { totalLength: 30 } }), { issues: ['truncated'], tshark: [/Malformed Packet/] });
  add('bad-ip-ihl-4', v4({ flags: A.ACK, ack: 1 }, { ip: { ihl: 4 } }), { issues: ['bad-header-length', 'bad-checksum'], tshark: [/Bogus IP header length \(16, must be at least 20\)/] });
  // Our decoder reports no issue here (see the header comment); tshark calls it an error.
  add('bad-eol-then-garbage', v4({ options: [mss(1460), eol()], optionsTail: hex('deadbe') }), { tshark: [/Non-zero header padding/] });
  add('bad-eol-zero-then-garbage', v4({ options: [mss(1460), eol()], optionsTail: hex('00dead') }), { tshark: [/Non-zero header padding/] });

  // A capture cut short by the snap length: the frame says how long the packet was on the wire.
  const full = encodePacket(v4({ flags: A.ACK | A.PSH, ack: 1, options: [nop(), nop(), timestamps(7, 8)] }, { payload: text('cut short by snaplen') }));
  out.push({ name: 'truncated-capture', bytes: full.slice(0, 56), originalLength: full.length, issues: ['truncated'], tshark: [/Packet size limited during capture/] });
  return out;
}

// ---- PDML (tshark -T pdml) ----

interface PdmlNode {
  kind: 'packet' | 'proto' | 'field';
  name: string;
  show: string;
  showname: string;
  value: string;
  pos: number;
  size: number;
  children: PdmlNode[];
}

const XML_ENTITIES: Record<string, string> = { quot: '"', amp: '&', lt: '<', gt: '>', apos: "'" };
function unescapeXml(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|\w+);/g, (m, e: string) =>
    e.startsWith('#x') ? String.fromCodePoint(parseInt(e.slice(2), 16)) : e.startsWith('#') ? String.fromCodePoint(Number(e.slice(1))) : XML_ENTITIES[e] ?? m);
}

/** tshark's PDML is regular: one element per tag, attributes always double-quoted. Returns the packets in file order. */
function parsePdml(xml: string): PdmlNode[] {
  const packets: PdmlNode[] = [];
  const stack: PdmlNode[] = [];
  const tag = /<(\/?)(packet|proto|field)((?:\s+[\w.:-]+="[^"]*")*)\s*(\/?)>/g;
  for (let m = tag.exec(xml); m; m = tag.exec(xml)) {
    const [, closing, kind, attrText, selfClosing] = m;
    if (closing) {
      const done = stack.pop();
      if (!done || done.kind !== kind) throw new Error(`PDML: unbalanced </${kind}> at ${m.index}`);
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of attrText.matchAll(/([\w.:-]+)="([^"]*)"/g)) attrs[a[1]] = unescapeXml(a[2]);
    const node: PdmlNode = {
      kind: kind as PdmlNode['kind'], name: attrs.name ?? '', show: attrs.show ?? '', showname: attrs.showname ?? '',
      value: attrs.value ?? '', pos: Number(attrs.pos ?? 0), size: Number(attrs.size ?? 0), children: [],
    };
    if (kind === 'packet') {
      if (stack.length) throw new Error(`PDML: nested <packet> at ${m.index}`);
      packets.push(node);
    } else if (stack.length === 0) {
      throw new Error(`PDML: <${kind}> outside a packet at ${m.index}`);
    } else {
      stack[stack.length - 1].children.push(node);
    }
    if (!selfClosing) stack.push(node);
  }
  if (stack.length) throw new Error('PDML: unterminated element');
  return packets;
}

function* walk(node: PdmlNode): Generator<PdmlNode> {
  for (const c of node.children) {
    yield c;
    yield* walk(c);
  }
}
const all = (node: PdmlNode | undefined, name: string): PdmlNode[] => (node ? [...walk(node)].filter((n) => n.name === name) : []);
const first = (node: PdmlNode | undefined, name: string): PdmlNode | undefined => (node ? [...walk(node)].find((n) => n.name === name) : undefined);
/** A numeric field ("64", "0x1047", "0x0fff") as a number; undefined when tshark did not show it. */
const num = (node: PdmlNode | undefined, name: string): number | undefined => {
  const f = first(node, name);
  return f === undefined ? undefined : Number(f.show);
};
const big = (node: PdmlNode | undefined, name: string): bigint | undefined => {
  const f = first(node, name);
  return f === undefined ? undefined : BigInt(f.show);
};
/** The bytes a field covers, as lowercase hex. */
const raw = (node: PdmlNode | undefined, name: string): string | undefined => first(node, name)?.value.toLowerCase();

const SEVERITY: Record<string, string> = { '1048576': 'comment', '2097152': 'chat', '4194304': 'note', '6291456': 'warn', '8388608': 'error' };
interface Expert {
  severity: string;
  message: string;
}
function expertsOf(node: PdmlNode | undefined): Expert[] {
  return all(node, '_ws.expert').map((e) => ({
    severity: SEVERITY[first(e, '_ws.expert.severity')?.show ?? ''] ?? 'unknown',
    message: first(e, '_ws.expert.message')?.show ?? '',
  }));
}

// ---- Running tshark ----

const TSHARK = installed('tshark');
const BASE_TIME_NS = 1_700_000_000_000_000_000n;
const timeOf = (i: number): bigint => BASE_TIME_NS + BigInt(i) * 1_000_001n;

const fixtureEntries: Entry[] = loadFixtures().map((f) => ({ name: f.name, bytes: f.bytes, issues: [] }));
const craftedEntries = craftedSegments();
const entries = [...fixtureEntries, ...craftedEntries];

describe.skipIf(!TSHARK)('tshark agrees with our decoder', () => {
  let dir: string;
  let packets: PdmlNode[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mbprobe-wire-tshark-'));
    const file = join(dir, 'segments.pcapng');
    writeFileSync(file, writePcapng({
      application: 'mbprobe wire-tshark.test.ts',
      interfaces: [{ linkType: LINKTYPE_RAW, resolution: 'ns', name: 'crafted' }],
      packets: entries.map((e, i) => ({ interfaceId: 0, timestampNs: timeOf(i), data: e.bytes, originalLength: e.originalLength, comments: [e.name] })),
    }));
    // One tshark run for the whole file. Sequence analysis and reassembly off: each packet stands alone.
    const xml = execFileSync(TSHARK!, [
      '-r', file, '-n', '-T', 'pdml',
      '-o', 'tcp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE',
      '-o', 'tcp.relative_sequence_numbers:FALSE', '-o', 'tcp.analyze_sequence_numbers:FALSE', '-o', 'tcp.desegment_tcp_streams:FALSE',
    ], { maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    packets = parsePdml(xml);
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reads every packet of our pcapng: names, lengths and nanosecond timestamps intact', () => {
    expect(packets).toHaveLength(entries.length);
    entries.forEach((e, i) => {
      const p = packets[i];
      expect(first(p, 'frame.comment')?.show).toBe(e.name);
      expect(num(p, 'frame.cap_len')).toBe(e.bytes.length);
      expect(num(p, 'frame.len')).toBe(e.originalLength ?? e.bytes.length);
      expect(num(p, 'frame.encap_type')).toBe(7); // WTAP_ENCAP_RAW_IP
      const ns = timeOf(i);
      expect(first(p, 'frame.time_epoch')?.show).toBe(`${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`);
    });
  });

  it('covers at least 50 crafted segments: every flag, every option kind, IPv4 and IPv6, and the malformed cases', () => {
    expect(craftedEntries.length).toBeGreaterThanOrEqual(50);
    expect(new Set(entries.map((e) => e.name)).size).toBe(entries.length);
    const decoded = craftedEntries.map((e) => decodePacket(e.bytes));
    const flagsSeen = decoded.reduce((acc, d) => acc | (d.tcp?.flags ?? 0), 0);
    expect(flagsSeen).toBe(0x1ff);
    expect(decoded.reduce((acc, d) => acc | (d.tcp?.reserved ?? 0), 0)).toBe(7);
    const kinds = new Set(decoded.flatMap((d) => d.tcp?.options?.map((o) => o.kind) ?? []));
    for (const kind of [0, 1, 2, 3, 4, 5, 8, 30, 34, 253, 254, 200, 99]) expect(kinds.has(kind), `kind ${kind}`).toBe(true);
    const sackBlocks = new Set(decoded.flatMap((d) => d.tcp?.options?.filter((o) => o.kind === 5 && o.data.length % 8 === 0).map((o) => o.data.length / 8) ?? []));
    expect([...sackBlocks].sort()).toEqual([1, 2, 3, 4]);
    expect(decoded.some((d) => d.ip?.version === 6)).toBe(true);
    const codes = new Set(decoded.flatMap((d) => d.issues.map((i) => i.code)));
    for (const code of ['bad-option-length', 'bad-data-offset', 'bad-checksum', 'truncated', 'bad-header-length'] as const) expect(codes.has(code), code).toBe(true);
    expect(craftedEntries.filter((e) => e.issues.length > 0 || e.tshark).length).toBeGreaterThanOrEqual(25);
  });

  it.each(entries.map((e, i) => [e.name, i] as const))('%s', (_name, i) => {
    const entry = entries[i];
    const d = decodePacket(entry.bytes);
    // Our decoder: exactly the expected issues (none for the fixtures).
    expect(d.issues.map((x) => x.code)).toEqual(entry.issues);
    compareWithTshark(entry, d, packets[i]);
  });
});

function compareWithTshark(entry: Entry, d: DecodedPacket, packet: PdmlNode): void {
  const protos = packet.children;
  const ipNode = protos.find((p) => p.name === 'ip' || p.name === 'ipv6');
  const tcpNode = protos.find((p) => p.name === 'tcp');
  const experts = expertsOf(packet).filter((e) => e.severity !== 'comment'); // the packet comment is an expert "comment"
  const wsMarkers = protos.filter((p) => p.name.startsWith('_ws.')).map((p) => p.showname);
  const said = [...experts.map((e) => e.message), ...wsMarkers];
  const issues = new Set(d.issues.map((x) => x.code));

  // ---- Flagging: what tshark says about the packet ----
  if (entry.tshark) {
    for (const pattern of entry.tshark) expect(said.some((m) => pattern.test(m)), `tshark should say ${pattern}; it said ${JSON.stringify(said)}`).toBe(true);
  } else {
    // Nothing wrong for us, nothing wrong for tshark (warnings such as "4 NOP in a row" are fine).
    expect(protos.filter((p) => p.name === '_ws.malformed')).toEqual([]);
    expect(experts.filter((e) => e.severity === 'error')).toEqual([]);
  }
  // Wherever our decoder reports a problem, tshark flags the packet too; the one exception is documented at the top.
  // ('fragment' and 'not-tcp' are not problems: they say why there is no TCP header to decode.)
  const problems = d.issues.filter((x) => x.code !== 'fragment' && x.code !== 'not-tcp');
  if (problems.length > 0 && entry.name !== 'bad-opt-tfo-len-3') {
    expect(experts.some((e) => ['note', 'warn', 'error'].includes(e.severity)) || wsMarkers.length > 0).toBe(true);
  }
  if (entry.name === 'bad-opt-tfo-len-3') expect(experts.filter((e) => e.severity === 'error' || /length/.test(e.message))).toEqual([]);

  // ---- IP ----
  const ip = d.ip!;
  expect(ip).toBeDefined();
  expect(ipNode?.name).toBe(ip.version === 4 ? 'ip' : 'ipv6');
  if (ip.version === 4) {
    expect(num(ipNode, 'ip.version')).toBe(4);
    expect(num(ipNode, 'ip.hdr_len')).toBe(ip.ihl! * 4);
    if (ip.ihl! < 5) {
      // tshark stops at a bogus IHL; we go on (see the header comment).
      expect(first(ipNode, 'ip.len')).toBeUndefined();
      expect(issues.has('bad-header-length')).toBe(true);
    } else {
      expect(num(ipNode, 'ip.dsfield')).toBe(ip.tos);
      expect(num(ipNode, 'ip.len')).toBe(ip.totalLength);
      expect(num(ipNode, 'ip.id')).toBe(ip.id);
      expect(num(ipNode, 'ip.flags')).toBe(ip.flags);
      expect(num(ipNode, 'ip.frag_offset')).toBe(ip.fragmentOffset);
      expect(num(ipNode, 'ip.ttl')).toBe(ip.ttl);
      expect(num(ipNode, 'ip.proto')).toBe(ip.protocol);
      expect(num(ipNode, 'ip.checksum')).toBe(ip.checksum);
      expect(first(ipNode, 'ip.src')?.show).toBe(ip.src);
      expect(first(ipNode, 'ip.dst')?.show).toBe(ip.dst);
      expect(raw(ipNode, 'ip.dst')).toBe(toHex(entry.bytes.subarray(16, 20)));
      expect(num(ipNode, 'ip.checksum.status')).toBe(d.checksums.ip ? 1 : 0);
    }
  } else {
    expect(num(ipNode, 'ipv6.version')).toBe(6);
    expect(num(ipNode, 'ipv6.tclass')).toBe(ip.trafficClass);
    expect(num(ipNode, 'ipv6.flow')).toBe(ip.flowLabel);
    expect(num(ipNode, 'ipv6.plen')).toBe(ip.payloadLength);
    expect(num(ipNode, 'ipv6.nxt')).toBe(ip.nextHeader);
    expect(num(ipNode, 'ipv6.hlim')).toBe(ip.hopLimit);
    expect(raw(ipNode, 'ipv6.src')).toBe(toHex(ipv6ToBytes(ip.src)));
    expect(raw(ipNode, 'ipv6.dst')).toBe(toHex(ipv6ToBytes(ip.dst)));
    expect(d.checksums.ip).toBeUndefined();
  }

  // ---- TCP ----
  const tcp = d.tcp;
  if (issues.has('fragment') || issues.has('not-tcp')) {
    // A fragment that is not a whole packet, or another protocol: neither we nor tshark dissect TCP.
    expect(tcp).toBeUndefined();
    expect(tcpNode).toBeUndefined();
    if (issues.has('not-tcp')) expect(protos.map((p) => p.name)).toContain({ 17: 'udp' }[ip.protocol] ?? 'data');
    if (issues.has('fragment')) expect(first(ipNode, ip.version === 4 ? 'ip.flags.mf' : 'ipv6.fraghdr.more')?.show).toBe('1');
    return;
  }
  if (!tcp) {
    // Fewer than 20 TCP bytes: we keep them as raw payload; tshark throws on the short header.
    expect(d.issues.some((x) => x.layer === 'tcp' && x.code === 'truncated')).toBe(true);
    expect(protos.some((p) => p.name === '_ws.malformed') && first(tcpNode, 'tcp.hdr_len') === undefined).toBe(true);
    return;
  }
  if (!tcpNode) {
    // Only where tshark stopped at the IP header (IHL < 5).
    expect(ip.version === 4 && ip.ihl! < 5).toBe(true);
    return;
  }
  expect(num(tcpNode, 'tcp.srcport')).toBe(tcp.srcPort);
  expect(num(tcpNode, 'tcp.dstport')).toBe(tcp.dstPort);
  expect(num(tcpNode, 'tcp.seq_raw')).toBe(tcp.seq);
  expect(num(tcpNode, 'tcp.hdr_len')).toBe(tcp.dataOffset! * 4);
  if (tcp.dataOffset! < 5) {
    // tshark stops after the bogus header length; we decode the fixed header (see the header comment).
    expect(first(tcpNode, 'tcp.flags')).toBeUndefined();
    expect(issues.has('bad-data-offset')).toBe(true);
    return;
  }
  expect(num(tcpNode, 'tcp.ack_raw')).toBe(tcp.ack);
  // tshark's tcp.flags is 12 bits: reserved in 0xE00, AE in 0x100, CWR..FIN in 0x0FF; ours keeps the reserved bits apart.
  expect(num(tcpNode, 'tcp.flags')).toBe((tcp.reserved! << 9) | tcp.flags);
  expect(num(tcpNode, 'tcp.flags.res')).toBe(tcp.reserved ? 1 : 0);
  expect(num(tcpNode, 'tcp.flags.ae')).toBe(tcp.flags & TcpFlag.AE ? 1 : 0);
  expect(num(tcpNode, 'tcp.window_size_value')).toBe(tcp.window);
  expect(num(tcpNode, 'tcp.urgent_pointer')).toBe(tcp.urgentPointer);
  expect(num(tcpNode, 'tcp.checksum')).toBe(tcp.checksum);
  // Checksum status: 1 good, 0 bad, 2 unverified.
  const status = num(tcpNode, 'tcp.checksum.status');
  if (d.checksums.tcp === undefined && entry.originalLength === undefined) {
    // IP says more bytes than the frame has: we don't judge the checksum, tshark judges what is there.
    expect(issues.has('truncated')).toBe(true);
    expect(status).toBe(1);
  } else {
    expect(status).toBe(d.checksums.tcp === undefined ? 2 : d.checksums.tcp ? 1 : 0);
  }
  if (d.issues.length === 0) expect(num(tcpNode, 'tcp.len')).toBe(d.payload.length);

  // An exception inside an option ([Malformed Packet]) ends tshark's option list early.
  compareOptions(tcp, tcpNode, ipHeaderLengthOf(d), protos.some((p) => p.name === '_ws.malformed'));
}

function ipHeaderLengthOf(d: DecodedPacket): number {
  const ip = d.ip!;
  return ip.version === 4 ? 20 + ip.options!.length : 40 + ip.extensions!.length;
}

interface ExpectedOption {
  pos: number;
  kind?: number;
  length?: number;
  option?: TcpOption;
  /** tshark's message for an option it could not parse (a nameless field carrying expert info). */
  bad?: RegExp;
}

/**
 * What tshark shows for our decoded option list. tshark lists each option as a subtree (kind,
 * length, value fields); where it cannot step over an option (length < 2, running past the header,
 * no length byte) it shows a nameless field with expert info and stops; after an EOL it shows each
 * zero padding byte as another EOL, and a nameless "Non-zero header padding" field for the rest
 * from the first non-zero byte.
 */
function expectedTsharkOptions(tcp: TcpHeader, headerStart: number): ExpectedOption[] {
  const out: ExpectedOption[] = [];
  let at = headerStart + 20;
  let sawEol = false;
  for (const o of tcp.options ?? []) {
    if (o.kind <= 1) {
      out.push({ pos: at, kind: o.kind, option: o });
      at += 1;
      sawEol = o.kind === 0;
      continue;
    }
    const length = o.length!;
    const size = 2 + o.data.length;
    if (length < 2) out.push({ pos: at, bad: new RegExp(`with too-short option length = ${length} byte`) });
    else if (length !== size) out.push({ pos: at, bad: new RegExp(`option length = ${length} bytes says option goes past end of options`) });
    else out.push({ pos: at, kind: o.kind, length, option: o });
    at += size;
  }
  const tail = tcp.optionsTail ?? new Uint8Array(0);
  if (sawEol) {
    for (let i = 0; i < tail.length; i++) {
      if (tail[i] !== 0) {
        out.push({ pos: at + i, bad: /Non-zero header padding/ });
        break;
      }
      out.push({ pos: at + i, kind: 0 });
    }
  } else if (tail.length > 0) {
    // Our decoder leaves an option kind without its length byte in the tail.
    expect(tail.length).toBe(1);
    out.push({ pos: at, bad: /length byte past end of options/ });
  }
  return out;
}

const TSHARK_OPTION_NAMES: Record<number, string> = {
  0: 'tcp.options.eol', 1: 'tcp.options.nop', 2: 'tcp.options.mss', 3: 'tcp.options.wscale', 4: 'tcp.options.sack_perm', 5: 'tcp.options.sack',
  8: 'tcp.options.timestamp', 30: 'mptcp', 34: 'tcp.options.tfo', 253: 'tcp.options.experimental', 254: 'tcp.options.experimental',
};

function compareOptions(tcp: TcpHeader, tcpNode: PdmlNode, ipHeaderLength: number, cutShort: boolean): void {
  const optionsNode = tcpNode.children.find((c) => c.name === 'tcp.options');
  const shown = (optionsNode?.children ?? []).filter((c) => c.name !== '_ws.expert');
  let expected = expectedTsharkOptions(tcp, ipHeaderLength);
  if (cutShort) {
    expect(shown.length).toBeGreaterThan(0);
    expect(shown.length).toBeLessThanOrEqual(expected.length);
    expected = expected.slice(0, shown.length);
  }
  expect(shown.map((s) => s.pos), 'option positions').toEqual(expected.map((e) => e.pos));
  expected.forEach((e, i) => {
    const node = shown[i];
    if (e.bad) {
      expect(node.name).toBe('');
      expect(expertsOf(node).map((x) => x.message).some((m) => e.bad!.test(m)), `${e.bad} at ${e.pos}`).toBe(true);
      return;
    }
    expect(num(node, 'tcp.option_kind')).toBe(e.kind);
    if (e.kind! > 1) expect(num(node, 'tcp.option_len')).toBe(e.length);
    const knownName = TSHARK_OPTION_NAMES[e.kind!];
    if (knownName) expect(node.name).toBe(knownName);
    if (e.option) compareOptionValue(e.option, node);
  });
}

function compareOptionValue(option: TcpOption, node: PdmlNode): void {
  const view = viewOption(option);
  switch (view.type) {
    case 'mss':
      expect(num(node, 'tcp.options.mss_val')).toBe(view.mss);
      break;
    case 'window-scale':
      expect(num(node, 'tcp.options.wscale.shift')).toBe(view.shift);
      break;
    case 'sack': {
      const edges = (name: string): number[] => all(node, name).map((f) => parseInt(f.value, 16));
      expect(edges('tcp.options.sack_le')).toEqual(view.blocks.map(([l]) => l));
      expect(edges('tcp.options.sack_re')).toEqual(view.blocks.map(([, r]) => r));
      expect(num(node, 'tcp.options.sack.count')).toBe(view.blocks.length);
      break;
    }
    case 'timestamps':
      expect(num(node, 'tcp.options.timestamp.tsval')).toBe(view.value);
      expect(num(node, 'tcp.options.timestamp.tsecr')).toBe(view.echo);
      break;
    case 'tfo':
      if (view.cookie.length === 0) expect(first(node, 'tcp.options.tfo.request')).toBeDefined();
      else expect(raw(node, 'tcp.options.tfo.cookie')).toBe(toHex(view.cookie));
      break;
    case 'experimental':
      expect(num(node, 'tcp.options.experimental.exid')).toBe(view.exid);
      // tshark shows the data of the TFO experiment (ExID 0xF989) as a cookie.
      if (view.data.length > 0) expect(raw(node, view.exid === 0xf989 ? 'tcp.options.tfo.cookie' : 'tcp.options.experimental.data')).toBe(toHex(view.data));
      break;
    case 'mptcp': {
      expect(num(node, 'tcp.options.mptcp.subtype')).toBe(view.subtype);
      const c = view.mpCapable;
      if (c) {
        expect(num(node, 'tcp.options.mptcp.version')).toBe(c.version);
        expect(num(node, 'tcp.options.mptcp.flags')).toBe(c.flags);
        expect(big(node, 'tcp.options.mptcp.sendkey')).toBe(c.senderKey);
        expect(big(node, 'tcp.options.mptcp.recvkey')).toBe(c.receiverKey);
        expect(num(node, 'tcp.options.mptcp.datalvllen')).toBe(c.dataLength);
        expect(num(node, 'tcp.options.mptcp.checksum')).toBe(c.checksum);
      }
      const dss = view.dss;
      if (dss) {
        expect(num(node, 'tcp.options.mptcp.flags')).toBe(dss.flags);
        expect(big(node, 'tcp.options.mptcp.rawdataack')).toBe(dss.dataAck);
        expect(big(node, 'tcp.options.mptcp.rawdataseqno')).toBe(dss.dataSequence);
        expect(num(node, 'tcp.options.mptcp.subflowseqno')).toBe(dss.subflowSequence);
        expect(num(node, 'tcp.options.mptcp.datalvllen')).toBe(dss.dataLength);
        // tshark shows the DSS checksum only once the handshake negotiated checksums; when it does, it agrees.
        const checksum = num(node, 'tcp.options.mptcp.checksum');
        if (checksum !== undefined) expect(checksum).toBe(dss.checksum);
      }
      break;
    }
    case 'unknown':
      // A kind unknown to us; tshark may know it (echo, user timeout, ...): compare the raw bytes.
      if (node.name === 'tcp.options.unknown' && view.data.length > 0) expect(raw(node, 'tcp.options.unknown.payload')).toBe(toHex(view.data));
      expect(node.value.toLowerCase()).toBe(toHex(Uint8Array.of(option.kind, option.length ?? option.data.length + 2, ...option.data)));
      break;
    case 'malformed':
      // Known kind, illegal length: tshark shows kind and length (compared above) and a complaint (checked per packet).
      break;
    case 'eol':
    case 'nop':
    case 'sack-permitted':
      break;
  }
}

