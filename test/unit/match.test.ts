import { describe, expect, it } from 'vitest';
import { matchSegments, type MatchGroup, type MatchRelation, type MatchResult } from '../../shared/match.js';
import { asPacket, concatBytes, decodePacket, encodePacket, TcpFlag, timestamps, mss, type Packet, type TcpHeader } from '../../shared/wire/index.js';
import { loadFixtures } from '../helpers/fixtures.js';

/**
 * Sent and received lists are built from real Linux segments of test/fixtures/linux-segments.txt:
 * the payload of a full-size data segment and of the segment after it (the real byte stream, not a
 * constant fill), re-cut and re-sequenced with the codec the way a path would split, merge, drop,
 * duplicate, reorder or inject them. Every segment is re-encoded with fixed lengths and checksums.
 */
const FIXTURES = new Map(loadFixtures().map((f) => [f.name, f.bytes]));
const real = (name: string): Uint8Array => {
  const bytes = FIXTURES.get(name);
  if (!bytes) throw new Error(`no fixture ${name}`);
  return bytes.slice();
};

type TcpPacket = Packet & { tcp: TcpHeader & { options: NonNullable<TcpHeader['options']> } };
function rewrite(from: string | Uint8Array, change: (p: TcpPacket) => void): Uint8Array {
  const p = asPacket(decodePacket(typeof from === 'string' ? real(from) : from.slice())) as TcpPacket;
  change(p);
  return encodePacket(p, { fixLengths: true, computeChecksums: true });
}

const FULL = 'v4-sack-data-c2s-fullsize'; // seq 1:1449 (relative), 1448 bytes
const NEXT = 'v4-sack-data-c2s-retrans-fullsize'; // seq 1449:2897, the next 1448 bytes of the same stream
const ISN = (decodePacket(real(FULL)).tcp!.seq - 1) >>> 0;
const STREAM = concatBytes([decodePacket(real(FULL)).payload, decodePacket(real(NEXT)).payload]);

/** Stream bytes [offset, offset + length), the real stream repeated past its 2896 bytes. */
const streamBytes = (offset: number, length: number): Uint8Array => Uint8Array.from({ length }, (_, i) => STREAM[(offset + i) % STREAM.length]);

/** The segment carrying stream bytes [offset, offset + length) of a connection with this ISN. */
function seg(offset: number, length: number, isn = ISN, change?: (p: TcpPacket) => void): Uint8Array {
  return rewrite(FULL, (p) => {
    p.tcp.seq = (isn + 1 + offset) >>> 0;
    p.payload = streamBytes(offset, length);
    change?.(p);
  });
}

/** What a router does to every segment: nothing the matching may depend on. */
const hop = (bytes: Uint8Array, change?: (p: TcpPacket) => void): Uint8Array => rewrite(bytes, (p) => {
  if (p.ip.version === 4) {
    p.ip.ttl -= 3;
    p.ip.id = (p.ip.id + 1000) & 0xffff;
  }
  change?.(p);
});

/** Bytes [from, to) of a sent data segment's payload, as the path would cut it. */
const piece = (sent: Uint8Array, from: number, to: number): Uint8Array => hop(sent, (p) => {
  p.tcp.seq = (p.tcp.seq + from) >>> 0;
  p.payload = p.payload.slice(from, to);
});

const shift = (by: number) => (bytes: Uint8Array): Uint8Array => hop(bytes, (p) => void (p.tcp.seq = (p.tcp.seq + by) >>> 0));

function group(sent: number[], received: number[], relations: MatchRelation[], pairs: Array<[number, number]>, payloadIntact?: boolean): MatchGroup {
  const g: MatchGroup = { sent, received, relation: relations[0], relations, pairs };
  if (payloadIntact !== undefined) g.payloadIntact = payloadIntact;
  return g;
}
const oneToOne = (s: number, r: number, payloadIntact = true): MatchGroup => group([s], [r], ['one-to-one'], [[s, r]], payloadIntact);
/** A group without payload (SYN, FIN, pure ACK): no payloadIntact. */
const control = (s: number, r: number): MatchGroup => group([s], [r], ['one-to-one'], [[s, r]]);

function expectResult(result: MatchResult, expected: { groups: MatchGroup[]; dropped?: number[]; injected?: number[]; reordered?: boolean; events?: string[] }): void {
  expect(result.groups).toEqual(expected.groups);
  expect(result.dropped).toEqual(expected.dropped ?? []);
  expect(result.injected).toEqual(expected.injected ?? []);
  expect(result.reordered).toBe(expected.reordered ?? false);
  expect([...result.events].sort()).toEqual([...(expected.events ?? [])].sort());
}

