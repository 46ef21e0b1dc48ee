/**
 * Property tests of the packet codec (fast-check).
 *
 * 1. Well-formed packets: for random TCP/IPv4 and TCP/IPv6 packets built from random field values
 *    and random option lists (every constructor, plus raw unknown kinds), encode -> decode gives the
 *    same fields, valid checksums and no issues, and encoding the decoded packet (as given, and
 *    with lengths and checksums recomputed) gives the same bytes again.
 * 2. Garbage: for random byte strings and for random mutations of the real Linux segments,
 *    decodePacket never throws, formatPacket never throws, and
 *        whenever decodePacket(b).ip is set, encodePacket(asPacket(decodePacket(b))) === b
 *    byte for byte, with no exception in between. (When `ip` is unset the bytes are not an IP
 *    packet at all: fewer than 20/40 bytes, or a version nibble other than 4/6; asPacket returns
 *    undefined and there is nothing to encode.)
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  asPacket, decodePacket, encodePacket, eol, experimental, fastOpen, formatPacket, ipv4ToString, ipv6ToString, mptcpCapable,
  mptcpDss, mss, nop, rawOption, sack, sackPermitted, timestamps, toHex, windowScale, type Ipv4Header, type Ipv6Header,
  transportChecksum, type Packet, type TcpHeader, type TcpOption,
} from '../../shared/wire/index.js';
import { loadFixtures } from '../helpers/fixtures.js';

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
/** Lengths drawn uniformly (fast-check's default `size` would keep nearly every array under ~10 bytes). */
const bytes = (minLength: number, maxLength: number): fc.Arbitrary<Uint8Array> =>
  fc.integer({ min: minLength, max: maxLength }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n }));

/** Kinds with no entry in the codec's option table, so any data is "unknown", never "malformed". */
const KNOWN_KINDS = new Set([0, 1, 2, 3, 4, 5, 8, 30, 34, 253, 254]);
const unknownKind = fc.integer({ min: 6, max: 252 }).filter((k) => !KNOWN_KINDS.has(k));

const optionArb: fc.Arbitrary<TcpOption> = fc.oneof(
  fc.constant(nop()),
  u16.map(mss),
  u8.map(windowScale),
  fc.constant(sackPermitted()),
  fc.array(fc.tuple(u32, u32), { minLength: 1, maxLength: 4, size: 'max' }).map(sack),
  fc.tuple(u32, u32).map(([v, e]) => timestamps(v, e)),
  fc.oneof(fc.constant(0), fc.constantFrom(4, 6, 8, 10, 12, 14, 16)).chain((n) => bytes(n, n)).map(fastOpen),
  fc.record({ version: fc.integer({ min: 0, max: 15 }), flags: u8, senderKey: fc.option(u64, { nil: undefined }), receiverKey: fc.option(u64, { nil: undefined }) })
    .map((o) => mptcpCapable(o)),
  fc.record({ dataAck: fc.option(u32, { nil: undefined }), dataSequence: fc.option(u32, { nil: undefined }), subflowSequence: u32, dataLength: u16 })
    .map((o) => mptcpDss(o)),
  // Other MPTCP subtypes, raw (never MP_CAPABLE or DSS, whose layout the view checks).
  fc.tuple(fc.constantFrom(1, 3, 4, 5, 6, 7, 8, 9, 15), bytes(0, 18)).map(([subtype, rest]) => rawOption(30, Uint8Array.of(subtype << 4, ...rest))),
  fc.tuple(u16, bytes(0, 10), fc.constantFrom(253 as const, 254 as const)).map(([exid, data, kind]) => experimental(exid, data, kind)),
  fc.tuple(unknownKind, bytes(0, 38)).map(([kind, data]) => rawOption(kind, data)),
);

const optionSize = (o: TcpOption): number => (o.kind <= 1 ? 1 : 2 + o.data.length);

/** Option lists that fit in 40 bytes once padded; an explicit EOL may only come last. */
const optionsArb: fc.Arbitrary<TcpOption[]> = fc
  .tuple(fc.array(optionArb, { maxLength: 12, size: 'max' }), fc.boolean())
  .map(([options, withEol]) => {
    const kept: TcpOption[] = [];
    let size = 0;
    for (const o of options) {
      if (size + optionSize(o) > 39) break;
      kept.push(o);
      size += optionSize(o);
    }
    return withEol ? [...kept, eol()] : kept;
  });

