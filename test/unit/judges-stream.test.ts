import { recorded } from '../helpers/recordings.js';
import { describe, expect, it } from 'vitest';
import { asPacket, encodePacket, type Packet } from '../../shared/wire/packet.js';
import { TcpFlag, type TcpHeader } from '../../shared/wire/tcp.js';
import { nop, OptionKind, sack, timestamps, type TcpOption } from '../../shared/wire/tcp-options.js';
import { observe, type Observed } from '../../initiator/observed.js';
import type { TestCase, TestObservations } from '../../initiator/test-case.js';
import { ackHole } from '../../initiator/catalogue/ack-hole.js';
import { coalesce } from '../../initiator/catalogue/coalesce.js';
import { proactiveAck } from '../../initiator/catalogue/proactive-ack.js';
import { retransmitInconsistent } from '../../initiator/catalogue/retransmit-inconsistent.js';
import { sackBlocks } from '../../initiator/catalogue/sack-blocks.js';
import { seqHole } from '../../initiator/catalogue/seq-hole.js';
import { split } from '../../initiator/catalogue/split.js';

/**
 * The stream judges on observations built from segments recorded across the lab
 * (test/fixtures/observations.json): the handshake of a recorded `data-unknown-option` run as it was
 * on the wire (clean path, or through the SYNPROXY, which translates the responder's sequence
 * numbers), then data-phase segments made from that run's own data segment and ACK with the codec
 * (decode, change, encode with lengths and checksums fixed), as each kind of middlebox would leave
 * them. Sequence numbers are given relative to the ISNs (1 = first data byte).
 */
const load = recorded;

const flagsOf = (o: Observed): number => o.packet.tcp?.flags ?? 0;
const u32 = (n: number): number => n >>> 0;
type Segment = Packet & { tcp: TcpHeader };

/** A copy of a recorded segment with fields changed, re-encoded with lengths and checksums fixed. */
function rewrite(o: Observed, change: (p: Segment) => void, atUs = o.atUs): Observed {
  const p = asPacket(o.packet)!;
  const copy: Segment = { ...p, ip: { ...p.ip }, tcp: { ...p.tcp!, options: p.tcp!.options?.slice(), checksum: undefined, dataOffset: undefined } };
  if (copy.ip.version === 4) copy.ip.checksum = undefined;
  change(copy);
  return observe(encodePacket(copy, { fixLengths: true, computeChecksums: true }), atUs);
}
const hop = (p: Segment): void => {
  if (p.ip.version === 4) p.ip.ttl -= 1;
  else p.ip.hopLimit -= 1;
};

interface Spec {
  /** Relative to the sender's ISN. */
  seq: number;
  /** Relative to the receiver's ISN as the sender sees it; undefined = 1 (nothing but the SYN acknowledged). */
  ack?: number;
  flags?: number;
  payload?: Uint8Array;
  options?: TcpOption[];
  ipId?: number;
}

/**
 * A recorded handshake and a data phase built on it. The path translates sequence numbers the way the
 * base recording's path did (nothing on the clean path; the responder's ISN offset through the SYNPROXY).
 */
class Scenario {
  readonly obs: TestObservations;
  private t: number;
  private ipIds = 0;
  private readonly dataTemplate: Observed;
  private readonly ackTemplate: Observed;
  /** The initiator's ISN (as sent and at the responder) and the responder's (as it sent it and as the initiator saw it). */
  readonly isn: { sent: number; atResponder: number };
  readonly peer: { own: number; seen: number };

  constructor(test: TestCase, profile: 'clean' | 'synproxy' = 'clean') {
    const base = load(profile, 'data-unknown-option');
    const responder = base.responder!;
    const synAck = (list: Observed[]): number => list.find((o) => flagsOf(o) === (TcpFlag.SYN | TcpFlag.ACK))!.packet.tcp!.seq;
    this.isn = { sent: base.isn, atResponder: responder.received.find((o) => flagsOf(o) === TcpFlag.SYN)!.packet.tcp!.seq };
    this.peer = { own: synAck(responder.sent), seen: synAck(base.initiator.received) };
    this.dataTemplate = base.initiator.sent.find((o) => o.packet.payload.length > 0)!;
    this.ackTemplate = responder.sent.find((o) => flagsOf(o) === TcpFlag.ACK)!;
    // The handshake of the recording: SYN, SYN-ACK, and the ACKs of nothing but the SYNs (the third
    // ACK; through the SYNPROXY also its window update to the initiator).
    const handshake = (list: Observed[], seqIsn: number, ackIsn: number): Observed[] =>
      list.filter((o) => {
        const tcp = o.packet.tcp!;
        if (tcp.flags & TcpFlag.SYN) return true;
        return tcp.flags === TcpFlag.ACK && o.packet.payload.length === 0 && tcp.seq === u32(seqIsn + 1) && tcp.ack === u32(ackIsn + 1);
      });
    this.obs = {
      ...base,
      name: test.name,
      initiator: { sent: handshake(base.initiator.sent, this.isn.sent, this.peer.seen), received: handshake(base.initiator.received, this.peer.seen, this.isn.sent) },
      responder: { sent: handshake(responder.sent, this.peer.own, this.isn.atResponder), received: handshake(responder.received, this.isn.atResponder, this.peer.own) },
    };
    this.t = Math.max(...[...base.initiator.sent, ...base.initiator.received, ...responder.sent, ...responder.received].map((o) => o.atUs));
  }

