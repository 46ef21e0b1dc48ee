import { diffSegments, type DiffRow } from '../shared/diff.js';
import { TcpFlag } from '../shared/wire/tcp.js';
import { findOption, formatOption, optionName } from '../shared/wire/tcp-options.js';
import type { Observed } from './probe.js';
import type { Judgement, TestObservations } from './test-case.js';

const flagsOf = (o: Observed): number => o.packet.tcp?.flags ?? 0;
export const isSyn = (o: Observed): boolean => (flagsOf(o) & (TcpFlag.SYN | TcpFlag.ACK)) === TcpFlag.SYN;
export const isSynAck = (o: Observed): boolean => (flagsOf(o) & (TcpFlag.SYN | TcpFlag.ACK)) === (TcpFlag.SYN | TcpFlag.ACK);
export const isRst = (o: Observed): boolean => (flagsOf(o) & TcpFlag.RST) !== 0;
export const hasData = (o: Observed): boolean => o.packet.payload.length > 0 && (flagsOf(o) & TcpFlag.SYN) === 0;

/**
 * The verdicts shared by every test, decided before the test's own judge looks at options:
 * inconclusive (no responder view), reset (a RST the responder did not send), dropped (the
 * responder never received the probe), reply-dropped (it answered, the answer never arrived).
 * `probe` picks the segment that is the test's probe on each side; `answer` its answer.
 */
export function sharedVerdict(
  obs: TestObservations,
  probe: (o: Observed) => boolean,
  answer: (o: Observed) => boolean,
): Judgement | undefined {
  if (!obs.responder) return { verdict: 'inconclusive', detail: { reason: 'the responder view of this test could not be collected' } };
  const sentProbes = obs.initiator.sent.filter(probe);
  if (sentProbes.length === 0) return { verdict: 'inconclusive', detail: { reason: 'the probe was never sent (the test script stopped early)', notes: obs.notes } };
  const forgedRst = obs.initiator.received.filter(isRst).length > 0 && obs.responder.sent.filter(isRst).length === 0;
  if (forgedRst) return { verdict: 'reset', detail: { resets: obs.initiator.received.filter(isRst).map((o) => segmentSummary(o)) } };
  const probesArrived = obs.responder.received.filter(probe);
  if (probesArrived.length === 0) return { verdict: 'dropped', detail: { probesSent: sentProbes.length, probesReceived: 0, ...obs.notes } };
  const answersSent = obs.responder.sent.filter(answer);
  const answersArrived = obs.initiator.received.filter(answer);
  if (answersSent.length > 0 && answersArrived.length === 0) return { verdict: 'reply-dropped', detail: { answersSent: answersSent.length, answersReceived: 0 } };
  if (answersSent.length === 0 && answersArrived.length === 0) return { verdict: 'inconclusive', detail: { reason: 'the responder received the probe but sent no answer (rate or budget limit?)' } };
  return undefined;
}

export function segmentSummary(o: Observed): Record<string, unknown> {
  const tcp = o.packet.tcp;
  return tcp ? { flags: tcp.flags, seq: tcp.seq, ack: tcp.ack, length: o.packet.payload.length } : { length: o.bytes.length };
}

/**
 * Option tests: compare option `kind` in the segment as sent and as received.
 * passed (present and identical), modified (present, bytes differ), removed (gone or NOPed out).
 */
export function judgeOption(sent: Observed, received: Observed, kind: number): Judgement {
  const rows = diffSegments(sent.packet, received.packet).filter((r) => r.layer === 'option' && (r.field === optionName(kind) || r.field.startsWith(`${optionName(kind)}#`)));
  const sentOption = findOption(sent.packet.tcp?.options, kind);
  const receivedOption = findOption(received.packet.tcp?.options, kind);
  const detail = {
    option: optionName(kind),
    sent: sentOption ? formatOption(sentOption) : null,
    received: receivedOption ? formatOption(receivedOption) : null,
    changes: rows.map(describeRow),
  };
  if (!sentOption) return { verdict: 'inconclusive', detail: { ...detail, reason: `the probe was sent without ${optionName(kind)}` } };
  if (!receivedOption) return { verdict: 'removed', detail };
  if (rows.length > 0) return { verdict: 'modified', detail };
  return { verdict: 'passed', detail };
}

export const describeRow = (r: DiffRow): Record<string, unknown> => ({ field: `${r.layer}.${r.field}`, sent: r.sent, received: r.received, ...(r.change ? { change: r.change } : {}) });

/** The first segment matching, or undefined. */
export const first = (list: readonly Observed[], match: (o: Observed) => boolean): Observed | undefined => list.find(match);
