import { TcpFlag } from '../../shared/wire/tcp.js';
import { ackWaitMs, settledHandshake, timestampsIfOffered } from '../probe-scripts.js';
import { ackOffset, byArrival, hasData, initiatorIsns, isAck, isDataAck, isRst, overlaps, sackBlocksOf, seqOffset, seqRange, sharedVerdict } from '../judge-helpers.js';
import { acks, type Observed } from '../observed.js';
import type { TestCase } from '../test-case.js';
import { dataProbe } from '../probe-segments.js';

const HOLE_BYTES = 100;
const SEGMENT_BYTES = 100;
/** Relative sequence numbers (1 = the first data byte): the hole, then the segment sent across it. */
const HOLE = { start: 1, end: 1 + HOLE_BYTES };
const POST_HOLE = { start: HOLE.end, end: HOLE.end + SEGMENT_BYTES };

export const seqHole: TestCase = {
  name: 'seq-hole',
  sends: `after an ordinary handshake, ${SEGMENT_BYTES} bytes sent ${HOLE_BYTES} bytes ahead of the next sequence number (a hole), then, after a pause, the ${HOLE_BYTES} bytes that fill the hole`,
  verdicts: ['passed', 'held'],
  carriesToken: 'in-stream',
  long: true,
  probe: dataProbe('tcp.seq'),
  // what a lost segment (and its lost copies) would also look like
  absenceVerdicts: ['held'],
  async run(connection, context) {
    const synAck = await settledHandshake(connection);
    if (!synAck) return;
    const payload = context.payload(HOLE_BYTES + SEGMENT_BYTES);
    const base = connection.sndNxt;
    // Whatever answers the segment after the hole: the responder's ACK, or a middlebox's duplicate ACK at
    // the hole. Resent while nothing answers, as a TCP would: a segment lost on the path is not one held.
    let answer: Observed | undefined;
    for (let attempt = 0; attempt < connection.timing.attempts && !answer; attempt++) {
      if (attempt > 0) connection.resends++;
      const postHole = await connection.send({ flags: TcpFlag.ACK | TcpFlag.PSH, seq: (base + HOLE_BYTES) >>> 0, payload: payload.subarray(HOLE_BYTES), options: timestampsIfOffered(connection, synAck) });
      answer = await connection.waitFor((o) => o.atUs >= postHole.atUs && (isRst(o) || isAck(o)), ackWaitMs(connection));
    }
    connection.notes.firstAnswerAck = answer?.packet.tcp && !isRst(answer) ? seqOffset(answer.packet.tcp.ack, connection.isn) : null;
    if (answer && isRst(answer)) return;
    // Fill the hole (resent until acknowledged), then close after both.
    await connection.exchange(
      { flags: TcpFlag.ACK | TcpFlag.PSH, seq: base, payload: payload.subarray(0, HOLE_BYTES), options: timestampsIfOffered(connection, synAck) },
      (o) => isRst(o) || acks(o, (base + HOLE_BYTES) >>> 0),
    );
    connection.sndNxt = (base + HOLE_BYTES + SEGMENT_BYTES) >>> 0;
    await connection.close();
  },
  judge(obs) {
    const shared = sharedVerdict(obs, hasData, isDataAck);
    if (shared) return shared;
    const responder = obs.responder!;
    const isnAtResponder = initiatorIsns(obs).received;
    const postHoleSent = obs.initiator.sent.find((o) => hasData(o) && seqRange(o, obs.isn).start === POST_HOLE.start);
    if (!postHoleSent) return { verdict: 'inconclusive', detail: { reason: 'the segment after the hole was never sent' } };
    const fillerSent = obs.initiator.sent.find((o) => hasData(o) && o.atUs >= postHoleSent.atUs && overlaps(seqRange(o, obs.isn), HOLE));
    // What the responder received, in the order it arrived (its own clock).
    const arrivals = byArrival(responder.received.filter(hasData)).map((o) => seqRange(o, isnAtResponder));
    const postHoleAt = arrivals.findIndex((r) => overlaps(r, POST_HOLE));
    const holeAt = arrivals.findIndex((r) => overlaps(r, HOLE));
    const passedAlone = postHoleAt >= 0 && (holeAt < 0 || postHoleAt < holeAt);
    // ACKs at the hole's start, after the segment beyond it left, that the responder never sent: a middlebox's duplicate ACKs.
    const responderHoleAcks = responder.sent.filter((o) => isAck(o) && ackOffset(o, isnAtResponder) === HOLE.start).length;
    const holeAcks = obs.initiator.received.filter((o) => isAck(o) && o.atUs >= postHoleSent.atUs && (!fillerSent || o.atUs < fillerSent.atUs) && ackOffset(o, obs.isn) === HOLE.start);
    const middleboxHoleAcks = responderHoleAcks > 0 ? [] : holeAcks;
    const detail = {
      holeBytes: HOLE_BYTES,
      postHoleBytes: SEGMENT_BYTES,
      fillerSent: fillerSent !== undefined,
      arrivals: arrivals.map((r) => ({ offset: r.start - HOLE.start, length: r.end - r.start })),
      postHoleArrivedFirst: passedAlone,
      holeAcks: middleboxHoleAcks.map((o) => ({
        msAfterPostHole: Math.round((o.atUs - postHoleSent.atUs) / 100) / 10,
        sack: sackBlocksOf(o).map(([l, r]) => [seqOffset(l, obs.isn) - HOLE.start, seqOffset(r, obs.isn) - HOLE.start]),
      })),
    };
    if (passedAlone) return { verdict: 'passed', detail };
    // Delivered only with or after the filler (or never): a middlebox held it until the hole was filled.
    if (postHoleAt >= 0 || middleboxHoleAcks.length > 0) return { verdict: 'held', detail };
    return { verdict: 'dropped', detail: { reason: 'the segment after the hole never reached the responder, and nothing acknowledged the hole', ...detail } };
  },
};
