import { bytesEqual } from '../../shared/wire/bytes.js';
import { TcpFlag } from '../../shared/wire/tcp.js';
import { settledHandshake, timestampsIfWellFormed } from '../probe-scripts.js';
import { byArrival, hasData, initiatorIsns, isSynAck, seqOffset, sharedVerdict, timestampValue } from '../judge-helpers.js';
import type { Observed } from '../observed.js';
import type { ProbeConnection } from '../probe.js';
import type { Judgement, TestCase } from '../test-case.js';
import { probeWhere } from '../probe-segments.js';

const ORIGINAL_BYTES = 100;
/**
 * The retransmissions, in sending order, all at the original's sequence number. Byte i of each is the
 * original's byte i XOR a distinct constant, so at every position every copy differs from every other
 * and each received byte tells which transmission it came from.
 */
const RETRANSMISSIONS = [
  { variant: 'same-size', bytes: ORIGINAL_BYTES, xor: 0x01 },
  { variant: 'larger', bytes: 150, xor: 0x02 },
  { variant: 'smaller', bytes: 50, xor: 0x03 },
] as const;
const FINDINGS = ['old-data', 'resized'] as const;
/** Copies of each transmission, and the gap between them. */
const COPIES = 2;
const COPY_GAP_MS = 5;

/** The pause between transmissions, like a retransmission timeout: twice the round trip, at least 200 ms. */
const pauseMs = (c: ProbeConnection): number => Math.max(200, Math.min(c.timing.timeoutMs, 2 * (c.rttMs ?? c.timing.timeoutMs)));

/** One distinct transmission (copies with the same bytes are one), its relative start and bytes. */
interface Transmission {
  label: string;
  start: number;
  bytes: Uint8Array;
  /** The segments as sent: a received segment with the same IP ID and timestamp is a copy of one. */
  copies: Observed[];
}

const covers = (t: Transmission, pos: number): boolean => pos >= t.start && pos < t.start + t.bytes.length;
const byteAt = (t: Transmission, pos: number): number => t.bytes[pos - t.start];

/** The same segment by its header: IPv4 ID and timestamp value where the segment carries them. */
function sameHeader(sent: Observed, received: Observed): boolean {
  const a = sent.packet.ip;
  const b = received.packet.ip;
  const ts = timestampValue(sent);
  const idMatch = a?.version === 4 && b?.version === 4 ? a.id === b.id : undefined;
  const tsMatch = ts !== undefined ? ts === timestampValue(received) : undefined;
  if (idMatch === undefined && tsMatch === undefined) return false;
  return idMatch !== false && tsMatch !== false;
}

/** locate's probe: the first retransmission longer than what went before at its sequence number (a normaliser rewrites or cuts it). */
const isLongerRetransmission = (o: Observed, before: readonly Observed[]): boolean =>
  hasData(o) && before.some((b) => hasData(b) && b.packet.tcp!.seq === o.packet.tcp!.seq && b.packet.payload.length < o.packet.payload.length);

