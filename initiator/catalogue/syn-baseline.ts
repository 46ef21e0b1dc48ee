import { connectAndClose } from '../probe-scripts.js';
import { first, isSyn, isSynAck, sharedVerdict, timestampValue } from '../judge-helpers.js';
import type { Observed } from '../observed.js';
import type { TestCase } from '../test-case.js';
import { synProbe } from '../probe-segments.js';

/**
 * A SYN-ACK is the responder's if one it sent has the same timestamp value: NATs, sequence-number
 * and window rewriters keep it, while a SYN proxy or a split-connection proxy writes its own clock.
 * Without timestamps on both (stripped on the path), the window and the option kinds must match.
 */
const sameSynAck = (theirs: Observed, ours: Observed): boolean => {
  const theirTs = timestampValue(theirs);
  const ourTs = timestampValue(ours);
  if (theirTs !== undefined && ourTs !== undefined) return theirTs === ourTs;
  const kinds = (o: Observed): string => (o.packet.tcp?.options ?? []).map((opt) => opt.kind).filter((k) => k > 1).join(',');
  return theirTs === ourTs && theirs.packet.tcp?.window === ours.packet.tcp?.window && kinds(theirs) === kinds(ours);
};

export const synBaseline: TestCase = {
  name: 'syn-baseline',
  sends: 'a SYN like Linux sends it (MSS, SACK-permitted, timestamps, window scale), then closes the connection',
  verdicts: ['ok', 'proxied'],
  carriesToken: 'before-close',
  probe: synProbe(),
  run: connectAndClose,
  judge(obs) {
    const shared = sharedVerdict(obs, isSyn, isSynAck);
    // A proxy that answers the handshake itself and connects later (or never): the SYN-ACK is its own.
    if (shared?.verdict === 'intercepted') return { verdict: 'proxied', detail: shared.detail };
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
