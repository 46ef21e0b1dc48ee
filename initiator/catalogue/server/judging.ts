/**
 * Judging helpers of the server tests: pure functions of what the initiator sent and received on a
 * connection. The answer to a SYN, the options and ECN flags of a SYN-ACK, the shared verdicts, and the
 * diff rows between a SYN and the options its SYN-ACK answered with.
 */
import { findOption, formatOption, optionName, OptionKind, viewOption, type TcpOption } from '../../../shared/wire/tcp-options.js';
import { TcpFlag } from '../../../shared/wire/tcp.js';
import { ecnOf } from '../../../shared/wire/packet.js';
import type { DiffRecord, SegmentRecord } from '../../../shared/store.js';
import { flagsOf, isRst, isSyn, isSynAck, type Observed } from '../../observed.js';
import { timestampsOf } from '../../judge-helpers.js';
import type { Judgement } from '../../test-case.js';
import type { ConnectionObservations, ServerObservations } from './server-test.js';

/**
 * Is `o` the answer to a SYN with initial sequence number `isn` and `dataLength` bytes of data: a
 * SYN-ACK acknowledging the SYN alone or the SYN and its data, or a RST (acknowledging either, or
 * without ACK)? A SYN-ACK acknowledging anything else answers some other SYN, as a TCP would judge it.
 */
export function synAnswerMatches(o: Observed, isn: number, dataLength: number): boolean {
  const tcp = o.packet.tcp;
  if (!tcp) return false;
  const ackOk = tcp.ack === ((isn + 1) >>> 0) || tcp.ack === ((isn + 1 + dataLength) >>> 0);
  if (isRst(o)) return (tcp.flags & TcpFlag.ACK) === 0 || ackOk;
  return isSynAck(o) && ackOk;
}

/** How a connection's SYN was answered. */
export type SynOutcome =
  | { kind: 'syn-ack'; synAck: Observed; syn: Observed; dataAcked: boolean }
  | { kind: 'rst'; rst: Observed; syn: Observed }
  | { kind: 'none'; syn: Observed; synsSent: number }
  /** A SYN-ACK came, but it acknowledges neither the SYN nor its data (it answers some other SYN). */
  | { kind: 'wrong-ack'; synAck: Observed; syn: Observed }
  | { kind: 'not-sent' };

export function synOutcome(c: ConnectionObservations | undefined): SynOutcome {
  const syns = c?.sent.filter(isSyn) ?? [];
  if (!c || syns.length === 0) return { kind: 'not-sent' };
  const syn = syns[0];
  const dataLength = syn.packet.payload.length;
  const answer = c.received.find((o) => synAnswerMatches(o, c.isn, dataLength));
  if (answer && isRst(answer)) return { kind: 'rst', rst: answer, syn };
  if (answer) return { kind: 'syn-ack', synAck: answer, syn, dataAcked: dataLength > 0 && answer.packet.tcp!.ack === ((c.isn + 1 + dataLength) >>> 0) };
  const other = c.received.find(isSynAck);
  if (other) return { kind: 'wrong-ack', synAck: other, syn };
  return { kind: 'none', syn, synsSent: syns.length };
}

/** The connection of that role, if the script opened one. */
export const connection = (obs: ServerObservations, role: string): ConnectionObservations | undefined => obs.connections.find((c) => c.role === role);

/** What an outcome was, in the detail's words. */
export function describeOutcome(outcome: SynOutcome): Record<string, unknown> {
  switch (outcome.kind) {
    case 'syn-ack': return { answer: 'syn-ack', ...(outcome.syn.packet.payload.length ? { dataAcked: outcome.dataAcked } : {}) };
    case 'rst': return { answer: 'rst' };
    case 'none': return { answer: 'none', synsSent: outcome.synsSent };
    case 'wrong-ack': return { answer: 'syn-ack acknowledging another sequence number', ack: outcome.synAck.packet.tcp!.ack, expected: (outcome.syn.packet.tcp!.seq + 1) >>> 0 };
    case 'not-sent': return { answer: 'no SYN sent' };
  }
}

/**
 * The shared verdict an ordinary SYN's outcome gives (undefined when it was answered with a SYN-ACK):
 * unreachable (no answer to any copy), reset (a RST), inconclusive (a SYN-ACK for another SYN, or the
 * script never sent it).
 */
export function sharedServerVerdict(outcome: SynOutcome, role = 'the SYN'): Judgement | undefined {
  switch (outcome.kind) {
    case 'syn-ack': return undefined;
    case 'none': return { verdict: 'unreachable', detail: { reason: `no answer to ${role} (${outcome.synsSent} sent)`, synsSent: outcome.synsSent } };
    case 'rst': return { verdict: 'reset', detail: { reason: `${role} was answered with a RST`, rst: segmentSummary(outcome.rst) } };
    case 'wrong-ack': return { verdict: 'inconclusive', detail: { reason: `the only SYN-ACK to ${role} acknowledges another sequence number`, ...describeOutcome(outcome) } };
    case 'not-sent': return { verdict: 'inconclusive', detail: { reason: `${role} was never sent (the test script stopped early)` } };
  }
}

export function segmentSummary(o: Observed): Record<string, unknown> {
  const tcp = o.packet.tcp;
  return tcp ? { flags: tcp.flags, seq: tcp.seq, ack: tcp.ack, window: tcp.window } : { length: o.bytes.length };
}