describe('fixture sanity', () => {
  it('the two full-size segments are consecutive pieces of one real stream', () => {
    expect(decodePacket(real(NEXT)).tcp!.seq).toBe((ISN + 1449) >>> 0);
    expect(STREAM.length).toBe(2896);
    expect(new Set(STREAM).size).toBeGreaterThan(200); // not a constant fill: moved bytes would show
  });
});

describe('matchSegments: paths that change nothing', () => {
  it('pairs segments one to one, whatever routers do to TTL and IP ID', () => {
    const sent = [seg(0, 1448), seg(1448, 1448)];
    expectResult(matchSegments(sent, sent.map((s) => hop(s)), { isn: { sent: ISN, received: ISN } }), {
      groups: [oneToOne(0, 0), oneToOne(1, 1)],
    });
  });

  it('matches a whole real handshake-data-FIN flow, control segments included', () => {
    const sent = ['v4-normal-syn', 'v4-normal-ack-c2s', 'v4-normal-data-c2s', 'v4-normal-fin-c2s'].map(real);
    const isn = decodePacket(sent[0]).tcp!.seq;
    expectResult(matchSegments(sent, sent.map((s) => hop(s)), { isn: { sent: isn, received: isn } }), {
      groups: [control(0, 0), control(1, 1), oneToOne(2, 2), control(3, 3)],
    });
  });

  it('an ISN rewrite on the path is invisible once each side\'s ISN is given', () => {
    const sent = ['v4-normal-syn', 'v4-normal-ack-c2s', 'v4-normal-data-c2s', 'v4-normal-fin-c2s'].map(real);
    const isn = decodePacket(sent[0]).tcp!.seq;
    const received = sent.map(shift(12345));
    expectResult(matchSegments(sent, received, { isn: { sent: isn, received: (isn + 12345) >>> 0 } }), {
      groups: [control(0, 0), control(1, 1), oneToOne(2, 2), control(3, 3)],
    });
    // Without the ISNs nothing lines up: every segment reads as dropped and every arrival as injected.
    expectResult(matchSegments(sent, received), { groups: [], dropped: [0, 1, 2, 3], injected: [0, 1, 2, 3], events: ['dropped', 'injected'] });
  });
});

describe('matchSegments: split, coalesced, resegmented', () => {
  it('one full-size segment arriving as two pieces is a split', () => {
    const a = seg(0, 1448);
    expectResult(matchSegments([a], [piece(a, 0, 724), piece(a, 724, 1448)]), {
      groups: [group([0], [0, 1], ['split'], [[0, 0], [0, 1]], true)],
      events: ['split'],
    });
  });

  it('a split piece whose bytes changed leaves the payload not intact', () => {
    const a = seg(0, 1448);
    const second = hop(piece(a, 724, 1448), (p) => {
      p.payload = p.payload.slice();
      p.payload[100] ^= 0xff;
    });
    expect(matchSegments([a], [piece(a, 0, 724), second]).groups).toEqual([group([0], [0, 1], ['split'], [[0, 0], [0, 1]], false)]);
  });

  it('a TFO SYN with data split into the SYN and a data segment without the SYN-only options', () => {
    const syn = real('v4-tfo2-syn-data-tfo-cookie');
    const d = decodePacket(syn);
    expect(d.payload.length).toBe(26);
    const first = hop(syn, (p) => void (p.payload = p.payload.slice(0, 10)));
    const second = hop(syn, (p) => {
      p.tcp.flags = TcpFlag.ACK;
      p.tcp.seq = (p.tcp.seq + 1 + 10) >>> 0;
      p.tcp.options = p.tcp.options.filter((o) => o.kind === 8); // only the timestamps survive
      p.payload = p.payload.slice(10);
    });
    expectResult(matchSegments([syn], [first, second], { isn: { sent: d.tcp!.seq, received: d.tcp!.seq } }), {
      groups: [group([0], [0, 1], ['split'], [[0, 0], [0, 1]], true)],
      events: ['split'],
    });
  });

  it('two sent segments arriving as one is coalesced', () => {
    const sent = [seg(0, 400), seg(400, 400), seg(800, 400)];
    const merged = hop(sent[0], (p) => void (p.payload = streamBytes(0, 800)));
    expectResult(matchSegments(sent, [merged, hop(sent[2])]), {
      groups: [group([0, 1], [0], ['coalesced'], [[0, 0], [1, 0]], true), oneToOne(2, 1)],
      events: ['coalesced'],
    });
  });

  it('different boundaries on both sides is resegmented', () => {
    const sent = [seg(0, 400), seg(400, 400)];
    const received = [seg(0, 300), seg(300, 500)].map((s) => hop(s));
    expectResult(matchSegments(sent, received), {
      groups: [group([0, 1], [0, 1], ['resegmented'], [[0, 0], [0, 1], [1, 1]], true)],
      events: ['resegmented'],
    });
  });

  it('a single segment arriving shorter is one-to-one with the payload not intact (the diff says truncated)', () => {
    const a = seg(0, 1448);
    expectResult(matchSegments([a], [piece(a, 0, 1000)]), { groups: [oneToOne(0, 0, false)] });
  });
});

