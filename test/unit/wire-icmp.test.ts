/**
 * ICMP and ICMPv6 in the wire layer, on real errors captured in a multi-hop lab
 * (test/fixtures/icmp-errors.txt, scripts/capture-icmp-fixtures.ts: Linux routers quoting as much as
 * fits, a router quoting the IP header and 8 bytes, an MPLS router quoting 128 bytes and an RFC 4884
 * label stack), cross-checked against tcpdump's line beside each and against tshark; crafted
 * messages for what the lab does not produce (malformed extensions, lengths past the message,
 * pre-RFC 4884 extensions); and the quotes compared with the probes that caused them.
 *
 * Where tshark and we legitimately differ (asserted where it happens):
 *  - an IPv4 error with an RFC 4884 length shorter than the quoted packet's own length (an MPLS
 *    router's 128 bytes of a 140-byte packet): tshark 4.0 reads the quote to the quoted IP total
 *    length and takes the extension structure for TCP payload; we follow the length field (as it does
 *    for ICMPv6), so the MPLS label is ours alone there;
 *  - tshark gives no raw sequence number (tcp.seq_raw) for TCP inside an IPv4 ICMP error;
 *  - tcpdump checks the TCP checksum of a quote cut short and calls it incorrect; we do not judge it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareQuote, fieldVisible } from '../../shared/quote.js';
import { LINKTYPE_RAW, writePcapng } from '../../shared/pcapng.js';
import {
  decodeExtensions, decodeIcmp, decodeIcmpError, decodeIcmpv6, decodePacket, decodeQuote, encodeExtensions, encodeIcmp, encodeIcmpPacket, encodeIcmpv6,
  encodePacket, formatIcmpError, mplsLabelStack, pseudoHeaderOf, viewExtensionObject, type DecodedIcmpError,
} from '../../shared/wire/index.js';
import { fixtureProbes } from '../../scripts/capture-icmp-fixtures.js';
import { loadIcmpFixtures, type Fixture } from '../helpers/fixtures.js';
import { installed } from '../helpers/tools.js';

const fixtures = loadIcmpFixtures();
const decoded = (f: Fixture): DecodedIcmpError => {
  const d = decodeIcmpError(f.bytes);
  if (!d) throw new Error(`${f.name} is not an ICMP error`);
  return d;
};
/** What the fixture's name says: family, probe, hop, and how that hop quotes. */
const parts = (f: Fixture) => {
  const m = /^v([46])-(syn-options|data|large|ecn-dscp)-hop(\d)-(linux|short|mpls)$/.exec(f.name)!;
  return { family: Number(m[1]) as 4 | 6, probe: m[2], hop: Number(m[3]), style: m[4] };
};
/** The probe as it was sent (the capture script's own builder), for its TTL = the hop. */
function sentProbe(f: Fixture, d: DecodedIcmpError): Uint8Array {
  const { probe, hop } = parts(f);
  const quoted = d.quote.packet.ip!;
  return fixtureProbes(quoted.src, quoted.dst, hop).find((p) => p.name === probe)!.bytes;
}