// ---- What a SYN-ACK says. ----

/** The option kinds of a segment other than NOP/EOL, by name, in order. */
export const optionNames = (o: Observed): string[] => (o.packet.tcp?.options ?? []).filter((opt) => opt.kind > OptionKind.NOP).map((opt) => optionName(opt.kind));

export function optionOf(o: Observed | undefined, kind: number): TcpOption | undefined {
  return findOption(o?.packet.tcp?.options, kind);
}

/** The TFO cookie of a segment: its bytes when the option carries one of the 4-16 bytes RFC 7413 allows; undefined otherwise. */
export function tfoCookieOf(o: Observed): Uint8Array | undefined {
  const option = optionOf(o, OptionKind.TFO);
  const view = option && viewOption(option);
  return view?.type === 'tfo' && view.cookie.length >= 4 && view.cookie.length <= 16 && view.cookie.length % 2 === 0 ? view.cookie : undefined;
}

/** The ECN-related TCP flags of a segment, by name (AE, CWR, ECE). */
export function ecnFlagNames(o: Observed): string[] {
  const f = flagsOf(o);
  return [...(f & TcpFlag.AE ? ['AE'] : []), ...(f & TcpFlag.CWR ? ['CWR'] : []), ...(f & TcpFlag.ECE ? ['ECE'] : [])];
}

/** The IP ECN field: 0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE. */
export const ECN_CODEPOINTS = ['not-ect', 'ect1', 'ect0', 'ce'] as const;
export const ipEcnName = (o: Observed): string => ECN_CODEPOINTS[o.packet.ip ? ecnOf(o.packet.ip) : 0];

// ---- Diff rows: a SYN and the options its SYN-ACK answered with. ----

/**
 * Diff rows between a connection's first SYN and the SYN-ACK that answered it: per option kind of
 * either, a row when the SYN-ACK does not carry the same bytes (`not-echoed`: the SYN had it and the
 * SYN-ACK not; `answered-differently`: both, with other values, e.g. the server's own MSS; `added`:
 * only the SYN-ACK); timestamps only when the SYN-ACK does not echo our value (`echo-differs`). The ECN flags too, when the SYN set any. Class `expected`: a server answering
 * with other options is no interference on the path (a scan cannot tell the two apart).
 * `sentIndex`/`receivedIndex` are the segments' places in the test's segment list.
 */
export function echoDiffs(syn: Observed, synAck: Observed, sentIndex: number, receivedIndex: number): DiffRecord[] {
  const rows: DiffRecord[] = [];
  const row = (layer: DiffRecord['layer'], field: string, sent: string | null, received: string | null, change: string): void =>
    void rows.push({ sentSegment: sentIndex, receivedSegment: receivedIndex, layer, field, sent, received, class: 'expected', change });
  const kinds = (o: Observed): number[] => [...new Set((o.packet.tcp?.options ?? []).map((opt) => opt.kind).filter((k) => k > OptionKind.NOP))];
  for (const kind of kinds(syn)) {
    const ours = optionOf(syn, kind)!;
    const theirs = optionOf(synAck, kind);
    if (!theirs) row('option', optionName(kind), formatOption(ours), null, 'not-echoed');
    else if (kind === OptionKind.TIMESTAMPS) {
      // Each side has its own clock: what answers ours is the echo of our value.
      const sent = timestampsOf(syn);
      const echo = timestampsOf(synAck)?.echo;
      if (sent === undefined || echo !== sent.value) row('option', optionName(kind), formatOption(ours), formatOption(theirs), 'echo-differs');
    } else if (formatOption(ours) !== formatOption(theirs)) row('option', optionName(kind), formatOption(ours), formatOption(theirs), 'answered-differently');
  }
  for (const kind of kinds(synAck)) {
    if (!optionOf(syn, kind)) row('option', optionName(kind), null, formatOption(optionOf(synAck, kind)!), 'added');
  }
  const sentEcn = ecnFlagNames(syn);
  if (sentEcn.length > 0 && sentEcn.join('+') !== ecnFlagNames(synAck).join('+')) {
    row('tcp', 'ecnFlags', sentEcn.join('+'), ecnFlagNames(synAck).join('+') || null, 'answered-differently');
  }
  return rows;
}

/**
 * The rows for the store: every segment of every connection (side initiator), and echoDiffs for each
 * connection whose SYN got a SYN-ACK.
 */
export function serverSegmentsAndDiffs(obs: ServerObservations): { segments: SegmentRecord[]; diffs: DiffRecord[] } {
  const segments: SegmentRecord[] = [];
  const diffs: DiffRecord[] = [];
  for (const c of obs.connections) {
    const sentAt = c.sent.map((o) => segments.push({ side: 'initiator', dir: 'sent', atUs: o.atUs, bytes: o.bytes }) - 1);
    const receivedAt = c.received.map((o) => segments.push({ side: 'initiator', dir: 'received', atUs: o.atUs, bytes: o.bytes }) - 1);
    const outcome = synOutcome(c);
    if (outcome.kind !== 'syn-ack') continue;
    diffs.push(...echoDiffs(outcome.syn, outcome.synAck, sentAt[c.sent.indexOf(outcome.syn)], receivedAt[c.received.indexOf(outcome.synAck)]));
  }
  return { segments, diffs };
}