describe('matchSegments: drops, duplicates, reordering', () => {
  const sent = [seg(0, 500), seg(500, 500), seg(1000, 500)];

  it('a segment nothing arrived for is dropped', () => {
    expectResult(matchSegments(sent, [hop(sent[0]), hop(sent[2])]), {
      groups: [oneToOne(0, 0), oneToOne(2, 1)],
      dropped: [1],
      events: ['dropped'],
    });
  });

  it('a segment arriving twice is duplicated, and the late copy is not a reordering', () => {
    expectResult(matchSegments(sent, [hop(sent[0]), hop(sent[1]), hop(sent[2]), hop(sent[0])]), {
      groups: [group([0], [0, 3], ['duplicated'], [[0, 0], [0, 3]], true), oneToOne(1, 1), oneToOne(2, 2)],
      events: ['duplicated'],
    });
  });

  it('segments arriving out of order are reordered', () => {
    expectResult(matchSegments(sent, [hop(sent[0]), hop(sent[2]), hop(sent[1])]), {
      groups: [oneToOne(0, 0), oneToOne(1, 2), oneToOne(2, 1)],
      reordered: true,
      events: ['reordered'],
    });
  });

  it('a duplicated pure ACK is a duplicate, not an injection', () => {
    const ack = real('v4-bulk-ack-s2c');
    expectResult(matchSegments([ack], [hop(ack), hop(ack)]), {
      groups: [group([0], [0, 1], ['duplicated'], [[0, 0], [0, 1]])],
      events: ['duplicated'],
    });
  });
});