  private tick(): number {
    this.t += 100;
    return this.t;
  }

  private build(template: Observed, spec: Spec, seqIsn: number, ackIsn: number, options: TcpOption[] | undefined): Observed {
    return rewrite(template, (p) => {
      p.tcp.seq = u32(seqIsn + spec.seq);
      p.tcp.ack = u32(ackIsn + (spec.ack ?? 1));
      p.tcp.flags = spec.flags ?? (spec.payload?.length ? TcpFlag.ACK | TcpFlag.PSH : TcpFlag.ACK);
      p.tcp.options = options ?? spec.options ?? [];
      p.payload = spec.payload ?? new Uint8Array(0);
      if (p.ip.version === 4) p.ip.id = spec.ipId ?? 20000 + this.ipIds++;
    }, this.tick());
  }

  /** The initiator sends a segment. */
  send(spec: Spec): Observed {
    const o = this.build(this.dataTemplate, spec, this.isn.sent, this.peer.seen, undefined);
    this.obs.initiator.sent.push(o);
    return o;
  }

  /** What the path delivers to the responder of a segment the initiator sent: translated, one hop on, then `change`d. */
  arrive(o: Observed, change: (p: Segment) => void = () => {}): Observed {
    const r = rewrite(o, (p) => {
      hop(p);
      p.tcp.seq = u32(p.tcp.seq - this.isn.sent + this.isn.atResponder);
      p.tcp.ack = u32(p.tcp.ack - this.peer.seen + this.peer.own);
      const view = p.tcp.options?.findIndex((x) => x.kind === OptionKind.SACK) ?? -1;
      if (view >= 0) p.tcp.options![view] = translateSack(p.tcp.options![view], this.peer.own - this.peer.seen);
      change(p);
    }, this.tick());
    this.obs.responder!.received.push(r);
    return r;
  }

  /** The responder sends a segment. */
  reply(spec: Spec): Observed {
    const o = this.build(this.ackTemplate, spec, this.peer.own, this.isn.atResponder, undefined);
    this.obs.responder!.sent.push(o);
    return o;
  }

  /** What the path delivers to the initiator of a segment the responder sent. */
  deliver(o: Observed, change: (p: Segment) => void = () => {}): Observed {
    const r = rewrite(o, (p) => {
      hop(p);
      p.tcp.seq = u32(p.tcp.seq - this.peer.own + this.peer.seen);
      p.tcp.ack = u32(p.tcp.ack - this.isn.atResponder + this.isn.sent);
      change(p);
    }, this.tick());
    this.obs.initiator.received.push(r);
    return r;
  }

  /** A segment only the initiator receives: made on the path, in the responder's name. */
  forge(spec: Spec): Observed {
    const o = this.build(this.ackTemplate, spec, this.peer.seen, this.isn.sent, undefined);
    this.obs.initiator.received.push(o);
    return o;
  }

  /** The responder's ACK of a data segment as it arrived (ack = seq + length), delivered to the initiator. */
  ackData(arrived: Observed): Observed {
    const seq = u32(arrived.packet.tcp!.seq - this.isn.atResponder);
    const answer = this.reply({ seq: u32(arrived.packet.tcp!.ack - this.peer.own), ack: seq + arrived.packet.payload.length });
    return this.deliver(answer);
  }
}

function translateSack(option: TcpOption, by: number): TcpOption {
  const blocks: Array<[number, number]> = [];
  for (let i = 0; i + 8 <= option.data.length; i += 8) {
    const view = new DataView(option.data.buffer, option.data.byteOffset + i, 8);
    blocks.push([u32(view.getUint32(0) + by), u32(view.getUint32(4) + by)]);
  }
  return sack(blocks);
}

