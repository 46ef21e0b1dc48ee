import { connectSendAndClose } from '../probe-scripts.js';
import { first, forwardPairs, hasData, initiatorIsns, isDataAck, isSyn, isSynAck, relativeTo, seqOffset, sharedVerdict, windowScaleOf } from '../judge-helpers.js';
import type { Observed } from '../observed.js';
import type { TestCase, TestObservations } from '../test-case.js';
import { synProbe } from '../probe-segments.js';

const DATA_BYTES = 100;

const windowOf = (o: Observed): number => o.packet.tcp!.window;
const CONTROL = 0x17; // FIN, SYN, RST, ACK: what makes two segments the same kind of segment

/**
 * The responder's ACK of the data and what the initiator received of it: the first ACK (without data)
 * acknowledging the data's last byte on each side, by ack number relative to the initiator's ISN as
 * that side knows it, with the same control flags.
 */
function ackPair(obs: TestObservations, dataEnd: number): { sent: Observed; received: Observed } | undefined {
  const isns = initiatorIsns(obs);
  const covers = (o: Observed, isn: number): boolean => seqOffset(relativeTo(o.packet.tcp!.ack, isn), dataEnd) >= 0;
  const sent = obs.responder!.sent.find((o) => isDataAck(o) && covers(o, isns.received));
  if (!sent) return undefined;
  const control = sent.packet.tcp!.flags & CONTROL;
  const received = obs.initiator.received.find((o) => isDataAck(o) && (o.packet.tcp!.flags & CONTROL) === control && covers(o, isns.sent));
  return received && { sent, received };
}

type Leg = 'forward.syn' | 'forward.data' | 'reverse.synAck' | 'reverse.ack';

export const windowRewrite: TestCase = {
  name: 'window-rewrite',
  sends: `a handshake and a data segment of ${DATA_BYTES} bytes; the receive window of the SYN and the data segment (forward), of the SYN-ACK and the ACK (reverse) is compared as sent and as received`,
  verdicts: ['unchanged', 'rewritten'],
  carriesToken: 'in-stream',
  probe: synProbe('tcp.window'),
  run: (connection, context) => connectSendAndClose(connection, context, DATA_BYTES),
  judge(obs) {
    const shared = sharedVerdict(obs, isSyn, isSynAck) ?? sharedVerdict(obs, hasData, isDataAck);
    if (shared) return shared;
    const responder = obs.responder!;
    const data = forwardPairs(obs, hasData).pairs[0];
    const legs: Record<Leg, { sent: Observed; received: Observed } | undefined> = {
      'forward.syn': { sent: first(obs.initiator.sent, isSyn)!, received: first(responder.received, isSyn)! },
      'forward.data': data && { sent: data.sent, received: data.received },
      'reverse.synAck': { sent: first(responder.sent, isSynAck)!, received: first(obs.initiator.received, isSynAck)! },
      'reverse.ack': data && ackPair(obs, (data.relativeSeq + data.sent.packet.payload.length) >>> 0),
    };
    const windows = Object.fromEntries(Object.entries(legs).map(([leg, pair]) => [leg, pair ? { sent: windowOf(pair.sent), received: windowOf(pair.received) } : null]));
    const rewritten = Object.entries(legs).filter(([, pair]) => pair && windowOf(pair.sent) !== windowOf(pair.received)).map(([leg]) => leg);
    const missing = Object.entries(legs).filter(([, pair]) => !pair).map(([leg]) => leg);
    // The window of segments after the handshake is scaled: the scales each end announced say what it meant.
    const windowScale = {
      syn: { sent: windowScaleOf(legs['forward.syn']!.sent), received: windowScaleOf(legs['forward.syn']!.received) },
      synAck: { sent: windowScaleOf(legs['reverse.synAck']!.sent), received: windowScaleOf(legs['reverse.synAck']!.received) },
    };
    const detail = { windows, rewritten, windowScale, ...(missing.length ? { missing } : {}) };
    if (rewritten.length > 0) return { verdict: 'rewritten', detail };
    if (missing.length > 0) return { verdict: 'inconclusive', detail: { reason: `no window to compare for ${missing.join(', ')}`, ...detail } };
    return { verdict: 'unchanged', detail };
  },
};