describe('matchSegments: retransmitted vs duplicated vs split', () => {
  const a = seg(0, 1448);
  const b = seg(1448, 1448);

  it('sent once, arrived twice: duplicated', () => {
    expect(matchSegments([a], [hop(a), hop(a)]).groups).toEqual([group([0], [0, 1], ['duplicated'], [[0, 0], [0, 1]], true)]);
  });

  it('sent twice, arrived twice: retransmitted, not duplicated', () => {
    expectResult(matchSegments([a, a], [hop(a), hop(a)]), {
      groups: [group([0, 1], [0, 1], ['retransmitted'], [[0, 0], [1, 1]], true)],
      events: ['retransmitted'],
    });
  });

  it('sent twice, arrived three times: retransmitted and duplicated', () => {
    expect(matchSegments([a, a], [hop(a), hop(a), hop(a)]).groups).toEqual([
      group([0, 1], [0, 1, 2], ['duplicated', 'retransmitted'], [[0, 0], [1, 1], [1, 2]], true),
    ]);
  });

  it('sent once, arrived as two pieces: split', () => {
    expect(matchSegments([a], [piece(a, 0, 724), piece(a, 724, 1448)]).groups).toEqual([group([0], [0, 1], ['split'], [[0, 0], [0, 1]], true)]);
  });

  it('the first copy lost, the identical retransmission arrived: the first copy is the dropped one', () => {
    // Sent A, B, then A again; B and the retransmitted A arrive: no reordering happened.
    expectResult(matchSegments([a, b, a], [hop(b), hop(a)]), {
      groups: [group([0, 2], [1], ['retransmitted'], [[2, 1]], true), oneToOne(1, 0)],
      dropped: [0],
      events: ['retransmitted', 'dropped'],
    });
    // Sent A, B, then A again; A and B arrive in order: the retransmission is the copy missing.
    expectResult(matchSegments([a, b, a], [hop(a), hop(b)]), {
      groups: [group([0, 2], [0], ['retransmitted'], [[0, 0]], true), oneToOne(1, 1)],
      dropped: [2],
      events: ['retransmitted', 'dropped'],
    });
  });

  it('a retransmission with different bytes: the bytes tell which copy arrived', () => {
    const first = seg(0, 500);
    const second = seg(0, 500, ISN, (p) => {
      p.payload = p.payload.slice();
      p.payload.fill(0x41, 100, 200);
    });
    expectResult(matchSegments([first, second], [hop(second)]), {
      groups: [group([0, 1], [0], ['retransmitted'], [[1, 0]], true)],
      dropped: [0],
      events: ['retransmitted', 'dropped'],
    });
    expectResult(matchSegments([first, second], [hop(first)]), {
      groups: [group([0, 1], [0], ['retransmitted'], [[0, 0]], true)],
      dropped: [1],
      events: ['retransmitted', 'dropped'],
    });
    // A normaliser that makes the retransmission carry the first copy's bytes: both copies arrive,
    // the second no longer as sent.
    expectResult(matchSegments([first, second], [hop(first), hop(first)]), {
      groups: [group([0, 1], [0, 1], ['retransmitted'], [[0, 0], [1, 1]], false)],
      events: ['retransmitted'],
    });
  });

  it('a SYN retransmitted with a new timestamp: the options tell which copy arrived', () => {
    const syn1 = real('v4-normal-syn');
    const syn2 = rewrite(syn1, (p) => void (p.tcp.options[2] = timestamps(902904400, 0)));
    const isn = decodePacket(syn1).tcp!.seq;
    expectResult(matchSegments([syn1, syn2], [hop(syn1)], { isn: { sent: isn, received: isn } }), {
      groups: [group([0, 1], [0], ['retransmitted'], [[0, 0]])],
      dropped: [1],
      events: ['retransmitted', 'dropped'],
    });
    // With its MSS clamped on the way, the copy that arrived matches neither exactly: the later one is assumed.
    const clamped = hop(syn1, (p) => void (p.tcp.options[0] = mss(1400)));
    expect(matchSegments([syn1, syn2], [clamped], { isn: { sent: isn, received: isn } }).dropped).toEqual([0]);
  });

  it('retransmitted and the arriving copy split', () => {
    expectResult(matchSegments([a, a], [piece(a, 0, 724), piece(a, 724, 1448)]), {
      groups: [group([0, 1], [0, 1], ['split', 'retransmitted'], [[1, 0], [1, 1]], true)],
      dropped: [0],
      events: ['split', 'retransmitted', 'dropped'],
    });
  });
});

describe('matchSegments: injected segments', () => {
  it('an ACK generated by a middlebox beside the real one', () => {
    // Responder -> initiator: the responder sent one ACK; a proxy also ACKed the data itself
    // (same sequence and ack numbers, its own window, no timestamps), and that arrived first.
    const real_ = real('v4-bulk-ack-s2c');
    const forged = rewrite(real_, (p) => {
      p.tcp.window = 65535;
      p.tcp.options = [];
    });
    expectResult(matchSegments([real_], [forged, hop(real_)]), {
      groups: [control(0, 1)],
      injected: [0],
      events: ['injected'],
    });
  });

  it('a forged ACK is still told from the real one when the real one\'s ack number was rewritten', () => {
    const real_ = real('v4-bulk-ack-s2c');
    const ack = decodePacket(real_).tcp!.ack;
    const rewritten = hop(real_, (p) => void (p.tcp.ack = (p.tcp.ack - 777) >>> 0));
    const forged = rewrite(rewritten, (p) => {
      p.tcp.window = 65535;
      p.tcp.options = [];
    });
    const expected = { groups: [control(0, 1)], injected: [0], events: ['injected'] };
    expectResult(matchSegments([real_], [forged, rewritten]), expected);
    const initiatorIsn = (ack - 1449) >>> 0;
    expectResult(matchSegments([real_], [forged, rewritten], { ackIsn: { sent: initiatorIsn, received: (initiatorIsn - 777) >>> 0 } }), expected);
  });

  it('a forged RST', () => {
    const data = seg(0, 500);
    const rst = rewrite(data, (p) => {
      p.tcp.seq = (p.tcp.seq + 500) >>> 0;
      p.tcp.flags = TcpFlag.RST | TcpFlag.ACK;
      p.tcp.options = [];
      p.payload = new Uint8Array(0);
    });
    expectResult(matchSegments([data], [hop(data), rst]), {
      groups: [oneToOne(0, 0)],
      injected: [1],
      events: ['injected'],
    });
  });

  it('content injected at the sequence numbers of real data (racing it) is injected, the real data intact', () => {
    const data = real('v4-normal-data-c2s');
    const blockPage = (length: number): Uint8Array => rewrite(data, (p) => void (p.payload = new TextEncoder().encode('HTTP/1.1 403 Forbidden\r\n\r\nblocked'.padEnd(length, '.').slice(0, length))));
    // Same length as the real segment, then longer than it.
    for (const forged of [blockPage(23), blockPage(60)]) {
      expectResult(matchSegments([data], [forged, hop(data)]), {
        groups: [oneToOne(0, 1)],
        injected: [0],
        events: ['injected'],
      });
    }
  });

  it('a segment with no counterpart at all', () => {
    const sent = [seg(0, 500)];
    expectResult(matchSegments(sent, [hop(sent[0]), seg(2000, 100)]), {
      groups: [oneToOne(0, 0)],
      injected: [1],
      events: ['injected'],
    });
  });
});