describe('real ICMP and ICMPv6 errors from the lab', () => {
  it('the corpus has every family, probe, hop and quoting style', () => {
    expect(fixtures.length).toBe(20);
    expect(new Set(fixtures.map((f) => parts(f).style))).toEqual(new Set(['linux', 'short', 'mpls']));
    expect(fixtures.filter((f) => parts(f).family === 6)).toHaveLength(10);
  });

  it.each(fixtures.map((f) => [f.name, f] as const))('%s: decodes without issues, checksums right, and re-encodes byte for byte', (_, f) => {
    const d = decoded(f);
    expect(d.kind).toBe('time-exceeded');
    expect(d.icmp.message.code).toBe(0);
    expect(d.icmp.checksumValid).toBe(true);
    expect(d.issues).toEqual([]);
    const message = d.ip.version === 4 ? encodeIcmp(d.icmp.message) : encodeIcmpv6(d.icmp.message, pseudoHeaderOf(d.ip));
    expect(Buffer.from(encodePacket({ ip: d.ip, payload: message })).toString('hex')).toBe(Buffer.from(f.bytes).toString('hex'));
  });

  it.each(fixtures.map((f) => [f.name, f] as const))('%s: the quote is as long as that hop quotes, and what it holds of the probe', (_, f) => {
    const d = decoded(f);
    const { family, probe, style } = parts(f);
    const sent = sentProbe(f, d);
    const q = d.quote;
    expect(q.packetLength).toBe(sent.length);
    const header = family === 4 ? 20 : 40;
    if (style === 'short') {
      // RFC 792: the IP header and 8 bytes (ports and sequence number), nothing of a TCP header's rest.
      expect(q.bytes.length).toBe(header + 8);
      expect(q.complete).toBe(false);
      expect(q.packet.tcp).toBeUndefined();
      const tcp = decodePacket(sent).tcp!;
      expect(q.tcpPrefix).toEqual({ srcPort: tcp.srcPort, dstPort: tcp.dstPort, seq: tcp.seq });
      expect(d.icmp.originalLength).toBe(0);
    } else if (style === 'mpls') {
      // 128 bytes, zero padded when the packet is shorter; the padding is not the packet's.
      expect(d.icmp.originalLength).toBe(128);
      expect(d.icmp.datagram).toHaveLength(128);
      expect(q.bytes.length).toBe(Math.min(128, sent.length));
      expect(q.complete).toBe(sent.length <= 128);
      const [object] = d.icmp.message.extensions!.objects;
      expect(d.icmp.extensionsChecksumValid).toBe(true);
      expect(viewExtensionObject(object)).toEqual({ type: 'mpls-label-stack', entries: [{ label: 16004, trafficClass: 0, bottomOfStack: true, ttl: 1 }] });
    } else {
      // Linux: as much as fits in 576 bytes (IPv4) or the IPv6 minimum MTU of 1280.
      const room = family === 4 ? 576 - 20 - 8 : 1280 - 40 - 8;
      expect(q.bytes.length).toBe(Math.min(room, sent.length));
      expect(q.complete).toBe(probe !== 'large');
      expect(d.icmp.message.extensions).toBeUndefined();
    }
    // The router saw the probe with its TTL run out: 1, as received.
    expect(q.packet.ip && (q.packet.ip.version === 4 ? q.packet.ip.ttl : q.packet.ip.hopLimit)).toBe(1);
  });

  it.each(fixtures.map((f) => [f.name, f] as const))('%s: agrees with tcpdump\'s line', (_, f) => {
    const d = decoded(f);
    const line = f.tcpdump;
    const inner = d.quote.packet.ip!;
    expect(formatIcmpError(d)).toMatch(/time exceeded in-transit, quoting/);
    if (d.ip.version === 6) {
      // tcpdump names the quoted packet's destination only (the rest is tshark's to check, below).
      expect(line).toContain(`hlim ${d.ip.hopLimit},`);
      expect(line).toContain(`${d.ip.src} > ${d.ip.dst}: [icmp6 sum ok] ICMP6, time exceeded in-transit for ${inner.dst}`);
      return;
    }
    expect(line).toContain(`${d.ip.src} > ${d.ip.dst}: ICMP time exceeded in-transit`);
    expect(line).toContain(`ttl ${d.ip.ttl},`);
    expect(line).toContain(`id ${inner.version === 4 ? inner.id : ''},`);
    const srcPort = d.quote.packet.tcp?.srcPort ?? d.quote.tcpPrefix?.srcPort;
    expect(line).toContain(`${inner.src}.${srcPort} > ${inner.dst}.34343`);
    if (d.quote.packet.tcp) {
      expect(line).toContain(`seq ${d.quote.packet.tcp.seq}`);
      expect(line).toContain(`win ${d.quote.packet.tcp.window}`);
    } else {
      expect(line).toContain('[|tcp]');
    }
    if (d.icmp.message.extensions) expect(line).toMatch(/label 16004, tc 0, \[S\], ttl 1/);
  });

  it('quotes compared with the probes: what each hop shows, and what it cannot', () => {
    const byName = new Map(fixtures.map((f) => [f.name, f]));
    const compare = (name: string) => {
      const f = byName.get(name)!;
      const d = decoded(f);
      return compareQuote(sentProbe(f, d), d.quote);
    };
    const interference = (c: ReturnType<typeof compare>) => c.rows.filter((r) => r.class === 'interference').map((r) => `${r.layer}.${r.field}:${r.change ?? ''}`);
    for (const family of [4, 6]) {
      // The strip-options middlebox is hop 2: it quotes the SYN before its own FORWARD rule, so the option is still there.
      const atBox = compare(`v${family}-syn-options-hop2-linux`);
      expect(interference(atBox)).toEqual([]);
      expect(atBox.notVisible).toEqual([]);
      expect(atBox.rows.map((r) => r.field)).toContain(family === 4 ? 'ttl' : 'hopLimit');
      // Two hops on, the MPLS router's 128 bytes hold the whole SYN: kind 200 is NOPs now.
      expect(interference(compare(`v${family}-syn-options-hop4-mpls`))).toEqual(['option.kind-200:replaced-by-nop']);
      // The short-quoting router in between shows the ports and the sequence number, not the options: not visible, never "removed".
      const short = compare(`v${family}-syn-options-hop3-short`);
      expect(interference(short)).toEqual([]);
      expect(short.notVisible).toEqual(['tcp.ack', 'tcp.dataOffset', 'tcp.reserved', 'tcp.flags', 'tcp.window', 'tcp.checksum', 'tcp.urgentPointer', 'option']);
      expect(fieldVisible('tcp.seq', short.visibility)).toBe(true);
      expect(fieldVisible('ip.dscp', short.visibility)).toBe(true);
      expect(fieldVisible('option.kind-200', short.visibility)).toBe(false);
      // 128 bytes of a longer data segment: the headers and the payload's start, no checksum verdict.
      const cut = compare(`v${family}-data-hop4-mpls`);
      expect(interference(cut)).toEqual([]);
      expect(cut.notVisible).toEqual(['tcp.checksum', 'payload']);
      expect(cut.visibility.payloadBytes).toBe(128 - (family === 4 ? 40 : 60));
      expect(fieldVisible('payload', cut.visibility)).toBe(true);
      // DSCP EF and ECT(0) as sent.
      expect(interference(compare(`v${family}-ecn-dscp-hop1-linux`))).toEqual([]);
    }
  });
});

