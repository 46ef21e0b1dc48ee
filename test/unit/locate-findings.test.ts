/**
 * The findings of locate (initiator/locate/findings.ts) on traces built from real packets: a SYN's
 * copies with TTL 1..5, a path of four routers and the responder at hop 5, boxes changing or dropping
 * them at a hop, routers quoting 28 bytes or nothing, NATs, proxies.
 */
import { describe, expect, it } from 'vitest';
import { compareQuote } from '../../shared/quote.js';
import { diffSegments } from '../../shared/diff.js';
import { decodePacket, decodeQuote, encodePacket, mss, sackPermitted, TcpFlag, type Packet } from '../../shared/wire/index.js';
import { locate, routersCrossed, type FlowTrace, type HopObservation, type PathView } from '../../initiator/locate/findings.js';
import { planTags, tagCopy } from '../../initiator/locate/ttl-tags.js';

const ROUTERS = ['10.0.1.1', '10.0.2.1', '10.0.3.1', '10.0.4.1'];
const RESPONDER = '198.19.0.2';
const probe: Packet = {
  ip: { version: 4, tos: 0, id: 1, flags: 2, fragmentOffset: 0, ttl: 64, protocol: 6, src: '198.18.0.2', dst: RESPONDER },
  tcp: { srcPort: 40000, dstPort: 34343, seq: 1000, ack: 0, flags: TcpFlag.SYN, window: 64240, options: [mss(1460), sackPermitted()] },
  payload: new Uint8Array(0),
};
const plan = planTags(decodePacket(encodePacket(probe)), ['option.mss'], 0x123456);
const copies = new Map(Array.from({ length: 6 }, (_, i) => [i + 1, tagCopy(decodePacket(encodePacket(probe)), i + 1, plan)] as const));

interface PathSpec {
  /** What the path does to a copy as it leaves hop h (hop 0: the initiator). */
  change?: (packet: Packet, hop: number) => void;
  /** Hops that quote only 28 bytes, that never answer, that drop the copies after quoting. */
  short?: number[];
  silent?: number[];
  dropAfter?: number;
}

/** The copy of `ttl` as it arrives at hop `at` (TTL run down to 1 there), after the changes of the hops before. */
function arriving(ttl: number, at: number, spec: PathSpec): Uint8Array {
  const p = decodePacket(copies.get(ttl)!) as Packet;
  for (let hop = 1; hop < at; hop++) spec.change?.(p, hop);
  if (p.ip.version === 4) p.ip.ttl = ttl - at + 1;
  return encodePacket(p, { computeChecksums: true });
}

function trace(spec: PathSpec, more: Partial<FlowTrace> = {}): FlowTrace {
  const hops: HopObservation[] = [];
  const atResponder: HopObservation[] = [];
  for (let ttl = 1; ttl <= 5; ttl++) {
    const reached = spec.dropAfter === undefined || ttl <= spec.dropAfter;
    if (!reached) continue;
    if (ttl === 5) {
      const bytes = arriving(ttl, 5, spec);
      atResponder.push({ ttl, kind: 'responder', router: RESPONDER, atUs: 0, sent: copies.get(ttl)!, quote: bytes, comparison: { rows: diffSegments(copies.get(ttl)!, bytes), visibility: { quoted: bytes.length, length: bytes.length, ipHeader: true, tcpBytes: bytes.length - 20, options: true, payloadBytes: 0, payloadLength: 0 }, notVisible: [] } });
      continue;
    }
    if (spec.silent?.includes(ttl)) continue;
    const bytes = arriving(ttl, ttl, spec);
    const quote = decodeQuote(spec.short?.includes(ttl) ? bytes.slice(0, 28) : bytes);
    hops.push({ ttl, kind: 'time-exceeded', router: ROUTERS[ttl - 1], atUs: ttl, sent: copies.get(ttl)!, quote: quote.bytes, comparison: compareQuote(copies.get(ttl)!, quote) });
  }
  return {
    test: 'syn-mss', port: 34343, examines: ['option.mss'], reversePath: false, probeSent: true, probeIsSyn: true, copies, hops, atResponder,
    responder: RESPONDER, rounds: 1, unmatched: 0, ownSynAtResponder: atResponder.length > 0, ...more,
  };
}