const bytes = (length: number, from = 0x61): Uint8Array => Uint8Array.from({ length }, (_, i) => from + (i % 26));
const ts = (value: number, echo = 0): TcpOption[] => [nop(), nop(), timestamps(value, echo)];
const payloadOf = (p: Segment, data: Uint8Array): void => {
  p.payload = data;
};

const STREAM_TESTS = [proactiveAck, split, coalesce, seqHole, ackHole, retransmitInconsistent, sackBlocks];

describe('stream test cases', () => {
  it('declare their verdicts as the design names them, the first meaning no interference', () => {
    expect(Object.fromEntries(STREAM_TESTS.map((t) => [t.name, t.verdicts]))).toEqual({
      'proactive-ack': ['none', 'acked-by-middlebox'],
      split: ['intact', 'split'],
      coalesce: ['intact', 'coalesced'],
      'seq-hole': ['passed', 'held'],
      'ack-hole': ['passed', 'corrected'],
      'retransmit-inconsistent': ['new-data', 'old-data', 'resized'],
      'sack-blocks': ['passed', 'translated', 'untranslated', 'removed'],
    });
    expect(proactiveAck.plan).toEqual({ withholdAck: true });
    expect(retransmitInconsistent.plan).toEqual({ withholdAck: true });
    expect(sackBlocks.plan).toEqual({ sendBytes: 2400 });
  });

  it.each(STREAM_TESTS.map((t) => [t.name, t] as const))('%s: without the responder\'s view the verdict is inconclusive', (_n, test) => {
    const s = new Scenario(test);
    expect(test.judge({ ...s.obs, responder: undefined }).verdict).toBe('inconclusive');
  });

  it.each(STREAM_TESTS.map((t) => [t.name, t] as const))('%s: a RST the responder never sent is a reset', (_n, test) => {
    const s = new Scenario(test);
    s.send({ seq: 1, payload: bytes(100) });
    s.forge({ seq: 1, ack: 1, flags: TcpFlag.RST | TcpFlag.ACK });
    expect(test.judge(s.obs).verdict).toBe('reset');
  });
});

describe('proactive-ack', () => {
  const probe = (s: Scenario): Observed => s.send({ seq: 1, payload: bytes(100), options: ts(1000, 2000) });

  it('none: the data arrived and nothing acknowledged it', () => {
    const s = new Scenario(proactiveAck);
    s.arrive(probe(s));
    expect(proactiveAck.judge(s.obs)).toMatchObject({ verdict: 'none', detail: { dataReachedResponder: true, middleboxAcks: [] } });
  });

  it('acked-by-middlebox: an ACK of the data that the responder never sent (a split-connection proxy)', () => {
    const s = new Scenario(proactiveAck);
    s.arrive(probe(s));
    s.forge({ seq: 1, ack: 101, options: ts(777, 1000) });
    expect(proactiveAck.judge(s.obs)).toMatchObject({ verdict: 'acked-by-middlebox', detail: { middleboxAcks: [{ ackedBytes: 100, coversProbe: true }] } });
  });

  it('acked-by-middlebox also when the box never passed the data on', () => {
    const s = new Scenario(proactiveAck);
    probe(s);
    s.forge({ seq: 1, ack: 51 });
    expect(proactiveAck.judge(s.obs)).toMatchObject({ verdict: 'acked-by-middlebox', detail: { dataReachedResponder: false, middleboxAcks: [{ ackedBytes: 50, coversProbe: false }] } });
  });

  it('a duplicate ACK of the handshake (a SYN proxy\'s window update) is not an ACK of the data', () => {
    const s = new Scenario(proactiveAck, 'synproxy');
    s.arrive(probe(s));
    s.forge({ seq: 1 });
    s.forge({ seq: 1 });
    expect(proactiveAck.judge(s.obs).verdict).toBe('none');
  });

  it('an ACK the responder did send (it ignored the plan) is not the middlebox\'s', () => {
    const s = new Scenario(proactiveAck);
    const arrived = s.arrive(probe(s));
    s.ackData(arrived);
    expect(proactiveAck.judge(s.obs)).toMatchObject({ verdict: 'none', detail: { responderAcks: 1 } });
  });

  it('dropped: the data never arrived and nothing acknowledged it', () => {
    const s = new Scenario(proactiveAck);
    probe(s);
    expect(proactiveAck.judge(s.obs).verdict).toBe('dropped');
  });
});

