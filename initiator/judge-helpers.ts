/**
 * Judging helpers: pure functions of what the two ends observed, shared by the judges of the test
 * catalogue (initiator/catalogue/) and, through initiator/api.ts, by test files written outside mbprobe.
 * Nothing here sends a segment or reads a clock; script helpers live in probe-scripts.ts.
 */
import { diffSegments, type DiffRow } from '../shared/diff.js';
import { findOption, formatOption, OptionKind, optionName, viewOption, type OptionView } from '../shared/wire/tcp-options.js';
import { flagsOf, hasData, isAck, isDataAck, isRst, isSyn, isSynAck, type Observed } from './observed.js';
import type { Judgement, TestObservations } from './test-case.js';

// ---- Flags: what kind of segment it is (initiator/observed.ts, here for the judges' one import). ----

export { acks, flagsOf, hasData, isAck, isDataAck, isFin, isPureAck, isRst, isSyn, isSynAck } from './observed.js';

// ---- Sequence numbers. ----

/** `value - base` in sequence space, signed (serial-number arithmetic): negative when `value` lies before `base`. */
export const seqOffset = (value: number, base: number): number => (value - base) | 0;

/** `value - base` in sequence space, unsigned (0 .. 2^32-1). */
export const relativeTo = (value: number, base: number): number => (value - base) >>> 0;

/** A segment's ack number relative (signed) to `isn`, the ISN of the side it acknowledges as its sender knows it. */
export const ackOffset = (o: Observed, isn: number): number => seqOffset(o.packet.tcp!.ack, isn);

/** Sequence numbers relative to an ISN: the bytes from `start` up to, not including, `end`. */
export interface SeqRange {
  start: number;
  end: number;
}

/** The bytes a segment carries, relative (signed) to `isn`, the ISN of its sender as the observing side knows it. */
export const seqRange = (o: Observed, isn: number): SeqRange => {
  const start = seqOffset(o.packet.tcp!.seq, isn);
  return { start, end: start + o.packet.payload.length };
};

/** Do the two ranges share a byte? */
export const overlaps = (a: SeqRange, b: SeqRange): boolean => a.start < b.end && b.start < a.end;

/**
 * The initiator's ISN as each side saw it: as sent, and as the responder received it (the first SYN at
 * the responder; behind a split-connection proxy that is the proxy's ISN). Relative sequence numbers
 * stay comparable across an ISN rewrite or a proxy, absolute ones don't.
 */
export function initiatorIsns(obs: TestObservations): { sent: number; received: number } {
  const synAtResponder = obs.responder?.received.find(isSyn)?.packet.tcp;
  return { sent: obs.isn, received: synAtResponder?.seq ?? obs.isn };
}

/**
 * The responder's ISN as each side saw it: as it sent it in its first SYN-ACK, and as the initiator
 * received it in the first SYN-ACK that arrived; undefined on a side without a SYN-ACK.
 */
export function responderIsns(obs: TestObservations): { sent: number | undefined; received: number | undefined } {
  return {
    sent: obs.responder?.sent.find(isSynAck)?.packet.tcp?.seq,
    received: obs.initiator.received.find(isSynAck)?.packet.tcp?.seq,
  };
}

// ---- Options. ----

/** The typed view of the first option `kind` in the segment, if it is there and reads as `type`. */
function optionView<T extends OptionView['type']>(o: Observed | undefined, kind: number, type: T): Extract<OptionView, { type: T }> | undefined {
  const option = findOption(o?.packet.tcp?.options, kind);
  const view = option && viewOption(option);
  return view?.type === type ? (view as Extract<OptionView, { type: T }>) : undefined;
}

/** The value and echo of the segment's timestamps option; undefined when it has none, or a malformed one. */
export const timestampsOf = (o: Observed): { value: number; echo: number } | undefined => {
  const view = optionView(o, OptionKind.TIMESTAMPS, 'timestamps');
  return view ? { value: view.value, echo: view.echo } : undefined;
};

/** The value of the segment's timestamps option; undefined when it has none, or a malformed one. */
export const timestampValue = (o: Observed): number | undefined => timestampsOf(o)?.value;

/** The blocks of the segment's SACK option, as they are on the wire (absolute); none without a well-formed one. */
export const sackBlocksOf = (o: Observed): Array<[number, number]> => optionView(o, OptionKind.SACK, 'sack')?.blocks ?? [];

/** The MSS the segment announces; undefined without a well-formed MSS option. */
export const mssOf = (o: Observed): number | undefined => optionView(o, OptionKind.MSS, 'mss')?.mss;

/** The shift of the segment's window scale option; null without a segment or a well-formed option. */
export const windowScaleOf = (o: Observed | undefined): number | null => optionView(o, OptionKind.WINDOW_SCALE, 'window-scale')?.shift ?? null;

// ---- Order. ----

/** The first segment matching, or undefined. */
export const first = (list: readonly Observed[], match: (o: Observed) => boolean): Observed | undefined => list.find(match);