/** Every router answered some flow: the path as the other flows showed it. */
const fullPath: PathView = { routers: new Map(ROUTERS.map((r, i) => [i + 1, new Set([r])])), responderTtl: 5 };
const clampAt = (box: number) => (p: Packet, hop: number): void => {
  if (hop === box) p.tcp!.options = p.tcp!.options!.map((o) => (o.kind === 2 ? mss(536) : o));
};

describe('where a probe changes', () => {
  it('between the box (the last hop quoting the field as sent: Linux quotes before its own rules) and the next hop', () => {
    const found = locate(trace({ change: clampAt(2) }), fullPath);
    expect(found).toMatchObject({ status: 'changed', fields: ['option.mss'], last: { ttl: 2, address: ROUTERS[1] }, first: { ttl: 3, address: ROUTERS[2] }, rateLimited: [], silent: [], responderHop: 5 });
    expect(found.summary).toBe(`option.mss changed between hop 2 (${ROUTERS[1]}) and hop 3 (${ROUTERS[2]})`);
  });

  it('a box at the last router: first seen changed at the responder', () => {
    expect(locate(trace({ change: clampAt(4) }), fullPath)).toMatchObject({ status: 'changed', last: { ttl: 4 }, first: { ttl: 5, address: RESPONDER, responder: true } });
  });

  it('a 28-byte quote shows no option: that hop is "not visible", never "removed", and the interval spans it', () => {
    const found = locate(trace({ change: clampAt(2), short: [3] }), fullPath);
    expect(found).toMatchObject({ status: 'changed', last: { ttl: 2 }, first: { ttl: 4 }, unknown: [{ ttl: 3, why: 'not-visible' }] });
    expect(found.summary).toContain('(hop 3: not-visible)');
  });

  it('when no hop quotes enough to show the field, it cannot be localised (quotes too short)', () => {
    const found = locate(trace({ change: clampAt(2), short: [1, 2, 3, 4] }), fullPath);
    expect(found).toMatchObject({ status: 'not-localisable', reason: 'quotes-too-short', fields: ['option.mss'] });
    expect(found.summary).toContain('quotes of 28 bytes');
  });

  it('fields inside 28 bytes are still localised by short quotes', () => {
    const remark = (p: Packet, hop: number): void => {
      if (hop === 1 && p.ip.version === 4) p.ip.tos = 8 << 2;
    };
    const found = locate(trace({ change: remark, short: [1, 2, 3, 4] }, { examines: ['ip.dscp'] }), fullPath);
    expect(found).toMatchObject({ status: 'changed', fields: ['ip.dscp'], last: { ttl: 1 }, first: { ttl: 2 } });
  });

  it('a hop that answered other flows but not this one is rate-limited; one that never answered is silent; both are named in the interval', () => {
    const limited = locate(trace({ change: clampAt(2), silent: [3] }), fullPath);
    expect(limited).toMatchObject({ status: 'changed', last: { ttl: 2 }, first: { ttl: 4 }, unknown: [{ ttl: 3, why: 'rate-limited' }], rateLimited: [3], silent: [] });
    const withoutHop3: PathView = { routers: new Map([...fullPath.routers].filter(([ttl]) => ttl !== 3)), responderTtl: 5 };
    expect(locate(trace({ change: clampAt(2), silent: [3] }), withoutHop3)).toMatchObject({ unknown: [{ ttl: 3, why: 'silent' }], rateLimited: [], silent: [3] });
  });

  it('addresses and ports changed only at the responder: a NAT, whose translation quotes never show', () => {
    const nat = (p: Packet, hop: number): void => {
      if (hop === 2) {
        p.ip.src = '198.18.9.9';
        p.tcp!.srcPort = 5000;
      }
    };
    // A NAT translates the quotes back: the routers after it quote the copy as sent.
    const t = trace({});
    const bytes = arriving(5, 5, { change: nat });
    t.atResponder = [{ ...t.atResponder[0], quote: bytes, comparison: { ...t.atResponder[0].comparison, rows: diffSegments(copies.get(5)!, bytes) } }];
    const found = locate({ ...t, examines: ['ip.src', 'tcp.srcPort'] }, fullPath);
    expect(found).toMatchObject({ status: 'not-localisable', reason: 'nat', fields: ['ip.src', 'tcp.srcPort'] });
  });
});