describe.skipIf(!installed('tshark'))('tshark reads the errors as we do', () => {
  let dir: string;
  let rows: Map<string, Record<string, string>>;
  const fields = ['frame.comment', 'icmp.type', 'icmp.checksum.status', 'icmp.length', 'icmpv6.type', 'icmpv6.checksum.status', 'icmpv6.length',
    'icmp.ext.checksum.status', 'icmp.mpls.label', 'icmp.mpls.ttl', 'tcp.srcport', 'tcp.dstport', 'tcp.seq_raw', 'tcp.window_size_value', 'ip.src', 'ipv6.src'];
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'mbprobe-icmp-tshark-'));
    const file = join(dir, 'errors.pcapng');
    writeFileSync(file, writePcapng({ interfaces: [{ linkType: LINKTYPE_RAW }], packets: fixtures.map((f, i) => ({ interfaceId: 0, timestampNs: BigInt(i) * 1000n, data: f.bytes, comments: [f.name] })) }));
    const out = execFileSync('tshark', ['-r', file, '-T', 'fields', '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    rows = new Map(out.trim().split('\n').map((line) => {
      const values = line.split('|');
      const row = Object.fromEntries(fields.map((f, i) => [f, values[i] ?? '']));
      return [row['frame.comment'], row];
    }));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(fixtures.map((f) => [f.name, f] as const))('%s', (_, f) => {
    const d = decoded(f);
    const t = rows.get(f.name)!;
    const v6 = d.ip.version === 6;
    expect(t[v6 ? 'icmpv6.type' : 'icmp.type']).toBe(String(d.icmp.message.type));
    expect(t[v6 ? 'icmpv6.checksum.status' : 'icmp.checksum.status']).toBe(d.icmp.checksumValid ? '1' : '0');
    // RFC 4884's length: in 32-bit words for ICMP, 64-bit words for ICMPv6.
    expect(t[v6 ? 'icmpv6.length' : 'icmp.length']).toBe(d.icmp.originalLength ? String(d.icmp.originalLength / (v6 ? 8 : 4)) : '');
    // Outer and quoted source, in that order.
    expect(t[v6 ? 'ipv6.src' : 'ip.src']).toBe(`${d.ip.src},${d.quote.packet.ip!.src}`);
    const tcp = d.quote.packet.tcp;
    expect(t['tcp.srcport']).toBe(String(tcp?.srcPort ?? d.quote.tcpPrefix?.srcPort));
    expect(t['tcp.dstport']).toBe('34343');
    expect(t['tcp.window_size_value']).toBe(tcp ? String(tcp.window) : '');
    if (v6) expect(t['tcp.seq_raw']).toBe(tcp ? String(tcp.seq) : '');
    else expect(t['tcp.seq_raw']).toBe('');
    const mpls = d.icmp.message.extensions?.objects.map(viewExtensionObject).find((v) => v.type === 'mpls-label-stack');
    const tsharkSkipsExtension = !v6 && mpls !== undefined && !d.quote.complete;
    if (mpls && !tsharkSkipsExtension) {
      expect(t['icmp.mpls.label']).toBe(String(mpls.entries[0].label));
      expect(t['icmp.mpls.ttl']).toBe(String(mpls.entries[0].ttl));
      expect(t['icmp.ext.checksum.status']).toBe('1');
    } else {
      expect(t['icmp.mpls.label']).toBe('');
    }
  });
});

