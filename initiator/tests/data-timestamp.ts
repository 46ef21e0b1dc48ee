import { TcpFlag } from '../../shared/wire/tcp.js';
import { findOption, nop, OptionKind, viewOption } from '../../shared/wire/tcp-options.js';
import { defaultSynOptions } from '../syn-options.js';
import { hasData, isRst, isSyn, isSynAck, judgeOption, sharedVerdict } from '../judge-helpers.js';
import type { Observed } from '../probe.js';
import type { Judgement, TestCase, TestObservations } from '../test-case.js';

// ---- Data-phase judging, shared by the data-phase tests (data-*, ip-*, urgent-pointer, reserved-bits, window-rewrite). ----
// Candidates for initiator/judge-helpers.ts; they live here because this module is the one that needs them most.

const flagsOf = (o: Observed): number => o.packet.tcp?.flags ?? 0;

/** The responder's answer to a data segment: an ACK without data (a FIN-ACK also acknowledges the data), never a SYN-ACK or RST. */
export const isDataAck = (o: Observed): boolean =>
  o.packet.tcp !== undefined && (flagsOf(o) & TcpFlag.ACK) !== 0 && (flagsOf(o) & (TcpFlag.SYN | TcpFlag.RST)) === 0 && o.packet.payload.length === 0;

/** `seq - base` in sequence space (0 .. 2^32-1). */
export const relativeTo = (value: number, base: number): number => (value - base) >>> 0;

/**
 * The initiator's ISN as each side saw it: as sent, and as the responder received it (the first SYN at
 * the responder; behind a split-connection proxy that is the proxy's ISN). Relative sequence numbers
 * stay comparable across an ISN rewrite or a proxy, absolute ones don't.
 */
export function initiatorIsns(obs: TestObservations): { sent: number; received: number } {
  const synAtResponder = obs.responder?.received.find(isSyn)?.packet.tcp;
  return { sent: obs.isn, received: synAtResponder?.seq ?? obs.isn };
}

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

/**
 * judgeOption, but a probe sent without the option proves nothing: inconclusive (judgeOption would
 * say `removed`, as it compares only what arrived).
 */
export function judgeSentOption(sent: Observed, received: Observed, kind: number): Judgement {
  const judgement = judgeOption(sent, received, kind);
  if (!findOption(sent.packet.tcp?.options, kind)) return { verdict: 'inconclusive', detail: { reason: `the probe was sent without option ${judgement.detail.option}`, ...judgement.detail } };
  return judgement;
}

// ---- The test. ----

const DATA_SEGMENTS = 2;
const SEGMENT_BYTES = 100;
const VERDICTS = ['passed', 'modified', 'removed'] as const;

const timestampsOf = (o: Observed): { value: number; echo: number } | undefined => {
  const option = findOption(o.packet.tcp?.options, OptionKind.TIMESTAMPS);
  const view = option && viewOption(option);
  return view?.type === 'timestamps' ? { value: view.value, echo: view.echo } : undefined;
};

/** judgeOption, plus how far the value and echo moved (a box re-basing timestamps shows a constant offset). */
function judgeTimestamps(sent: Observed, received: Observed): Judgement {
  const judgement = judgeSentOption(sent, received, OptionKind.TIMESTAMPS);
  const s = timestampsOf(sent);
  const r = timestampsOf(received);
  if (judgement.verdict !== 'modified' || !s || !r) return judgement;
  return { ...judgement, detail: { ...judgement.detail, valueOffset: (r.value - s.value) | 0, echoOffset: (r.echo - s.echo) | 0 } };
}

export const dataTimestamp: TestCase = {
  name: 'data-timestamp',
  sends: `after a handshake negotiating timestamps, ${DATA_SEGMENTS} data segments of ${SEGMENT_BYTES} bytes, each with a timestamps option`,
  verdicts: VERDICTS,
  async run(connection, context) {
    const synAck = await connection.connect({ options: defaultSynOptions() });
    if (!synAck || isRst(synAck)) return;
    for (let i = 0; i < DATA_SEGMENTS; i++) {
      // A new value per segment, echoing the responder's latest, as a real sender's would.
      const ack = await connection.sendData(context.payload(SEGMENT_BYTES), { options: [nop(), nop(), connection.timestampOption()] });
      if (!ack || isRst(ack)) break;
    }
    await connection.close();
  },
  judge(obs) {
    const judgement = judgeDataProbes(obs, VERDICTS, judgeTimestamps);
    if (!(VERDICTS as readonly string[]).includes(judgement.verdict)) return judgement;
    // Both segments are the evidence: one segment passing unchanged is not "passed".
    const paired = forwardPairs(obs, hasData).pairs.length;
    if (judgement.verdict === 'passed' && paired < DATA_SEGMENTS) {
      return { verdict: 'inconclusive', detail: { reason: `only ${paired} of the ${DATA_SEGMENTS} data segments were sent and received`, ...judgement.detail } };
    }
    // Did the handshake negotiate timestamps as the initiator saw it (a box stripping them from the SYN or SYN-ACK)?
    const synAck = obs.initiator.received.find(isSynAck);
    return { verdict: judgement.verdict, detail: { option: 'timestamps', synAckTimestamps: synAck ? timestampsOf(synAck) !== undefined : null, ...judgement.detail } };
  },
};