const tcpArb: fc.Arbitrary<TcpHeader> = fc.record({
  srcPort: u16,
  dstPort: u16,
  seq: u32,
  ack: u32,
  flags: fc.integer({ min: 0, max: 0x1ff }),
  reserved: fc.integer({ min: 0, max: 7 }),
  window: u16,
  urgentPointer: u16,
  options: optionsArb,
});

const ipv4Address = fc.tuple(u8, u8, u8, u8).map((b) => ipv4ToString(Uint8Array.from(b)));
const ipv6Address = bytes(16, 16).map((b) => ipv6ToString(b));

const ipv4Arb: fc.Arbitrary<Ipv4Header> = fc.record({
  version: fc.constant(4 as const),
  tos: u8,
  id: u16,
  // Never MF and never a fragment offset: a fragment's TCP header is (rightly) not decoded.
  flags: fc.constantFrom(0, 2, 4, 6),
  fragmentOffset: fc.constant(0),
  ttl: u8,
  protocol: fc.constant(6),
  src: ipv4Address,
  dst: ipv4Address,
  options: fc.integer({ min: 0, max: 10 }).chain((words) => bytes(words * 4, words * 4)),
});

/** One extension header before TCP (or none): its type and its bytes, next header = TCP. */
const extensionArb: fc.Arbitrary<{ type: number; bytes: Uint8Array } | undefined> = fc.oneof(
  fc.constant(undefined),
  // Destination options (60), 8 or 16 bytes of whatever.
  fc.integer({ min: 0, max: 1 }).chain((n) => bytes(6 + n * 8, 6 + n * 8)).map((body) => ({ type: 60, bytes: Uint8Array.of(6, body.length / 8, ...body) })),
  // Routing header (43): type 0 or SRv6 (4) with 1-3 addresses, any Segments Left (the checksum then covers the final address).
  fc.tuple(fc.constantFrom(0, 4), fc.integer({ min: 1, max: 3 }).chain((k) => bytes(16 * k, 16 * k)), fc.integer({ min: 0, max: 3 }))
    .map(([routingType, addresses, segmentsLeft]) => {
      const k = addresses.length / 16;
      const head = Uint8Array.of(6, 2 * k, routingType, Math.min(segmentsLeft, k), routingType === 4 ? k - 1 : 0, 0, 0, 0);
      return { type: 43, bytes: Uint8Array.from([...head, ...addresses]) };
    }),
  // An atomic fragment (44): offset 0, M clear, any identification.
  bytes(4, 4).map((id) => ({ type: 44, bytes: Uint8Array.of(6, 0, 0, 0, ...id) })),
);

const ipv6Arb: fc.Arbitrary<Ipv6Header> = fc
  .record({
    trafficClass: u8,
    flowLabel: fc.integer({ min: 0, max: 0xfffff }),
    hopLimit: u8,
    src: ipv6Address,
    dst: ipv6Address,
    extension: extensionArb,
  })
  .map(({ extension, ...rest }): Ipv6Header => {
    const base: Ipv6Header = { version: 6, protocol: 6, ...rest };
    return extension ? { ...base, nextHeader: extension.type, extensions: extension.bytes } : base;
  });

const packetArb: fc.Arbitrary<Packet> = fc.record({
  ip: fc.oneof(ipv4Arb, ipv6Arb),
  tcp: tcpArb,
  payload: bytes(0, 100),
});

/** What decoding an encoded option list gives: lengths filled in, zero padding read as EOL + zero tail. */
function expectedOptions(options: TcpOption[]): { options: TcpOption[]; tail: Uint8Array } {
  const decoded: TcpOption[] = options.map((o) => (o.kind <= 1 ? { kind: o.kind, data: new Uint8Array(0) } : { kind: o.kind, length: 2 + o.data.length, data: o.data }));
  const size = options.reduce((s, o) => s + optionSize(o), 0);
  const pad = (4 - (size % 4)) % 4;
  const endsWithEol = options.length > 0 && options[options.length - 1].kind === 0;
  if (endsWithEol) return { options: decoded, tail: new Uint8Array(pad) };
  if (pad === 0) return { options: decoded, tail: new Uint8Array(0) };
  return { options: [...decoded, eol()], tail: new Uint8Array(pad - 1) };
}