describe('split', () => {
  const FULL = 1448;
  const probe = (s: Scenario): Observed => s.send({ seq: 1, payload: bytes(FULL), options: ts(5000, 6000) });

  it('intact: the full-size segment arrived as sent, options included', () => {
    const s = new Scenario(split);
    s.ackData(s.arrive(probe(s)));
    expect(split.judge(s.obs)).toMatchObject({ verdict: 'intact', detail: { pieceCount: 1, pieceSizes: [FULL], pieces: [{ offset: 0, length: FULL, optionsAsSent: true }] } });
  });

  it('split: two pieces with the right sequence numbers; which options each carried', () => {
    const s = new Scenario(split);
    const sent = probe(s);
    const first = s.arrive(sent, (p) => {
      p.payload = p.payload.slice(0, 1000);
      p.tcp.flags = TcpFlag.ACK;
    });
    const second = s.arrive(sent, (p) => {
      p.tcp.seq = u32(p.tcp.seq + 1000);
      p.payload = p.payload.slice(1000);
      p.tcp.options = [];
    });
    s.ackData(first);
    s.ackData(second);
    const judged = split.judge(s.obs);
    expect(judged).toMatchObject({
      verdict: 'split',
      detail: {
        pieceCount: 2,
        pieceSizes: [1000, 448],
        pieces: [
          { offset: 0, length: 1000, flags: '.', optionsAsSent: true },
          { offset: 1000, length: 448, flags: 'P.', options: [], optionsAsSent: false },
        ],
      },
    });
    expect((judged.detail.pieces as Array<{ options: string[] }>)[0].options).toEqual(['nop', 'nop', 'TS val 5000 ecr 6000']);
  });

  it('split pieces that arrive out of order are listed in arrival order; a lost piece still makes a split', () => {
    const s = new Scenario(split);
    const sent = probe(s);
    s.ackData(s.arrive(sent, (p) => {
      p.tcp.seq = u32(p.tcp.seq + 724);
      p.payload = p.payload.slice(724);
    }));
    s.ackData(s.arrive(sent, (p) => {
      p.payload = p.payload.slice(0, 724);
    }));
    expect(split.judge(s.obs)).toMatchObject({ verdict: 'split', detail: { pieces: [{ offset: 724 }, { offset: 0 }] } });
    const lost = new Scenario(split);
    lost.ackData(lost.arrive(probe(lost), (p) => {
      p.payload = p.payload.slice(0, 724);
    }));
    expect(split.judge(lost.obs).verdict).toBe('split');
  });

  it('a retransmitted probe arriving twice, and a duplicate ACK, are not a split', () => {
    const s = new Scenario(split);
    const sent = probe(s);
    s.arrive(sent);
    const again = s.send({ seq: 1, payload: bytes(FULL), options: ts(5000, 6000) });
    const arrived = s.arrive(again);
    const ack = s.ackData(arrived);
    s.obs.initiator.received.push(ack);
    expect(split.judge(s.obs)).toMatchObject({ verdict: 'intact', detail: { pieceCount: 1, pieceSizes: [FULL, FULL] } });
  });

  it('through a box rewriting the responder\'s sequence numbers, intact stays intact', () => {
    const s = new Scenario(split, 'synproxy');
    s.ackData(s.arrive(probe(s)));
    expect(split.judge(s.obs).verdict).toBe('intact');
  });
});