export const retransmitInconsistent: TestCase = {
  name: 'retransmit-inconsistent',
  sends: `after an ordinary handshake, ${ORIGINAL_BYTES} data bytes the responder is asked not to acknowledge, then three retransmissions at the same sequence number with other bytes: same size, larger (150), smaller (50); each transmission sent twice`,
  verdicts: ['new-data', ...FINDINGS],
  long: true,
  // The original goes first, and a box keeping old data relays it (one relaying a later copy does not: the run goes again alone).
  carriesToken: 'in-stream',
  // Behind a relay the copies after the first never reach the responder as sent, which loss could also do.
  secondRunBehindRelay: true,
  // what a lost segment (and its lost copies) would also look like
  absenceVerdicts: ['old-data', 'resized'],
  probe: probeWhere(isLongerRetransmission, 'payload'),
  plan: { withholdAck: true },
  async run(connection, context) {
    const synAck = await settledHandshake(connection);
    if (!synAck) return;
    const seq = connection.sndNxt;
    const longest = Math.max(ORIGINAL_BYTES, ...RETRANSMISSIONS.map((r) => r.bytes));
    const original = context.payload(longest);
    const pause = pauseMs(connection);
    // Every transmission goes out twice, a few milliseconds apart (an identical copy is the same
    // transmission to the judge): a path that loses one copy still delivers the other, so a lost
    // transmission is not mistaken for one a box absorbed.
    const send = async (payload: Uint8Array): Promise<void> => {
      for (let copy = 0; copy < COPIES; copy++) {
        if (copy > 0) await connection.linger(COPY_GAP_MS);
        await connection.send({ flags: TcpFlag.ACK | TcpFlag.PSH, seq, payload, options: timestampsIfWellFormed(connection, synAck) });
      }
    };
    await send(original.subarray(0, ORIGINAL_BYTES));
    for (const r of RETRANSMISSIONS) {
      await connection.linger(pause);
      await send(original.subarray(0, r.bytes).map((b) => b ^ r.xor));
    }
    connection.sndNxt = (seq + longest) >>> 0;
    await connection.linger(pause);
    // Unacknowledged data on purpose: a RST releases the state on the path.
    await connection.abort();
  },
  judge(obs) {
    // The responder never answers the data (withholdAck); the answer every path gets is its SYN-ACK.
    const shared = sharedVerdict(obs, hasData, isSynAck);
    if (shared) return shared;
    const isnAtResponder = initiatorIsns(obs).received;
    const transmissions: Transmission[] = [];
    for (const o of obs.initiator.sent.filter(hasData)) {
      const start = seqOffset(o.packet.tcp!.seq, obs.isn);
      const known = transmissions.find((t) => t.start === start && bytesEqual(t.bytes, o.packet.payload));
      if (known) known.copies.push(o);
      else transmissions.push({ label: '', start, bytes: o.packet.payload, copies: [o] });
    }
    const [original, ...retransmitted] = transmissions;
    if (retransmitted.length === 0) return { verdict: 'inconclusive', detail: { reason: 'no retransmission was sent' } };
    original.label = 'original';
    for (const t of retransmitted) t.label = t.bytes.length === original.bytes.length ? 'same-size' : t.bytes.length > original.bytes.length ? 'larger' : 'smaller';

    // Every received byte, attributed to the transmission that has exactly that byte at that position.
    const arrivals = byArrival(obs.responder!.received.filter(hasData)).map((o) => {
      const start = seqOffset(o.packet.tcp!.seq, isnAtResponder);
      const from = [...o.packet.payload].map((b, i) => transmissions.find((t) => covers(t, start + i) && byteAt(t, start + i) === b));
      const sources = [...new Set(from.map((t) => t?.label ?? 'unknown'))];
      const copyOf = transmissions.find((t) => t.copies.some((c) => sameHeader(c, o)))?.label ?? null;
      return { start, length: o.packet.payload.length, from, sources, copyOf };
    });

    const findings = retransmitted.map((t) => {
      const older = transmissions.slice(0, transmissions.indexOf(t));
      const positions = Array.from(t.bytes, (_, i) => t.start + i);
      const sourceAt = (a: (typeof arrivals)[number], pos: number): Transmission | undefined => (pos >= a.start && pos < a.start + a.length ? a.from[pos - a.start] : undefined);
      const delivered = (pos: number): boolean => arrivals.some((a) => sourceAt(a, pos) === t);
      const oldThere = (pos: number): boolean => arrivals.some((a) => older.some((o) => sourceAt(a, pos) === o));
      // Where an older transmission had bytes too, the new ones never arrived and old ones did: the old bytes won
      // (a box replayed them in the retransmission, or absorbed the retransmission and kept what it had).
      const keptOld = positions.filter((pos) => older.some((o) => covers(o, pos)) && !delivered(pos) && oldThere(pos));
      // The new bytes, as one segment of the length sent.
      const whole = arrivals.some((a) => a.start === t.start && a.length === t.bytes.length && a.from.every((f) => f === t));
      const finding = keptOld.length > 0 ? 'old-data' : whole ? 'new-data' : positions.some(delivered) ? 'resized' : 'missing';
      return {
        variant: t.label,
        sentBytes: t.bytes.length,
        finding,
        ...(keptOld.length ? { oldBytes: keptOld.length } : {}),
        arrived: arrivals
          .filter((a) => a.from.includes(t) || a.copyOf === t.label)
          .map((a) => ({ offset: a.start - original.start, length: a.length, bytesFrom: a.sources, ...(a.copyOf ? { copyOf: a.copyOf } : {}) })),
      };
    });
    const detail = {
      originalBytes: original.bytes.length,
      variants: findings,
      received: arrivals.map((a) => ({ offset: a.start - original.start, length: a.length, bytesFrom: a.sources, ...(a.copyOf ? { copyOf: a.copyOf } : {}) })),
    };
    const worst = FINDINGS.find((f) => findings.some((x) => x.finding === f));
    if (worst) return { verdict: worst, detail };
    if (findings.some((x) => x.finding === 'missing')) return { verdict: 'dropped', detail: { reason: 'a retransmission never reached the responder, nor anything at its position', ...detail } } satisfies Judgement;
    return { verdict: 'new-data', detail };
  },
};