describe('where a probe stops, or who answers for the responder', () => {
  it('dropped: after the last hop that quoted the copies, before the next (its address from the other flows)', () => {
    const found = locate(trace({ dropAfter: 2 }, { ownSynAtResponder: true }), fullPath);
    expect(found).toMatchObject({ status: 'dropped', last: { ttl: 2, address: ROUTERS[1] }, first: { ttl: 3, address: ROUTERS[2] } });
  });

  it('a SYN whose copies never get through but is answered: a proxy, at the hop its answer\'s TTL says', () => {
    expect(routersCrossed(62)).toBe(2);
    expect(routersCrossed(250)).toBe(5);
    const found = locate(trace({ dropAfter: 2 }, { answerTtl: 62 }), fullPath);
    expect(found).toMatchObject({ status: 'proxy', proxy: { hop: 3, address: ROUTERS[2], answerTtl: 62, lastQuote: { ttl: 2 } } });
    // A data segment's copies that stop, on a connection whose own SYN reached the responder: a drop, not a proxy.
    expect(locate(trace({ dropAfter: 2 }, { answerTtl: 62, probeIsSyn: false, ownSynAtResponder: true }), fullPath).status).toBe('dropped');
    expect(locate(trace({ dropAfter: 2 }, { answerTtl: 62, probeIsSyn: false, ownSynAtResponder: false }), fullPath).status).toBe('proxy');
  });

  it('a change seen only at the responder, across a connection a proxy answered (what arrived was its own connection, relaying the payload): the proxy, not a change past the last hop', () => {
    // The box at hop 3 terminates the connection (redirected to itself: hops 3 and 4 never quote) and relays the data, re-cut.
    const relayed = trace({ change: clampAt(3), silent: [3, 4] }, { answerTtl: 62, probeIsSyn: false, ownSynAtResponder: false });
    expect(locate(relayed, fullPath)).toMatchObject({ status: 'proxy', proxy: { hop: 3, answerTtl: 62, lastQuote: { ttl: 2 } } });
    // The same change when the connection itself reached the responder is a change, as before.
    expect(locate({ ...relayed, ownSynAtResponder: true }, fullPath)).toMatchObject({ status: 'changed', last: { ttl: 2 }, first: { ttl: 5 } });
  });

  it('a connection a proxy answered before the probe was ever sent still names the proxy', () => {
    const found = locate({ ...trace({ dropAfter: 0 }), probeSent: false, answerTtl: 63, ownSynAtResponder: false }, fullPath);
    expect(found).toMatchObject({ status: 'proxy', proxy: { hop: 2 } });
    expect(locate({ ...trace({ dropAfter: 0 }), probeSent: false, ownSynAtResponder: false }, fullPath)).toMatchObject({ status: 'not-localisable', reason: 'no-probe' });
  });

  it('a flow behind a NAT whose copies stop after the last router cannot be placed', () => {
    const found = locate(trace({ dropAfter: 4 }, { ownSynAtResponder: true, translated: { sent: '198.18.0.2:40000', received: '198.18.9.9:5000' } }), fullPath);
    expect(found).toMatchObject({ status: 'not-localisable', reason: 'nat' });
  });
});

describe('what cannot be localised', () => {
  it('the reverse path, no quotes at all, rate limiting, and a probe that crossed unchanged', () => {
    expect(locate({ ...trace({}), reversePath: true }, fullPath)).toMatchObject({ status: 'not-localisable', reason: 'reverse-path' });
    const none = trace({ dropAfter: 0 });
    expect(locate(none, { routers: new Map() })).toMatchObject({ status: 'not-localisable', reason: 'no-quotes' });
    expect(locate({ ...none, rounds: 3 }, fullPath)).toMatchObject({ status: 'not-localisable', reason: 'rate-limited', rateLimited: [1, 2, 3, 4] });
    expect(locate(trace({}), fullPath)).toMatchObject({ status: 'unchanged', reason: 'not-reproduced' });
  });
});