describe('coalesce', () => {
  /** Both bursts as the test sends them: 4 x 100 bytes in order, then 4 more with the first sent last. */
  const bursts = (s: Scenario): Observed[] => {
    const sent: Observed[] = [];
    for (const [b, order] of [[0, 1, 2, 3], [1, 2, 3, 0]].entries()) {
      for (const i of order) sent.push(s.send({ seq: 1 + b * 400 + i * 100, payload: bytes(100, 0x41 + i), options: ts(9000 + b) }));
    }
    return sent;
  };

  it('intact: every segment arrived as sent (the second burst in its sending order)', () => {
    const s = new Scenario(coalesce);
    for (const o of bursts(s)) s.ackData(s.arrive(o));
    expect(coalesce.judge(s.obs)).toMatchObject({
      verdict: 'intact',
      detail: { bursts: [{ burst: 'in-order', segmentsReceived: 4, coalesced: false }, { burst: 'first-last', sentOffsets: [100, 200, 300, 0], segmentsReceived: 4, coalesced: false, arrivedInOrder: false }] },
    });
  });

  it('coalesced: a box queued the second burst until its first segment came and passed it on as one segment', () => {
    const s = new Scenario(coalesce);
    const sent = bursts(s);
    for (const o of sent.slice(0, 4)) s.ackData(s.arrive(o));
    const merged = s.arrive(sent[7], (p) => {
      p.payload = Uint8Array.from([sent[7], ...sent.slice(4, 7)].flatMap((o) => [...o.packet.payload]));
    });
    s.ackData(merged);
    expect(coalesce.judge(s.obs)).toMatchObject({
      verdict: 'coalesced',
      detail: { bursts: [{ coalesced: false }, { burst: 'first-last', coalesced: true, segmentsReceived: 1, received: [{ offset: 0, length: 400 }], arrivedInOrder: true }] },
    });
  });

  it('coalesced: the in-order burst merged in pairs', () => {
    const s = new Scenario(coalesce);
    const sent = bursts(s);
    s.arrive(sent[0], (p) => payloadOf(p, new Uint8Array([...sent[0].packet.payload, ...sent[1].packet.payload])));
    s.arrive(sent[2], (p) => payloadOf(p, new Uint8Array([...sent[2].packet.payload, ...sent[3].packet.payload])));
    for (const o of sent.slice(4)) s.arrive(o);
    s.ackData(s.obs.responder!.received.at(-1)!);
    expect(coalesce.judge(s.obs)).toMatchObject({ verdict: 'coalesced', detail: { bursts: [{ coalesced: true, received: [{ offset: 0, length: 200 }, { offset: 200, length: 200 }] }, { coalesced: false }] } });
  });

  it('a duplicated segment, a reordered arrival and a duplicate ACK are not coalescing', () => {
    const s = new Scenario(coalesce);
    const sent = bursts(s);
    const order = [1, 0, 2, 3, 4, 5, 6, 7];
    for (const i of order) s.arrive(sent[i]);
    s.arrive(sent[2]);
    const ack = s.ackData(s.obs.responder!.received.at(-1)!);
    s.obs.initiator.received.push(ack);
    expect(coalesce.judge(s.obs)).toMatchObject({ verdict: 'intact', detail: { bursts: [{ arrivedInOrder: false }, {}] } });
  });

  it('a segment that never arrived (lost on the path, also when resent) makes it inconclusive, never intact', () => {
    const s = new Scenario(coalesce);
    const sent = bursts(s);
    for (const o of sent.filter((_, i) => i !== 5)) s.ackData(s.arrive(o));
    expect(coalesce.judge(s.obs)).toMatchObject({ verdict: 'inconclusive', detail: { bursts: [{ undelivered: [] }, { undelivered: [200] }] } });
  });

  it('a second burst never sent is inconclusive', () => {
    const s = new Scenario(coalesce);
    for (const o of bursts(s).slice(0, 4)) s.ackData(s.arrive(o));
    s.obs.initiator.sent.splice(s.obs.initiator.sent.length - 4, 4);
    expect(coalesce.judge(s.obs).verdict).toBe('inconclusive');
  });
});

