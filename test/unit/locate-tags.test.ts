/**
 * The TTL a quote belongs to (initiator/locate/ttl-tags.ts): every copy carries its TTL in the fields
 * its test's judge does not read, and the vote of the readable ones survives a box that rewrites
 * some of them, a quote of 28 bytes, and never takes the probe itself (or another flow's copy) for one.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeQuote, decodePacket, encodePacket, mss, sackPermitted, TcpFlag, type Packet } from '../../shared/wire/index.js';
import { planTags, readSegmentTag, readTag, tagCopy, tagSourceOf } from '../../initiator/locate/ttl-tags.js';

const syn = (family: 4 | 6 = 4): Packet => ({
  ip: family === 4
    ? { version: 4, tos: 0, id: 0x1234, flags: 2, fragmentOffset: 0, ttl: 64, protocol: 6, src: '198.18.0.2', dst: '198.19.0.2' }
    : { version: 6, trafficClass: 0, flowLabel: 0, hopLimit: 64, protocol: 6, src: 'fd6d:6270:0:1::2', dst: 'fd6d:6270:0:2::2' },
  tcp: { srcPort: 40000, dstPort: 34343, seq: 1000, ack: 0, flags: TcpFlag.SYN, window: 64240, options: [mss(1460), sackPermitted()] },
  payload: new Uint8Array(0),
});
const data = (): Packet => ({ ...syn(), tcp: { ...syn().tcp!, flags: TcpFlag.ACK | TcpFlag.PSH, ack: 77 }, payload: new Uint8Array(100).fill(0x61) });
const decoded = (p: Packet) => decodePacket(encodePacket(p));
/** Rewrites fields of a copy as a box on the path would (checksums recomputed). */
const rewrite = (bytes: Uint8Array, change: (p: Packet) => void): Uint8Array => {
  const p = decodePacket(bytes) as Packet;
  change(p);
  return encodePacket(p, { computeChecksums: true });
};
const NONCE = 0xabcdef;

