import { TcpFlag } from '../../shared/wire/tcp.js';
import { ackWaitMs, settledHandshake, timestampsIfOffered } from '../probe-scripts.js';
import { byArrival, hasData, initiatorIsns, isDataAck, isRst, overlaps, seqRange, sharedVerdict, type SeqRange } from '../judge-helpers.js';
import { acks, isAck } from '../observed.js';
import { nowUs } from '../../shared/net/capture.js';
import type { SegmentSpec } from '../probe.js';
import type { Judgement, TestCase } from '../test-case.js';
import { dataProbe } from '../probe-segments.js';

const SEGMENTS = 4;
const SEGMENT_BYTES = 100;
const BURST_BYTES = SEGMENTS * SEGMENT_BYTES;
/** The two bursts: in order, then with the first segment sent last (a middlebox must queue to merge it). */
const BURSTS = [
  { name: 'in-order', order: [0, 1, 2, 3] },
  { name: 'first-last', order: [1, 2, 3, 0] },
] as const;

export const coalesce: TestCase = {
  name: 'coalesce',
  sends: `after an ordinary handshake, ${SEGMENTS} data segments of ${SEGMENT_BYTES} bytes back to back; once they are ACKed, ${SEGMENTS} more with the first of them sent last`,
  verdicts: ['intact', 'coalesced'],
  carriesToken: 'in-stream',
  long: true,
  probe: dataProbe('payload'),
  async run(connection, context) {
    const synAck = await settledHandshake(connection);
    if (!synAck) return;
    const payload = context.payload(BURSTS.length * BURST_BYTES);
    const base = connection.sndNxt;
    for (const [b, burst] of BURSTS.entries()) {
      const options = timestampsIfOffered(connection, synAck);
      const segment = (i: number): SegmentSpec => {
        const at = b * BURST_BYTES + i * SEGMENT_BYTES;
        return { flags: TcpFlag.ACK | TcpFlag.PSH, seq: (base + at) >>> 0, payload: payload.subarray(at, at + SEGMENT_BYTES), options };
      };
      const ends = burst.order.map((i) => (base + b * BURST_BYTES + (i + 1) * SEGMENT_BYTES) >>> 0);
      const burstEnd = (base + (b + 1) * BURST_BYTES) >>> 0;
      const acked = new Set<number>();
      const ackedAll = (): boolean => ends.every((e) => acked.has(e));
      /** ACK values seen: one that comes again is a TCP stack's (a relay's), and cumulative. */
      const seen = new Set<number>();
      // Resent like a TCP would resend a lost segment: the (stateless) responder acknowledges each
      // segment's end, so an end that stays unacknowledged marks a segment (or its ACK) lost.
      let reset = false;
      for (let round = 0; round < connection.timing.attempts && !ackedAll() && !reset; round++) {
        const since = nowUs();
        for (const [k, i] of burst.order.entries()) if (!acked.has(ends[k])) await connection.send(segment(i));
        if (round > 0) connection.resends++;
        const deadline = Date.now() + ackWaitMs(connection);
        while (!ackedAll() && Date.now() < deadline) {
          const o = await connection.waitFor((x) => x.atUs >= since && (isRst(x) || isAck(x)), Math.max(1, deadline - Date.now()));
          if (!o) break;
          const ack = o.packet.tcp!.ack;
          if (isRst(o)) reset = true;
          // The same value again: a relay's TCP stack, whose ACKs are cumulative, answering segments
          // sent again (the responder acknowledges each copy with its own end, and an acknowledged
          // segment is not sent again). Behind a relay its cumulative ACK may be exactly the last
          // segment's end, which alone would leave the others unacknowledged for ever.
          else if (seen.has(ack)) ends.forEach((e) => acks(o, e) && acked.add(e));
          // Exactly its end: the stateless responder acknowledges each segment it got, whatever came before it.
          else if (ends.includes(ack)) acked.add(ack);
          else if (acks(o, burstEnd)) ends.forEach((e) => acked.add(e));
          seen.add(ack);
          if (reset) break;
        }
      }
      connection.sndNxt = (base + (b + 1) * BURST_BYTES) >>> 0;
      if (!ackedAll()) {
        connection.notes.stoppedAfter = burst.name;
        break;
      }
    }
    await connection.close();
  },
  judge(obs) {
    const shared = sharedVerdict(obs, hasData, isDataAck);
    if (shared) return shared;
    const isnAtResponder = initiatorIsns(obs).received;
    const sent = obs.initiator.sent.filter(hasData).map((o) => seqRange(o, obs.isn));
    const received = byArrival(obs.responder!.received.filter(hasData)).map((o) => seqRange(o, isnAtResponder));
    // A received segment coalesces when it carries bytes of two sent segments: it crosses a boundary between them.
    const boundaries = new Set(sent.flatMap((s) => [s.start, s.end]));
    const crosses = (r: SeqRange): boolean => [...boundaries].some((x) => r.start < x && x < r.end);
    const dataStart = 1;
    const bursts = BURSTS.map((burst, b) => {
      const lo = dataStart + b * BURST_BYTES;
      const hi = lo + BURST_BYTES;
      const inBurst = (r: SeqRange): boolean => overlaps(r, { start: lo, end: hi });
      const sentHere = sent.filter(inBurst);
      const arrivals = received.filter(inBurst);
      const delivered = (s: SeqRange): boolean => arrivals.some((r) => overlaps(r, s));
      return {
        burst: burst.name,
        sentOffsets: sentHere.map((s) => s.start - lo),
        received: arrivals.map((r) => ({ offset: r.start - lo, length: r.end - r.start })),
        segmentsSent: sentHere.length,
        segmentsReceived: new Set(arrivals.map((r) => `${r.start}+${r.end}`)).size,
        coalesced: arrivals.some(crosses),
        // Segments sent out of order arriving in order: something on the path queued them.
        arrivedInOrder: arrivals.every((r, i) => i === 0 || r.start >= arrivals[i - 1].start),
        undelivered: sentHere.filter((s) => !delivered(s)).map((s) => s.start - lo),
      };
    });
    const detail = { segmentBytes: SEGMENT_BYTES, bursts };
    if (bursts.some((b) => b.coalesced)) return { verdict: 'coalesced', detail };
    // "intact" needs both bursts sent in full and every segment delivered.
    const incomplete = bursts.find((b) => b.segmentsSent < SEGMENTS);
    if (incomplete) return { verdict: 'inconclusive', detail: { reason: `the ${incomplete.burst} burst was not sent in full`, ...detail } } satisfies Judgement;
    // Small segments a path loses (and loses again when resent) say nothing about coalescing.
    if (bursts.some((b) => b.undelivered.length > 0)) return { verdict: 'inconclusive', detail: { reason: 'some segments never reached the responder, also when resent', ...detail } };
    return { verdict: 'intact', detail };
  },
};