describe('seq-hole', () => {
  const postHole = (s: Scenario): Observed => s.send({ seq: 101, payload: bytes(100, 0x41), options: ts(100) });
  const filler = (s: Scenario): Observed => s.send({ seq: 1, payload: bytes(100), options: ts(400) });

  it('passed: the segment after the hole reached the responder before the hole was filled', () => {
    const s = new Scenario(seqHole);
    s.ackData(s.arrive(postHole(s)));
    s.ackData(s.arrive(filler(s)));
    expect(seqHole.judge(s.obs)).toMatchObject({ verdict: 'passed', detail: { postHoleArrivedFirst: true, arrivals: [{ offset: 100, length: 100 }, { offset: 0, length: 100 }], holeAcks: [] } });
  });

  it('held: a split-connection proxy ACKed back to the hole (with SACK) and passed the bytes on only once the hole was filled', () => {
    const s = new Scenario(seqHole);
    const beyond = postHole(s);
    s.forge({ seq: 1, ack: 1, options: [nop(), nop(), sack([[u32(s.isn.sent + 101), u32(s.isn.sent + 201)]])] });
    const fill = filler(s);
    s.forge({ seq: 1, ack: 201 });
    const both = s.arrive(fill, (p) => payloadOf(p, new Uint8Array([...fill.packet.payload, ...beyond.packet.payload])));
    s.ackData(both);
    expect(seqHole.judge(s.obs)).toMatchObject({ verdict: 'held', detail: { postHoleArrivedFirst: false, arrivals: [{ offset: 0, length: 200 }], holeAcks: [{ sack: [[100, 200]] }] } });
  });

  it('held: the segment after the hole arrived only after the filler', () => {
    const s = new Scenario(seqHole);
    const beyond = postHole(s);
    s.ackData(s.arrive(filler(s)));
    s.ackData(s.arrive(beyond));
    expect(seqHole.judge(s.obs)).toMatchObject({ verdict: 'held', detail: { arrivals: [{ offset: 0 }, { offset: 100 }], holeAcks: [] } });
  });

  it('arrival order is the responder\'s clock, not the order of the list; a duplicate ACK is no hole ACK', () => {
    const s = new Scenario(seqHole);
    const ack = s.ackData(s.arrive(postHole(s)));
    s.obs.initiator.received.push(ack);
    s.ackData(s.arrive(filler(s)));
    s.obs.responder!.received.reverse();
    expect(seqHole.judge(s.obs).verdict).toBe('passed');
  });

  it('an ACK at the hole before the segment after it was sent (a SYN proxy\'s window update) is no hole ACK', () => {
    const s = new Scenario(seqHole, 'synproxy');
    const windowUpdates = s.obs.initiator.received.filter((o) => flagsOf(o) === TcpFlag.ACK && o.packet.tcp!.ack === u32(s.isn.sent + 1));
    expect(windowUpdates).toHaveLength(1);
    const beyond = postHole(s);
    s.ackData(s.arrive(filler(s)));
    s.ackData(s.arrive(beyond));
    expect(seqHole.judge(s.obs)).toMatchObject({ verdict: 'held', detail: { holeAcks: [] } });
    const lost = new Scenario(seqHole, 'synproxy');
    postHole(lost);
    lost.ackData(lost.arrive(filler(lost)));
    expect(seqHole.judge(lost.obs).verdict).toBe('dropped');
  });
});

describe('ack-hole', () => {
  const probe = (s: Scenario): Observed => s.send({ seq: 1, ack: 1001, payload: bytes(100), options: ts(42) });

  it('passed: the ack beyond anything sent reached the responder unchanged', () => {
    const s = new Scenario(ackHole);
    s.ackData(s.arrive(probe(s)));
    expect(ackHole.judge(s.obs)).toMatchObject({ verdict: 'passed', detail: { ackAhead: 1000, sentAck: 1001, receivedAcks: [1001] } });
  });

  it('corrected: a normaliser lowered the ack to what the responder had sent', () => {
    const s = new Scenario(ackHole);
    s.ackData(s.arrive(probe(s), (p) => {
      p.tcp.ack = u32(s.peer.own + 1);
    }));
    expect(ackHole.judge(s.obs)).toMatchObject({ verdict: 'corrected', detail: { sentAck: 1001, receivedAcks: [1], change: -1000 } });
  });

  it('a box translating the responder\'s sequence numbers consistently is not a correction; a retransmitted probe neither', () => {
    const s = new Scenario(ackHole, 'synproxy');
    expect(s.peer.own).not.toBe(s.peer.seen);
    s.arrive(probe(s));
    s.ackData(s.arrive(probe(s)));
    expect(ackHole.judge(s.obs)).toMatchObject({ verdict: 'passed', detail: { receivedAcks: [1001, 1001] } });
  });

  it('a probe that bypassed a proxy reaches a responder with no handshake on that flow: acks compared as they are', () => {
    const s = new Scenario(ackHole);
    const sent = probe(s);
    s.obs.responder!.sent = [];
    s.ackData(s.arrive(sent));
    expect(ackHole.judge(s.obs)).toMatchObject({ verdict: 'passed', detail: { frame: 'absolute', sentAck: sent.packet.tcp!.ack } });
  });

  it('dropped: a stateful firewall dropped every copy', () => {
    const s = new Scenario(ackHole);
    probe(s);
    probe(s);
    expect(ackHole.judge(s.obs)).toMatchObject({ verdict: 'dropped', detail: { probesSent: 2, probesReceived: 0 } });
  });
});