/** The segments in the order they arrived (by the observing side's clock; equal times keep the list's order). */
export const byArrival = (list: readonly Observed[]): Observed[] => list.map((o, i) => ({ o, i })).sort((a, b) => a.o.atUs - b.o.atUs || a.i - b.i).map((x) => x.o);

/** Indexes into `list`, in the order their segments arrived (equal times by index). */
export const indexesByArrival = (list: readonly Observed[], indexes: readonly number[]): number[] => [...indexes].sort((a, b) => list[a].atUs - list[b].atUs || a - b);

// ---- Verdicts. ----

/**
 * The verdicts shared by every test, decided before the test's own judge looks at options:
 * inconclusive (no responder view), intercepted (a middlebox answered the connection itself and the
 * probe never reached the responder), reset (a RST the responder did not send), dropped (the
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
  const probesArrived = obs.responder.received.filter(probe);
  const interception = probesArrived.length === 0 ? interceptionEvidence(obs) : undefined;
  if (interception) return { verdict: 'intercepted', detail: { probesSent: sentProbes.length, probesReceived: 0, ...interception } };
  const forgedRst = obs.initiator.received.filter(isRst).length > 0 && obs.responder.sent.filter(isRst).length === 0;
  if (forgedRst) return { verdict: 'reset', detail: { resets: obs.initiator.received.filter(isRst).map((o) => segmentSummary(o)) } };
  if (probesArrived.length === 0) return { verdict: 'dropped', detail: { probesSent: sentProbes.length, probesReceived: 0, ...obs.notes } };
  const answersSent = obs.responder.sent.filter(answer);
  const answersArrived = obs.initiator.received.filter(answer);
  if (answersSent.length > 0 && answersArrived.length === 0) return { verdict: 'reply-dropped', detail: { answersSent: answersSent.length, answersReceived: 0 } };
  if (answersSent.length === 0 && answersArrived.length === 0) return { verdict: 'inconclusive', detail: { reason: 'the responder received the probe but sent no answer (rate or budget limit?)' } };
  return undefined;
}

/**
 * Evidence that a middlebox answered the initiator's connection in the responder's place: the
 * initiator got a SYN-ACK while the responder sent none in this test (it never saw the connection,
 * or saw only a middlebox's own). Undefined when there is no such evidence. The detail says what
 * answered: its SYN-ACK, whether it acknowledged our data, and the start of anything it sent (an
 * interception proxy's own error page names itself there).
 */
export function interceptionEvidence(obs: TestObservations): Record<string, unknown> | undefined {
  const synAck = obs.initiator.received.find(isSynAck);
  if (!synAck || !obs.responder || obs.responder.sent.some(isSynAck)) return undefined;
  const data = obs.initiator.received.filter(hasData);
  const answered: Record<string, unknown> = {
    synAck: { window: synAck.packet.tcp!.window, options: (synAck.packet.tcp!.options ?? []).filter((o) => o.kind > 1).map((o) => optionName(o.kind)) },
    dataAcknowledged: obs.initiator.received.some((o) => isAck(o) && !isSynAck(o) && seqOffset(o.packet.tcp!.ack, obs.isn) > 1),
    bytesReceived: data.reduce((n, o) => n + o.packet.payload.length, 0),
    resets: obs.initiator.received.filter(isRst).length,
  };
  const response = describeResponse(byArrival(data));
  if (response) answered.response = response;
  return {
    reason: "a middlebox answered the connection: the initiator got a SYN-ACK the responder never sent, and the probe never reached the responder",
    responderSegmentsReceived: obs.responder.received.length,
    answeredBy: answered,
  };
}