/** WIRE_PROPERTY_SCALE=20 npx vitest run test/unit/wire-properties.test.ts runs 20 times as many cases. */
const SCALE = Number(process.env.WIRE_PROPERTY_SCALE ?? 1);
const runs = (n: number): { numRuns: number } => ({ numRuns: Math.round(n * SCALE) });

const hexOf = (b: Uint8Array | undefined): string => (b === undefined ? 'undefined' : toHex(b));

describe('well-formed random packets', () => {
  it('encode -> decode gives the same fields, valid checksums and no issues; re-encoding gives the same bytes', () => {
    fc.assert(
      fc.property(packetArb, (packet) => {
        const wire = encodePacket(packet);
        const d = decodePacket(wire);
        expect(d.issues).toEqual([]);
        expect(d.checksums).toEqual(packet.ip.version === 4 ? { ip: true, tcp: true } : { tcp: true });
        expect(hexOf(d.payload)).toBe(hexOf(packet.payload));
        expect(d.trailer.length).toBe(0);

        // IP fields.
        const ip = d.ip!;
        if (packet.ip.version === 4 && ip.version === 4) {
          const { options, ...fields } = packet.ip;
          expect(ip).toMatchObject(fields);
          expect(hexOf(ip.options)).toBe(hexOf(options));
          expect(ip.ihl).toBe(5 + options!.length / 4);
          expect(ip.totalLength).toBe(wire.length);
        } else if (packet.ip.version === 6 && ip.version === 6) {
          const { extensions, nextHeader, ...fields } = packet.ip;
          expect(ip).toMatchObject(fields);
          expect(ip.nextHeader).toBe(nextHeader ?? 6);
          expect(hexOf(ip.extensions)).toBe(hexOf(extensions ?? new Uint8Array(0)));
          expect(ip.payloadLength).toBe(wire.length - 40);
          // The TCP checksum covers the final destination: with a routing header under way, the last
          // address of the route (RFC 8200 8.1; SRv6 lists it first), else the Destination Address.
          const ext = extensions ?? new Uint8Array(0);
          let final = fields.dst;
          if (nextHeader === 43 && ext[3] > 0) final = ipv6ToString(ext, 8 + (ext[2] === 4 ? 0 : (ext[1] / 2 - 1) * 16));
          expect(transportChecksum({ src: fields.src, dst: final, protocol: 6 }, wire.subarray(40 + ext.length))).toBe(0);
        } else {
          expect.fail(`decoded IP version ${ip.version}, sent ${packet.ip.version}`);
        }

        // TCP fields.
        const { options, ...fields } = packet.tcp!;
        const tcp = d.tcp!;
        expect(tcp).toMatchObject(fields);
        const expected = expectedOptions(options!);
        expect(tcp.options).toEqual(expected.options);
        expect(hexOf(tcp.optionsTail)).toBe(hexOf(expected.tail));
        const optionBytes = options!.reduce((s, o) => s + optionSize(o), 0);
        expect(tcp.dataOffset).toBe(5 + Math.ceil(optionBytes / 4));

        // Decoded -> encoded is exact, as given and with everything recomputed.
        expect(hexOf(encodePacket(asPacket(d)!))).toBe(hexOf(wire));
        expect(hexOf(encodePacket(asPacket(d)!, { fixLengths: true, computeChecksums: true }))).toBe(hexOf(wire));
        expect(() => formatPacket(d)).not.toThrow();
      }),
      runs(2500),
    );
  });
});

/**
 * The property that holds for ANY byte string: decoding never throws, formatting never throws, and
 * whenever the decoder recognises an IP header, encoding its result reproduces the input exactly.
 */
function checkGarbage(input: Uint8Array): void {
  const d = decodePacket(input);
  expect(typeof formatPacket(d)).toBe('string');
  const packet = asPacket(d);
  if (d.ip === undefined) {
    expect(packet).toBeUndefined();
    // Not IP at all: too short for its version, or not version 4/6.
    const version = input.length > 0 ? input[0] >>> 4 : -1;
    expect(version !== 4 && version !== 6 ? true : input.length < (version === 6 ? 40 : 20)).toBe(true);
    expect(hexOf(d.payload)).toBe(hexOf(input));
    expect(d.issues.length).toBeGreaterThan(0);
    return;
  }
  expect(packet).toBeDefined();
  expect(hexOf(encodePacket(packet!))).toBe(hexOf(input));
  expect(typeof formatPacket(packet!)).toBe('string');
}