describe('TTL tags', () => {
  it('chooses the fields the judge does not read and that mean nothing in this segment', () => {
    expect(planTags(decoded(syn()), ['option.mss'], NONCE).fields).toEqual(['ip.id', 'tcp.window', 'tcp.urgentPointer', 'tcp.ack']);
    expect(planTags(decoded(syn(6)), [], NONCE).fields).toEqual(['ip.flowLabel', 'tcp.window', 'tcp.urgentPointer', 'tcp.ack']);
    // A window test keeps its window; a data segment's ack is an ack.
    expect(planTags(decoded(syn()), ['tcp.window'], NONCE).fields).toEqual(['ip.id', 'tcp.urgentPointer', 'tcp.ack']);
    expect(planTags(decoded(data()), ['payload'], NONCE).fields).toEqual(['ip.id', 'tcp.window', 'tcp.urgentPointer']);
    const urgent = { ...data(), tcp: { ...data().tcp!, flags: TcpFlag.ACK | TcpFlag.URG, urgentPointer: 10 } };
    expect(planTags(decoded(urgent), ['tcp.urgentPointer', 'tcp.flags'], NONCE).fields).toEqual(['ip.id', 'tcp.window']);
  });

  it('a copy differs from the probe only in its TTL and the tag fields, with valid checksums', () => {
    const probe = decoded(data());
    const plan = planTags(probe, ['payload'], NONCE);
    const copy = decodePacket(tagCopy(probe, 7, plan));
    expect(copy.checksums).toEqual({ ip: true, tcp: true });
    expect(copy.ip).toMatchObject({ ttl: 7 });
    expect(copy.tcp).toMatchObject({ seq: 1000, ack: 77, flags: TcpFlag.ACK | TcpFlag.PSH });
    // The window keeps its size: only its low byte carries the tag.
    expect(copy.tcp!.window >> 8).toBe(64240 >> 8);
    expect(copy.payload).toEqual(probe.payload);
    expect(readTag(tagSourceOf(copy), plan)).toEqual({ ttl: 7, votes: { 'ip.id': 7, 'tcp.window': 7, 'tcp.urgentPointer': 7 } });
  });

  it('reads every TTL back, for both families', () => {
    for (const family of [4, 6] as const) {
      const probe = decoded(syn(family));
      const plan = planTags(probe, ['option.mss'], NONCE);
      for (let ttl = 1; ttl <= 255; ttl++) expect(readSegmentTag(tagCopy(probe, ttl, plan), plan).ttl).toBe(ttl);
    }
  });

  it('outvotes a box that rewrites some tag fields: a window shaper, a URG scrubber, an IP ID randomiser', () => {
    const probe = decoded(syn());
    const plan = planTags(probe, ['option.mss'], NONCE);
    const copy = tagCopy(probe, 5, plan);
    const windowed = rewrite(copy, (p) => void (p.tcp!.window = 8192));
    expect(readSegmentTag(windowed, plan)).toEqual({ ttl: 5, votes: { 'ip.id': 5, 'tcp.window': null, 'tcp.urgentPointer': 5, 'tcp.ack': 5 } });
    const scrubbed = rewrite(windowed, (p) => void (p.tcp!.urgentPointer = 0));
    expect(readSegmentTag(scrubbed, plan).ttl).toBe(5);
    // IP ID and window rewritten: the two fields left agree.
    const randomised = rewrite(windowed, (p) => {
      if (p.ip.version === 4) p.ip.id = 0x4242;
    });
    expect(readSegmentTag(randomised, plan)).toEqual({ ttl: 5, votes: { 'ip.id': null, 'tcp.window': null, 'tcp.urgentPointer': 5, 'tcp.ack': 5 } });
    // One field left, and not the IP header's: too thin to place the quote.
    expect(readSegmentTag(rewrite(randomised, (p) => void (p.tcp!.urgentPointer = 0)), plan).ttl).toBeUndefined();
  });

  it('a 28-byte quote (the IP header and the ports and seq) is read by its IP ID alone; after an IP ID rewrite it cannot be placed', () => {
    const probe = decoded(syn());
    const plan = planTags(probe, ['option.mss'], NONCE);
    const copy = tagCopy(probe, 3, plan);
    const short = decodeQuote(copy.slice(0, 28));
    expect(readTag(tagSourceOf(short.packet, short.tcpPrefix), plan)).toEqual({ ttl: 3, votes: { 'ip.id': 3 } });
    const rewritten = decodeQuote(rewrite(copy, (p) => {
      if (p.ip.version === 4) p.ip.id = 1;
    }).slice(0, 28));
    expect(readTag(tagSourceOf(rewritten.packet, rewritten.tcpPrefix), plan).ttl).toBeUndefined();
    // 32 bytes reach the ack as well: with the ID rewritten, one vote that is not the IP header's is too thin.
    const longer = decodeQuote(rewrite(copy, (p) => {
      if (p.ip.version === 4) p.ip.id = 1;
    }).slice(0, 32));
    expect(readTag(tagSourceOf(longer.packet, longer.tcpPrefix), plan)).toEqual({ votes: { 'ip.id': null, 'tcp.ack': 3 } });
  });

  it('two fields naming different TTLs are a tie, not a guess', () => {
    const probe = decoded(data());
    const plan = planTags(probe, ['payload'], NONCE);
    const mixed = rewrite(tagCopy(probe, 4, plan), (p) => {
      if (p.ip.version === 4) p.ip.id = ((NONCE & 0xff) << 8) | 9;
      p.tcp!.urgentPointer = 0;
    });
    expect(readSegmentTag(mixed, plan).ttl).toBeUndefined();
  });

  it('never takes the probe itself, or another flow\'s copy, for a copy', () => {
    const probe = decoded(syn());
    const plan = planTags(probe, ['option.mss'], NONCE);
    const sent = (t: number): boolean => t >= 1 && t <= 30;
    expect(readSegmentTag(encodePacket(syn()), plan, sent).ttl).toBeUndefined();
    const other = planTags(probe, ['option.mss'], 0x123456);
    expect(readSegmentTag(tagCopy(probe, 6, other), plan, sent).ttl).toBeUndefined();
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), fc.nat(), fc.integer({ min: 0, max: 0xffff }), (id, window, ack, urg) => {
      const p = syn();
      if (p.ip.version === 4) p.ip.id = id;
      Object.assign(p.tcp!, { window, ack: ack >>> 0, urgentPointer: urg });
      const reading = readSegmentTag(encodePacket(p), plan, sent);
      // A random segment is read as a copy only when two of its fields happen to carry this flow's tag for one TTL.
      if (reading.ttl !== undefined) expect(Object.values(reading.votes).filter((v) => v === reading.ttl).length).toBeGreaterThanOrEqual(2);
    }), { numRuns: 2000 });
  });

  it('never takes a proxy\'s own segment at the responder for a copy because its IP ID happens to name one (the lab\'s split-proxy flake); a quote with only the IP header still is', () => {
    const probe = decoded(syn());
    const plan = planTags(probe, ['option.mss'], NONCE);
    const sent = (t: number): boolean => t >= 1 && t <= 8;
    // the proxy's own SYN upstream: its ISN, its window, no tags, and an IP ID that reads as TTL 8
    const proxys = syn();
    if (proxys.ip.version === 4) proxys.ip.id = ((NONCE & 0xff) << 8) | 8;
    Object.assign(proxys.tcp!, { seq: 0x5eed, window: 64240, urgentPointer: 0, ack: 0 });
    expect(readSegmentTag(encodePacket(proxys), plan, sent)).toEqual({ votes: { 'ip.id': 8, 'tcp.window': null, 'tcp.urgentPointer': null, 'tcp.ack': null } });
    // a router's 28-byte quote shows only the IP header's field: there it is the vote
    const quote = decodeQuote(tagCopy(probe, 8, plan).slice(0, 28));
    expect(readTag(tagSourceOf(quote.packet, quote.tcpPrefix), plan, sent).ttl).toBe(8);
    // a plan with one field (the judge reads the rest) reads a whole segment by it alone
    const urgent = decoded({ ...data(), tcp: { ...data().tcp!, flags: TcpFlag.ACK | TcpFlag.URG, urgentPointer: 10 } });
    const thin = planTags(urgent, ['tcp.urgentPointer', 'tcp.flags', 'tcp.window'], NONCE);
    expect(thin.fields).toEqual(['ip.id']);
    expect(readSegmentTag(tagCopy(urgent, 6, thin), thin).ttl).toBe(6);
  });
});