describe('matchSegments: payload stripped on the way', () => {
  it('a data segment arriving with no payload is that segment, not a drop plus an injected ACK', () => {
    const sent = [real('v4-normal-ack-c2s'), real('v4-normal-data-c2s')];
    const isn = (decodePacket(sent[1]).tcp!.seq - 1) >>> 0;
    const stripped = hop(sent[1], (p) => void (p.payload = new Uint8Array(0)));
    expectResult(matchSegments(sent, [hop(sent[0]), stripped], { isn: { sent: isn, received: isn } }), {
      groups: [control(0, 0), oneToOne(1, 1, false)],
    });
  });

  it('a TFO SYN arriving without its data is one group with the payload not intact, not a drop plus an injection', () => {
    const syn = real('v4-tfo2-syn-data-tfo-cookie');
    const stripped = hop(syn, (p) => void (p.payload = new Uint8Array(0)));
    const isn = decodePacket(syn).tcp!.seq;
    expectResult(matchSegments([syn], [stripped], { isn: { sent: isn, received: isn } }), { groups: [oneToOne(0, 0, false)] });
  });
});

describe('matchSegments: sequence numbers wrapping past 2^32', () => {
  it('absolute numbers: a segment that wraps, split into pieces on either side of 0', () => {
    const isn = 0xfffffdff; // the data starts at 0xfffffe00 and wraps inside the segment
    const a = seg(0, 1448, isn);
    const pieces = [piece(a, 0, 724), piece(a, 724, 1448)];
    expect(decodePacket(pieces[1]).tcp!.seq).toBe((0xfffffe00 + 724) >>> 0);
    expect(decodePacket(pieces[1]).tcp!.seq).toBeLessThan(1000);
    expectResult(matchSegments([a], pieces), { groups: [group([0], [0, 1], ['split'], [[0, 0], [0, 1]], true)], events: ['split'] });
  });

  it('relative numbers: the sender wraps, the ISN-rewritten receiver side does not', () => {
    const isn = 0xfffff800;
    const sent = [seg(0, 1448, isn), seg(1448, 1448, isn), seg(2896, 448, isn)];
    // sent[1] spans the wrap (0xfffffda9 .. 0x00000351), sent[2] is after it.
    expect(decodePacket(sent[1]).tcp!.seq).toBe(0xfffffda9);
    expect(decodePacket(sent[2]).tcp!.seq).toBe(0x351);
    const received = [sent[0], sent[1], sent[1], sent[2]].map(shift((0x7fff0000 - isn) >>> 0));
    received[1] = piece(received[1], 0, 1000);
    received[2] = piece(received[2], 1000, 1448);
    expectResult(matchSegments(sent, received, { isn: { sent: isn, received: 0x7fff0000 } }), {
      groups: [oneToOne(0, 0), group([1], [1, 2], ['split'], [[1, 1], [1, 2]], true), oneToOne(2, 3)],
      events: ['split'],
    });
  });

  it('coalescing across the wrap, with reordering', () => {
    const isn = 0xfffffa00;
    const sent = [seg(0, 1000, isn), seg(1000, 1000, isn), seg(2000, 800, isn)];
    const merged = hop(sent[0], (p) => void (p.payload = streamBytes(0, 2000)));
    expectResult(matchSegments(sent, [hop(sent[2]), merged], { isn: { sent: isn, received: isn } }), {
      groups: [group([0, 1], [1], ['coalesced'], [[0, 1], [1, 1]], true), oneToOne(2, 0)],
      reordered: true,
      events: ['coalesced', 'reordered'],
    });
  });
});
