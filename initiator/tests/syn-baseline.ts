import { connectAndClose } from '../probe-scripts.js';
import { first, isSyn, isSynAck, sharedVerdict, timestampValue } from '../judge-helpers.js';
import type { Observed } from '../probe.js';
import type { TestCase } from '../test-case.js';

/**
 * A SYN-ACK is the responder's if one it sent has the same window and timestamp value: NATs and
 * sequence-number rewriters keep those; a SYN proxy or a split-connection proxy builds its own.
 */
const sameSynAck = (theirs: Observed, ours: Observed): boolean =>
  theirs.packet.tcp?.window === ours.packet.tcp?.window && timestampValue(theirs) === timestampValue(ours);

export const synBaseline: TestCase = {
  name: 'syn-baseline',
  sends: 'a SYN like Linux sends it (MSS, SACK-permitted, timestamps, window scale), then closes the connection',
  verdicts: ['ok', 'proxied'],
  run: connectAndClose,
  judge(obs) {
    const shared = sharedVerdict(obs, isSyn, isSynAck);
    if (shared) return shared;
    const received = first(obs.initiator.received, isSynAck)!;
    const sentByResponder = obs.responder!.sent.filter(isSynAck);
    const genuine = sentByResponder.some((ours) => sameSynAck(received, ours));
    const detail = {
      synAckReceived: { seq: received.packet.tcp!.seq, window: received.packet.tcp!.window, timestamp: timestampValue(received) ?? null },
      synAcksSentByResponder: sentByResponder.map((o) => ({ seq: o.packet.tcp!.seq, window: o.packet.tcp!.window, timestamp: timestampValue(o) ?? null })),
    };
    return { verdict: genuine ? 'ok' : 'proxied', detail };
  },
};
