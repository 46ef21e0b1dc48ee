import { TcpFlag } from '../../shared/wire/tcp.js';
import { optionName } from '../../shared/wire/tcp-options.js';
import { ackWaitMs, settledHandshake, timestampsIfWellFormed } from '../probe-scripts.js';
import { ackOffset, first, hasData, initiatorIsns, isAck, isRst, isSynAck, seqOffset, sharedVerdict, timestampValue } from '../judge-helpers.js';
import type { Observed } from '../observed.js';
import type { TestCase } from '../test-case.js';
import { dataProbe } from '../probe-segments.js';

const PROBE_BYTES = 100;

export const proactiveAck: TestCase = {
  name: 'proactive-ack',
  sends: `after an ordinary handshake, one ${PROBE_BYTES}-byte data segment (two copies 5 ms apart, never retransmitted) that the responder is asked never to acknowledge; the connection is then reset`,
  verdicts: ['none', 'acked-by-middlebox'],
  carriesToken: 'in-stream',
  long: true,
  probe: dataProbe(),
  plan: { withholdAck: true },
  async run(connection, context) {
    const synAck = await settledHandshake(connection);
    if (!synAck) return;
    const seq = connection.sndNxt;
    // Never retransmitted after a wait (that would be a second chance for a middlebox to ACK); two
    // identical copies 5 ms apart, so a path that loses one still delivers the probe (a box that ACKs
    // data ACKs the first copy anyway).
    const probe = { flags: TcpFlag.ACK | TcpFlag.PSH, seq, payload: context.payload(PROBE_BYTES), options: timestampsIfWellFormed(connection, synAck) };
    await connection.send(probe);
    await connection.linger(5);
    await connection.send(probe);
    connection.sndNxt = (seq + PROBE_BYTES) >>> 0;
    const waitMs = ackWaitMs(connection);
    connection.notes.waitedMs = waitMs;
    const ack = await connection.watch((o) => isRst(o) || (isAck(o) && seqOffset(o.packet.tcp!.ack, seq) > 0), waitMs);
    connection.notes.ackSeen = ack !== undefined && !isRst(ack);
    // The data stays unacknowledged (by the responder): a RST releases the state on the path.
    await connection.abort();
  },
  judge(obs) {
    // The answer the responder gives on every path is its SYN-ACK; it never answers the probe.
    const shared = sharedVerdict(obs, hasData, isSynAck);
    // The probe not reaching the responder is no answer here: what matters is whether something ACKed it.
    const notDelivered = shared?.verdict === 'dropped' || shared?.verdict === 'intercepted';
    if (shared && !notDelivered) return shared;
    const responder = obs.responder!;
    const probe = first(obs.initiator.sent, hasData)!;
    const probeSeq = probe.packet.tcp!.seq;
    const probeEnd = (probeSeq + probe.packet.payload.length) >>> 0;
    // The initiator's ISN in the responder's frame (behind a split-connection proxy: the proxy's).
    const isnAtResponder = initiatorIsns(obs).received;
    const probeStart = seqOffset(probeSeq, obs.isn);
    // ACKs that acknowledge some of the probe, as the initiator received them and as the responder sent them.
    const acksReceived = obs.initiator.received.filter((o) => isAck(o) && ackOffset(o, obs.isn) > probeStart);
    const acksSent = responder.sent.filter((o) => isAck(o) && ackOffset(o, isnAtResponder) > probeStart);
    const theResponders = (o: Observed): boolean =>
      acksSent.some((s) => ackOffset(s, isnAtResponder) === ackOffset(o, obs.isn) && timestampValue(s) === timestampValue(o));
    const forged = acksReceived.filter((o) => !theResponders(o));
    const detail = {
      probeBytes: probe.packet.payload.length,
      dataReachedResponder: shared === undefined,
      ...(obs.notes.waitedMs !== undefined ? { waitedMs: obs.notes.waitedMs } : {}),
      responderAcks: acksSent.length,
      middleboxAcks: forged.map((o) => ({
        ackedBytes: Math.min(seqOffset(o.packet.tcp!.ack, probeSeq), probe.packet.payload.length),
        coversProbe: seqOffset(o.packet.tcp!.ack, probeEnd) >= 0,
        msAfterProbe: Math.round((o.atUs - probe.atUs) / 100) / 10,
        window: o.packet.tcp!.window,
        options: (o.packet.tcp!.options ?? []).map((x) => optionName(x.kind)),
      })),
    };
    // An ACK the responder never sent says the path acknowledged the data, even if it never delivered it.
    if (forged.length > 0) return { verdict: 'acked-by-middlebox', detail: { ...detail, ...(shared?.verdict === 'intercepted' ? { intercepted: shared.detail } : {}) } };
    if (shared) return shared;
    return { verdict: 'none', detail };
  },
};