describe('retransmit-inconsistent', () => {
  const xor = (data: Uint8Array, k: number): Uint8Array => data.map((b) => b ^ k);
  const original = bytes(150);
  /** The original and its three retransmissions, as the test sends them (distinct IP IDs and timestamps). */
  const transmissions = (s: Scenario): Observed[] => [
    s.send({ seq: 1, payload: original.slice(0, 100), options: ts(1), ipId: 1001 }),
    s.send({ seq: 1, payload: xor(original.slice(0, 100), 1), options: ts(2), ipId: 1002 }),
    s.send({ seq: 1, payload: xor(original, 2), options: ts(3), ipId: 1003 }),
    s.send({ seq: 1, payload: xor(original.slice(0, 50), 3), options: ts(4), ipId: 1004 }),
  ];

  it('new-data: every retransmission arrived with its own bytes', () => {
    const s = new Scenario(retransmitInconsistent);
    for (const o of transmissions(s)) s.arrive(o);
    expect(retransmitInconsistent.judge(s.obs)).toMatchObject({
      verdict: 'new-data',
      detail: {
        variants: [
          { variant: 'same-size', finding: 'new-data', arrived: [{ offset: 0, length: 100, bytesFrom: ['same-size'], copyOf: 'same-size' }] },
          { variant: 'larger', finding: 'new-data', arrived: [{ length: 150, copyOf: 'larger' }] },
          { variant: 'smaller', finding: 'new-data', arrived: [{ length: 50, copyOf: 'smaller' }] },
        ],
      },
    });
  });

  it('old-data: a normaliser made each retransmission carry the first transmission\'s bytes', () => {
    const s = new Scenario(retransmitInconsistent);
    const [a, b, c, d] = transmissions(s);
    s.arrive(a);
    s.arrive(b, (p) => payloadOf(p, a.packet.payload));
    s.arrive(c, (p) => payloadOf(p, new Uint8Array([...a.packet.payload, ...c.packet.payload.slice(100)])));
    s.arrive(d, (p) => payloadOf(p, a.packet.payload.slice(0, 50)));
    expect(retransmitInconsistent.judge(s.obs)).toMatchObject({
      verdict: 'old-data',
      detail: {
        variants: [
          { variant: 'same-size', finding: 'old-data', oldBytes: 100, arrived: [{ bytesFrom: ['original'], copyOf: 'same-size' }] },
          { variant: 'larger', finding: 'old-data', oldBytes: 100, arrived: [{ length: 150, bytesFrom: ['original', 'larger'], copyOf: 'larger' }] },
          { variant: 'smaller', finding: 'old-data', oldBytes: 50, arrived: [{ length: 50, bytesFrom: ['original'], copyOf: 'smaller' }] },
        ],
      },
    });
  });

  it('old-data: a split-connection proxy absorbed the retransmissions and passed on only the larger one\'s new tail', () => {
    const s = new Scenario(retransmitInconsistent);
    const [a, , c] = transmissions(s);
    // The proxy's own connection: its own IP IDs and timestamps.
    s.arrive(a, (p) => {
      if (p.ip.version === 4) p.ip.id = 7;
      p.tcp.options = ts(123456);
    });
    s.arrive(c, (p) => {
      p.tcp.seq = u32(p.tcp.seq + 100);
      p.payload = p.payload.slice(100);
      if (p.ip.version === 4) p.ip.id = 8;
      p.tcp.options = ts(123999);
    });
    expect(retransmitInconsistent.judge(s.obs)).toMatchObject({
      verdict: 'old-data',
      detail: {
        variants: [
          { variant: 'same-size', finding: 'old-data', arrived: [] },
          { variant: 'larger', finding: 'old-data', oldBytes: 100, arrived: [{ offset: 100, length: 50, bytesFrom: ['larger'] }] },
          { variant: 'smaller', finding: 'old-data', arrived: [] },
        ],
      },
    });
  });

  it('resized: the larger retransmission arrived cut to the original\'s length, with its own bytes', () => {
    const s = new Scenario(retransmitInconsistent);
    const [a, b, c, d] = transmissions(s);
    for (const o of [a, b, d]) s.arrive(o);
    s.arrive(c, (p) => payloadOf(p, p.payload.slice(0, 100)));
    expect(retransmitInconsistent.judge(s.obs)).toMatchObject({
      verdict: 'resized',
      detail: { variants: [{ finding: 'new-data' }, { variant: 'larger', finding: 'resized', arrived: [{ length: 100 }] }, { finding: 'new-data' }] },
    });
  });

  it('a retransmitted original, a duplicate of it arriving late and a reordered arrival change nothing', () => {
    const s = new Scenario(retransmitInconsistent);
    const [a, b, c, d] = transmissions(s);
    const again = s.send({ seq: 1, payload: original.slice(0, 100), options: ts(1), ipId: 1001 });
    s.arrive(a);
    s.arrive(c);
    s.arrive(b);
    s.arrive(again);
    s.arrive(d);
    s.arrive(a);
    expect(retransmitInconsistent.judge(s.obs).verdict).toBe('new-data');
  });

  it('a retransmission that never arrived while the original did: the responder keeps the old bytes', () => {
    const s = new Scenario(retransmitInconsistent);
    const [a, , c, d] = transmissions(s);
    for (const o of [a, c, d]) s.arrive(o);
    expect(retransmitInconsistent.judge(s.obs)).toMatchObject({ verdict: 'old-data', detail: { variants: [{ variant: 'same-size', finding: 'old-data', arrived: [] }, { finding: 'new-data' }, { finding: 'new-data' }] } });
  });
});

