import { TcpFlag } from '../../shared/wire/tcp.js';
import { endAfter, settledHandshake, timestampsIfOffered } from '../probe-scripts.js';
import { first, flagsOf, hasData, isDataAck, responderIsns, seqOffset, sharedVerdict } from '../judge-helpers.js';
import type { TestCase } from '../test-case.js';
import { dataProbe } from '../probe-segments.js';

const PROBE_BYTES = 100;
/** How far beyond what the responder has sent (nothing but its SYN) the probe's ACK reaches. */
const ACK_AHEAD = 1000;

export const ackHole: TestCase = {
  name: 'ack-hole',
  sends: `after an ordinary handshake, a ${PROBE_BYTES}-byte data segment whose ACK acknowledges ${ACK_AHEAD} bytes the responder never sent`,
  verdicts: ['passed', 'corrected'],
  long: true,
  // A relay drops the out-of-window probe (or its own stack answers it): dropped, which loss could also give.
  secondRunBehindRelay: true,
  probe: dataProbe('tcp.ack'),
  async run(connection, context) {
    // A pause first, so that a split-connection proxy has set up its own connection to the responder before
    // the probe (which a proxy's conntrack may pass by, untranslated) arrives.
    const synAck = await settledHandshake(connection);
    if (!synAck) return;
    await endAfter(connection, await connection.sendData(context.payload(PROBE_BYTES), { ack: (connection.rcvNxt + ACK_AHEAD) >>> 0, options: timestampsIfOffered(connection, synAck) }));
  },
  judge(obs) {
    const shared = sharedVerdict(obs, hasData, isDataAck);
    if (shared) return shared;
    // The responder's ISN as it sent it and as the initiator saw it: acks are compared relative to them,
    // so a box translating sequence numbers consistently does not count as changing the ack.
    // Without a SYN-ACK on both sides (a segment that bypassed a proxy reaches a responder that never
    // shook hands with that flow) the ack numbers are compared as they are.
    const { sent: own, received: seen } = responderIsns(obs);
    const relative = own !== undefined && seen !== undefined;
    const inFrame = (ack: number, isn: number | undefined): number => (relative ? seqOffset(ack, isn!) : ack);
    const sent = first(obs.initiator.sent, hasData)!;
    const sentAck = inFrame(sent.packet.tcp!.ack, seen);
    const arrivals = obs.responder!.received.filter(hasData).map((o) => ({ ack: inFrame(o.packet.tcp!.ack, own), ackFlag: (flagsOf(o) & TcpFlag.ACK) !== 0 }));
    const changed = arrivals.filter((a) => !a.ackFlag || a.ack !== sentAck);
    const detail = {
      frame: relative ? 'relative to the responder\'s ISN' : 'absolute',
      ...(relative ? { ackAhead: sentAck - 1 } : {}),
      sentAck,
      receivedAcks: arrivals.map((a) => (a.ackFlag ? a.ack : null)),
      ...(changed.length && changed[0].ackFlag ? { change: seqOffset(changed[0].ack, sentAck) } : {}),
    };
    return { verdict: changed.length ? 'corrected' : 'passed', detail };
  },
};
