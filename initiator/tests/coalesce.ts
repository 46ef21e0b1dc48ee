import { TcpFlag } from '../../shared/wire/tcp.js';
import { findOption, nop, OptionKind, type TcpOption } from '../../shared/wire/tcp-options.js';
import { defaultSynOptions } from '../syn-options.js';
import { first, hasData, isRst, isSyn, sharedVerdict } from '../judge-helpers.js';
import { acks, type Observed, type ProbeConnection } from '../probe.js';
import type { Judgement, TestCase } from '../test-case.js';

const SEGMENTS = 4;
const SEGMENT_BYTES = 100;
const BURST_BYTES = SEGMENTS * SEGMENT_BYTES;
/** The two bursts: in order, then with the first segment sent last (a middlebox must queue to merge it). */
const BURSTS = [
  { name: 'in-order', order: [0, 1, 2, 3] },
  { name: 'first-last', order: [1, 2, 3, 0] },
] as const;

const flagsOf = (o: Observed): number => o.packet.tcp?.flags ?? 0;
const offset = (value: number, base: number): number => (value - base) | 0;
const isDataAck = (o: Observed): boolean => o.packet.tcp !== undefined && (flagsOf(o) & TcpFlag.ACK) !== 0 && (flagsOf(o) & (TcpFlag.SYN | TcpFlag.RST)) === 0 && o.packet.payload.length === 0;
const ackWaitMs = (c: ProbeConnection): number => Math.max(300, Math.min(c.timing.timeoutMs, 4 * (c.rttMs ?? c.timing.timeoutMs)));
const timestampsIf = (c: ProbeConnection, synAck: Observed): TcpOption[] =>
  findOption(synAck.packet.tcp?.options, OptionKind.TIMESTAMPS) ? [nop(), nop(), c.timestampOption()] : [];
const byArrival = (list: readonly Observed[]): Observed[] => list.map((o, i) => ({ o, i })).sort((a, b) => a.o.atUs - b.o.atUs || a.i - b.i).map((x) => x.o);

interface Range {
  start: number;
  end: number;
}

export const coalesce: TestCase = {
  name: 'coalesce',
  sends: `after an ordinary handshake, ${SEGMENTS} data segments of ${SEGMENT_BYTES} bytes back to back; once they are ACKed, ${SEGMENTS} more with the first of them sent last`,
  verdicts: ['intact', 'coalesced'],
  async run(connection, context) {
    const synAck = await connection.connect({ options: defaultSynOptions() });
    if (!synAck || isRst(synAck)) return;
    const payload = context.payload(BURSTS.length * BURST_BYTES);
    const base = connection.sndNxt;
    for (const [b, burst] of BURSTS.entries()) {
      const options = timestampsIf(connection, synAck);
      for (const i of burst.order) {
        const at = b * BURST_BYTES + i * SEGMENT_BYTES;
        await connection.send({ flags: TcpFlag.ACK | TcpFlag.PSH, seq: (base + at) >>> 0, payload: payload.subarray(at, at + SEGMENT_BYTES), options });
      }
      const end = (base + (b + 1) * BURST_BYTES) >>> 0;
      connection.sndNxt = end;
      const ack = await connection.waitFor((o) => isRst(o) || acks(o, end), ackWaitMs(connection));
      if (!ack || isRst(ack)) {
        connection.notes.stoppedAfter = burst.name;
        break;
      }
    }
    await connection.close();
  },
  judge(obs) {
    const shared = sharedVerdict(obs, hasData, isDataAck);
    if (shared) return shared;
    const isnAtResponder = first(obs.responder!.received, isSyn)?.packet.tcp?.seq ?? obs.isn;
    const rangeOf = (o: Observed, isn: number): Range => {
      const start = offset(o.packet.tcp!.seq, isn);
      return { start, end: start + o.packet.payload.length };
    };
    const sent = obs.initiator.sent.filter(hasData).map((o) => rangeOf(o, obs.isn));
    const received = byArrival(obs.responder!.received.filter(hasData)).map((o) => rangeOf(o, isnAtResponder));
    // A received segment coalesces when it carries bytes of two sent segments: it crosses a boundary between them.
    const boundaries = new Set(sent.flatMap((s) => [s.start, s.end]));
    const crosses = (r: Range): boolean => [...boundaries].some((x) => r.start < x && x < r.end);
    const dataStart = 1;
    const bursts = BURSTS.map((burst, b) => {
      const lo = dataStart + b * BURST_BYTES;
      const hi = lo + BURST_BYTES;
      const inBurst = (r: Range): boolean => r.start < hi && lo < r.end;
      const sentHere = sent.filter(inBurst);
      const arrivals = received.filter(inBurst);
      const delivered = (s: Range): boolean => arrivals.some((r) => r.start < s.end && s.start < r.end);
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
    if (bursts.some((b) => b.undelivered.length > 0)) return { verdict: 'dropped', detail: { reason: 'some segments never reached the responder', ...detail } };
    return { verdict: 'intact', detail };
  },
};