describe('sack-blocks', () => {
  /** The responder's two data segments after the handshake, delivered; then the initiator's ACK of the handshake only with a SACK block for the second. */
  const setup = (profile: 'clean' | 'synproxy' = 'clean') => {
    const s = new Scenario(sackBlocks, profile);
    const first = s.reply({ seq: 1, payload: bytes(1200, 0x41), options: ts(300, 1) });
    const second = s.reply({ seq: 1201, payload: bytes(1200, 0x41 + 1200 % 26), options: ts(300, 1) });
    s.deliver(first);
    const seen = s.deliver(second);
    const left = seen.packet.tcp!.seq;
    const probe = s.send({ seq: 1, ack: 1, options: [...ts(400, 300), nop(), nop(), sack([[left, u32(left + 1200)]])] });
    return { s, probe };
  };

  it('passed: the SACK block arrived naming the responder\'s second segment in its own sequence space', () => {
    const { s, probe } = setup();
    s.arrive(probe);
    expect(sackBlocks.judge(s.obs)).toMatchObject({
      verdict: 'passed',
      detail: { sent: { ack: 1, blocks: [[1201, 2401]] }, received: { ack: 1, blocks: [[1201, 2401]] }, ackShift: 0, blocksMatchResponderData: true },
    });
  });

  it('translated: through the SYNPROXY the ack and the SACK edges are shifted by the same offset', () => {
    const { s, probe } = setup('synproxy');
    s.arrive(probe);
    const shift = (s.peer.own - s.peer.seen) | 0;
    expect(shift).not.toBe(0);
    expect(sackBlocks.judge(s.obs)).toMatchObject({ verdict: 'translated', detail: { ackShift: shift, edgeShifts: [[shift, shift]], blocksMatchResponderData: true, received: { blocks: [[1201, 2401]] } } });
  });

  it('untranslated: the ack was translated, the SACK edges were not', () => {
    const { s, probe } = setup('synproxy');
    s.arrive(probe, (p) => {
      p.tcp.options = probe.packet.tcp!.options!.slice();
    });
    expect(sackBlocks.judge(s.obs)).toMatchObject({ verdict: 'untranslated', detail: { edgeShifts: [[0, 0]], blocksMatchResponderData: false } });
  });

  it('removed: the SACK option was replaced by NOPs', () => {
    const { s, probe } = setup();
    s.arrive(probe, (p) => {
      p.tcp.options = p.tcp.options!.flatMap((o) => (o.kind === OptionKind.SACK ? Array.from({ length: o.data.length + 2 }, () => nop()) : [o]));
    });
    const judged = sackBlocks.judge(s.obs);
    expect(judged).toMatchObject({ verdict: 'removed', detail: { received: { ack: 1 }, acksReceived: 1 } });
    expect((judged.detail.received as { options: string[] }).options.filter((n) => n !== 'nop')).toEqual(['timestamps']);
  });

  it('a duplicate of the probe and a reordered view change nothing; the handshake ACK is not the probe', () => {
    const { s, probe } = setup();
    s.arrive(probe);
    s.arrive(probe);
    s.obs.responder!.received.reverse();
    expect(sackBlocks.judge(s.obs).verdict).toBe('passed');
  });

  it('dropped / reply-dropped / inconclusive when the evidence is missing', () => {
    expect(sackBlocks.judge(setup().s.obs).verdict).toBe('dropped');
    const undelivered = setup().s;
    undelivered.obs.initiator.received = undelivered.obs.initiator.received.filter((o) => o.packet.payload.length === 0);
    expect(sackBlocks.judge(undelivered.obs).verdict).toBe('reply-dropped');
    const silent = new Scenario(sackBlocks);
    expect(sackBlocks.judge(silent.obs)).toMatchObject({ verdict: 'inconclusive', detail: { reason: expect.stringContaining('sent no data') } });
  });
});