const fixtureBytes = loadFixtures().map((f) => f.bytes);

type Mutation =
  | { op: 'flip'; at: number; mask: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; data: Uint8Array }
  | { op: 'delete'; at: number; count: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 0xff }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: u8 }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), data: bytes(1, 8) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
);

/** Mutations aim mostly at the headers (first 80 bytes), where the decoder has decisions to make. */
function mutate(input: Uint8Array, mutations: Mutation[]): Uint8Array {
  let b = input.slice();
  for (const m of mutations) {
    const span = Math.max(1, Math.min(b.length, 80));
    const at = m.at % span;
    switch (m.op) {
      case 'flip':
        if (b.length) b[at] ^= m.mask;
        break;
      case 'set':
        if (b.length) b[at] = m.value;
        break;
      case 'truncate':
        b = b.slice(0, m.at % (b.length + 1));
        break;
      case 'insert':
        b = Uint8Array.from([...b.subarray(0, at), ...m.data, ...b.subarray(at)]);
        break;
      case 'delete':
        b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + m.count)]);
        break;
    }
  }
  return b;
}

describe('garbage never breaks the codec', () => {
  it('random byte strings (half of them with a 4 or 6 version nibble)', () => {
    const garbage = fc.tuple(bytes(0, 200), fc.constantFrom(undefined, 4, 6)).map(([b, version]) => {
      if (version !== undefined && b.length > 0) b[0] = (version << 4) | (b[0] & 0x0f);
      return b;
    });
    fc.assert(fc.property(garbage, checkGarbage), runs(5000));
  });

  it('random bytes behind a plausible IPv4/IPv6 + TCP header prefix', () => {
    // Pure noise rarely reaches the TCP decoder; these do: protocol 6, no fragment, any lengths, IHL mostly 5.
    const ihl = fc.oneof(fc.constant(5), fc.integer({ min: 0, max: 15 }));
    const v4 = fc.tuple(bytes(20, 120), u16, ihl).map(([b, total, words]) => {
      b[0] = 0x40 | words;
      b[2] = total >>> 8;
      b[3] = total & 0xff;
      b[6] &= 0x40; // DF at most: no fragments
      b[7] = 0;
      b[9] = 6;
      return b;
    });
    // IPv6: TCP right away, or behind an extension header of a plausible length (routing headers included).
    const v6 = fc.tuple(bytes(48, 160), u16, fc.constantFrom(6, 6, 6, 0, 43, 43, 44, 51, 60), fc.boolean(), fc.integer({ min: 0, max: 4 }))
      .map(([b, payloadLength, nextHeader, tcpNext, extLength]) => {
        b[0] = 0x60 | (b[0] & 0x0f);
        b[4] = payloadLength >>> 8;
        b[5] = payloadLength & 0xff;
        b[6] = nextHeader;
        if (tcpNext) b[40] = 6;
        b[41] = extLength;
        return b;
      });
    fc.assert(fc.property(fc.oneof(v4, v6), checkGarbage), runs(5000));
  });

  it('random mutations of the real Linux segments', () => {
    const mutated = fc
      .tuple(fc.integer({ min: 0, max: fixtureBytes.length - 1 }), fc.array(mutationArb, { minLength: 1, maxLength: 4, size: 'max' }))
      .map(([i, mutations]) => mutate(fixtureBytes[i], mutations));
    fc.assert(fc.property(mutated, checkGarbage), runs(6000));
  });

  it('every IPv4 header length and every TCP data offset (0..15 each) on real segments', () => {
    // The corners where a length field says less than the fixed header (IHL < 5, data offset < 5)
    // or more than there is: the decoder reads the fixed header anyway, and the round trip stays exact.
    for (const b of fixtureBytes.filter((x) => x[0] === 0x45).slice(0, 12)) {
      for (let ihl = 0; ihl < 16; ihl++) {
        for (let offset = 0; offset < 16; offset++) {
          const m = b.slice();
          m[0] = 0x40 | ihl;
          m[32] = (offset << 4) | (m[32] & 0x0f);
          checkGarbage(m);
        }
      }
    }
  });

  it('every single-byte truncation of every fixture', () => {
    for (const b of fixtureBytes) for (let n = 0; n <= Math.min(b.length, 100); n++) checkGarbage(b.subarray(0, n));
  });
});