describe('crafted ICMP messages', () => {
  const quote = fixtureProbes('192.0.2.2', '198.51.100.2', 3)[0].bytes;

  it('with extensions and no length given, the original datagram is padded to 128 bytes and its length written (ICMP: 32-bit words, ICMPv6: 64-bit words)', () => {
    const extensions = { objects: [mplsLabelStack([{ label: 299792, ttl: 254 }, { label: 16 }])] };
    const v4 = encodeIcmp({ type: 11, code: 0, body: quote, extensions });
    expect(v4[5]).toBe(32);
    expect(v4.length).toBe(8 + 128 + 4 + 12);
    const d4 = decodeIcmp(v4);
    expect(d4.issues).toEqual([]);
    expect(d4.originalLength).toBe(128);
    expect(viewExtensionObject(d4.message.extensions!.objects[0])).toEqual({
      type: 'mpls-label-stack',
      entries: [{ label: 299792, trafficClass: 0, bottomOfStack: false, ttl: 254 }, { label: 16, trafficClass: 0, bottomOfStack: true, ttl: 1 }],
    });
    expect(decodeQuote(d4.datagram!).bytes).toEqual(quote);
    const pseudo = { src: 'fd00::1', dst: 'fd00::2', protocol: 58 };
    const v6 = encodeIcmpv6({ type: 3, code: 0, body: quote, extensions }, pseudo);
    expect(v6[4]).toBe(16);
    const d6 = decodeIcmpv6(v6, pseudo);
    expect(d6.checksumValid).toBe(true);
    expect(d6.originalLength).toBe(128);
    expect(encodeIcmpv6(d6.message, undefined)).toEqual(v6);
  });

  it('finds a pre-RFC 4884 extension at byte 128 only when its checksum says it is one', () => {
    const padded = new Uint8Array(128);
    padded.set(quote);
    const ext = encodeExtensions({ objects: [mplsLabelStack([{ label: 42 }])] });
    const legacy = encodeIcmp({ type: 11, code: 0, rest: new Uint8Array(4), body: Uint8Array.from([...padded, ...ext]) });
    const d = decodeIcmp(legacy);
    expect(d.legacyExtensions).toBe(true);
    expect(d.message.body).toHaveLength(128);
    expect(encodeIcmp(d.message)).toEqual(legacy);
    // The same bytes with the checksum broken: quote data, not an extension.
    const broken = legacy.slice();
    broken[8 + 128 + 3] ^= 0xff;
    const b = decodeIcmp(broken);
    expect(b.message.extensions).toBeUndefined();
    expect(b.datagram).toHaveLength(128 + ext.length);
  });

  it('reports malformed extensions and lengths as issues, and still re-encodes them exactly', () => {
    const ext = encodeExtensions({ objects: [{ classNum: 1, cType: 1, length: 2, data: Uint8Array.of(0, 0, 0, 0) }] }, {});
    const msg = encodeIcmp({ type: 11, code: 0, body: quote, extensions: decodeExtensions(ext).extensions });
    const d = decodeIcmp(msg);
    expect(d.issues.map((i) => i.code)).toContain('bad-extension');
    expect(encodeIcmp(d.message)).toEqual(msg);
    // A length past the message: taken as no length.
    const long = encodeIcmp({ type: 11, code: 0, rest: Uint8Array.of(0, 200, 0, 0), body: quote });
    const l = decodeIcmp(long);
    expect(l.issues.map((i) => i.code)).toEqual(['bad-original-length']);
    expect(l.datagram).toEqual(quote);
    expect(encodeIcmp(l.message)).toEqual(long);
    // Fewer than 8 bytes.
    expect(decodeIcmp(Uint8Array.of(11, 0, 1)).issues.map((i) => i.code)).toEqual(['truncated']);
    expect(decodeIcmpError(Uint8Array.of(0x45))).toBeUndefined();
  });

  it('an ICMP error packet built by encodeIcmpPacket decodes to what went in', () => {
    const packet = encodeIcmpPacket({ version: 4, tos: 0, id: 7, flags: 0, fragmentOffset: 0, ttl: 255, src: '203.0.113.1', dst: '192.0.2.2' }, { type: 11, code: 0, body: quote.slice(0, 28) });
    const d = decodeIcmpError(packet)!;
    expect(d.ip.src).toBe('203.0.113.1');
    expect(d.quote.bytes).toEqual(quote.slice(0, 28));
    expect(d.quote.tcpPrefix?.dstPort).toBe(34343);
  });

  it('never throws on random bytes, and re-encodes any message of 8 bytes or more exactly', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 400 }), (bytes) => {
      decodeIcmpError(bytes);
      decodeQuote(bytes);
      const d = decodeIcmp(bytes);
      const d6 = decodeIcmpv6(bytes);
      if (bytes.length >= 8) {
        expect(encodeIcmp(d.message)).toEqual(bytes);
        expect(encodeIcmpv6(d6.message, undefined)).toEqual(bytes);
      }
    }), { numRuns: 3000 });
    // Errors whose body looks like an extension structure, with every length field value.
    fc.assert(fc.property(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ minLength: 0, maxLength: 300 }), (words, body) => {
      const bytes = Uint8Array.from([11, 0, 0, 0, 0, words, 0, 0, ...body]);
      expect(encodeIcmp(decodeIcmp(bytes).message)).toEqual(bytes);
      const bytes6 = Uint8Array.from([3, 0, 0, 0, words, 0, 0, 0, ...body]);
      expect(encodeIcmpv6(decodeIcmpv6(bytes6).message, undefined)).toEqual(bytes6);
    }), { numRuns: 2000 });
  });
});