/** The start of what a middlebox sent as data: an HTTP status line and its Server/Via headers, a TLS record type, or the first bytes. */
function describeResponse(data: readonly Observed[]): Record<string, unknown> | undefined {
  if (data.length === 0) return undefined;
  const bytes = data[0].packet.payload;
  const text = new TextDecoder('latin1').decode(bytes.subarray(0, 512));
  if (text.startsWith('HTTP/')) {
    const lines = text.split('\r\n');
    const header = (name: string): string | undefined => lines.find((l) => l.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim();
    return { http: lines[0], ...(header('server') ? { server: header('server') } : {}), ...(header('via') ? { via: header('via') } : {}) };
  }
  if (bytes.length >= 5 && bytes[0] >= 20 && bytes[0] <= 23 && bytes[1] === 3) return { tlsRecordType: bytes[0], ...(bytes[0] === 21 && bytes.length >= 7 ? { tlsAlert: bytes[6] } : {}) };
  return { firstBytes: Array.from(bytes.subarray(0, 16), (b) => b.toString(16).padStart(2, '0')).join('') };
}

export function segmentSummary(o: Observed): Record<string, unknown> {
  const tcp = o.packet.tcp;
  return tcp ? { flags: tcp.flags, seq: tcp.seq, ack: tcp.ack, length: o.packet.payload.length } : { length: o.bytes.length };
}

/**
 * Option tests: compare option `kind` in the segment as sent and as received.
 * passed (present and identical), modified (present, bytes differ), removed (gone or NOPed out);
 * inconclusive when the segment was sent without the option (it proves nothing).
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

/**
 * The judge of a SYN option test: the shared verdicts (probe = the SYN, answer = the SYN-ACK), then
 * judgeOption on option `kind` in the first SYN sent and the first SYN the responder received.
 */
export function judgeSynOption(obs: TestObservations, kind: number): Judgement {
  const shared = sharedVerdict(obs, isSyn, isSynAck);
  if (shared) return shared;
  const sent = first(obs.initiator.sent, isSyn)!;
  const received = first(obs.responder!.received, isSyn)!;
  return judgeOption(sent, received, kind);
}

export const describeRow = (r: DiffRow): Record<string, unknown> => ({ field: `${r.layer}.${r.field}`, sent: r.sent, received: r.received, ...(r.change ? { change: r.change } : {}) });

// ---- Data-phase judging, shared by the data-phase tests (data-*, ip-*, urgent-pointer, reserved-bits, window-rewrite). ----

export interface ForwardPair {
  /** Sequence number of the probe's first byte, relative to the initiator's ISN (1 = first data byte). */
  relativeSeq: number;
  /** The first copy the initiator sent (retransmissions are the same probe). */
  sent: Observed;
  /** The first segment at the responder starting at that relative sequence number, or else covering it. */
  received: Observed;
}

/**
 * Pairs every probe the initiator sent (one per distinct sequence number) with the segment that became
 * of it at the responder, by relative sequence number: a retransmission, a duplicate or a reordered
 * arrival does not pair a probe with another probe's copy. A probe re-segmented on the path is paired
 * with the received segment covering its first byte. `missing`: probes of which nothing arrived.
 */
export function forwardPairs(obs: TestObservations, probe: (o: Observed) => boolean): { pairs: ForwardPair[]; missing: Observed[] } {
  const isns = initiatorIsns(obs);
  const received = obs.responder?.received.filter((o) => probe(o) && o.packet.tcp !== undefined) ?? [];
  const distinct = new Map<number, Observed>();
  for (const o of obs.initiator.sent.filter((s) => probe(s) && s.packet.tcp !== undefined)) {
    const rel = relativeTo(o.packet.tcp!.seq, isns.sent);
    if (!distinct.has(rel)) distinct.set(rel, o);
  }
  const startOf = (o: Observed): number => relativeTo(o.packet.tcp!.seq, isns.received);
  const pairs: ForwardPair[] = [];
  const missing: Observed[] = [];
  for (const [relativeSeq, sent] of distinct) {
    const copy = received.find((o) => startOf(o) === relativeSeq)
      ?? received.find((o) => relativeTo(relativeSeq, startOf(o)) < o.packet.payload.length);
    if (copy) pairs.push({ relativeSeq, sent, received: copy });
    else missing.push(sent);
  }
  return { pairs, missing };
}

/**
 * The judge of a data-phase test: the shared verdicts (probe = a data segment, answer = an ACK), then
 * `judgePair` on every probe paired with what arrived of it. The verdict is the one furthest from "no
 * interference" in `verdicts` among the probes; a probe of which nothing arrived makes an otherwise
 * clean result `dropped`, and a result with no pair at all is inconclusive, never the first verdict.
 */
export function judgeDataProbes(
  obs: TestObservations,
  verdicts: readonly string[],
  judgePair: (sent: Observed, received: Observed) => Judgement,
  probe: (o: Observed) => boolean = hasData,
): Judgement {
  const shared = sharedVerdict(obs, probe, isDataAck);
  if (shared) return shared;
  const { pairs, missing } = forwardPairs(obs, probe);
  if (pairs.length === 0) {
    return { verdict: 'inconclusive', detail: { reason: 'no data segment the responder received could be paired with a probe by sequence number', probesSent: obs.initiator.sent.filter(probe).length } };
  }
  const judged = pairs.map((p) => ({ pair: p, judgement: judgePair(p.sent, p.received) }));
  const foreign = judged.find((j) => !verdicts.includes(j.judgement.verdict));
  if (foreign) return foreign.judgement;
  const rank = (j: (typeof judged)[number]): number => verdicts.indexOf(j.judgement.verdict);
  const worst = judged.reduce((a, b) => (rank(b) > rank(a) ? b : a));
  const missingSeqs = missing.map((o) => relativeTo(o.packet.tcp!.seq, obs.isn));
  if (rank(worst) === 0 && missing.length > 0) {
    return { verdict: 'dropped', detail: { reason: 'a probe never reached the responder', probesSent: pairs.length + missing.length, probesReceived: pairs.length, missingRelativeSeqs: missingSeqs } };
  }
  if (judged.length === 1 && missing.length === 0) return { verdict: worst.judgement.verdict, detail: { relativeSeq: worst.pair.relativeSeq, ...worst.judgement.detail } };
  return {
    verdict: worst.judgement.verdict,
    detail: {
      segments: judged.map((j) => ({ relativeSeq: j.pair.relativeSeq, verdict: j.judgement.verdict, ...j.judgement.detail })),
      ...(missing.length ? { missingRelativeSeqs: missingSeqs } : {}),
    },
  };
}
