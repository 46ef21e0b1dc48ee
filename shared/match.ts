import { bytesEqual } from './wire/bytes.js';
import { decodePacket, type DecodedPacket } from './wire/packet.js';
import { TcpFlag, type TcpHeader } from './wire/tcp.js';
import type { TcpOption } from './wire/tcp-options.js';

/**
 * Matching what one side sent with what the other side received, when the path may have split,
 * merged, dropped, duplicated, reordered or injected segments.
 *
 * Segments of one direction are placed in sequence space relative to each side's ISN (so an ISN
 * rewrite doesn't break the matching; without an ISN, relative to the first sent segment, so ranges
 * that wrap past 2^32 stay contiguous). A segment occupies its SYN, its payload bytes and its FIN.
 * Segments that occupy sequence space are grouped by overlap: each group is one piece of the stream
 * as sent and as received. Segments that occupy none (pure ACKs, window updates, RSTs) are paired
 * by position and header.
 *
 * Inside a group, a received segment is first paired with a sent segment of exactly the same range,
 * preferring identical payload and options (this tells which copy of a retransmission arrived, and
 * an injected look-alike from a real one); received pieces with no same-range counterpart are
 * paired with the sent segments they overlap.
 */
export type MatchRelation =
  | 'one-to-one'
  | 'split' // one sent segment arrived as several pieces
  | 'coalesced' // several sent segments arrived as one
  | 'resegmented' // several became several with different boundaries
  | 'duplicated' // a range arrived more times than it was sent
  | 'retransmitted'; // the sender sent a range more than once

export interface MatchGroup {
  /** Indexes into the sent list, in sending order (every copy of the range, delivered or not). */
  sent: number[];
  /** Indexes into the received list, in receiving order (injected segments excluded). */
  received: number[];
  /** The principal relation: resegmented > split > coalesced > duplicated > retransmitted > one-to-one. */
  relation: MatchRelation;
  /** Every relation that applies, principal first (`['one-to-one']` when nothing else does). */
  relations: MatchRelation[];
  /** [sent, received] index pairs: which sent segment(s) each received segment came from. */
  pairs: Array<[sent: number, received: number]>;
  /** For groups carrying payload: did every sent byte arrive, and every received byte equal what was sent there? */
  payloadIntact?: boolean;
}

export interface MatchResult {
  groups: MatchGroup[];
  /**
   * Sent segments no received segment was paired with. When the sender retransmitted and fewer
   * copies arrived than were sent, the copies that did not arrive (told apart by their bytes, or by
   * the order of arrival) are here too.
   */
  dropped: number[];
  /**
   * Received segments that correspond to nothing that was sent: no sent counterpart at all, or an
   * extra copy of a range that already arrived whose bytes match nothing the sender sent.
   */
  injected: number[];
  /** A received segment arrived before one that was sent before it (duplicate copies excluded). */
  reordered: boolean;
  /** Which of split/coalesced/resegmented/duplicated/retransmitted/dropped/injected/reordered happened. */
  events: Set<MatchRelation | 'dropped' | 'injected' | 'reordered'>;
}

export interface MatchOptions {
  /** ISN of this direction as sent and as received; unset = absolute sequence numbers. */
  isn?: { sent: number; received: number };
  /** ISN of the other direction (the ack numbers' space) as seen in the sent and in the received segments; helps pair pure ACKs. */
  ackIsn?: { sent: number; received: number };
}

const SYN_MARK = 256;
const FIN_MARK = 257;
/** Positions are linear within [-2^30, 3 * 2^30) around the reference, wherever 2^32 falls. */
const SLACK = 0x40000000;

interface Placed {
  index: number;
  /** First sequence position occupied (the SYN, else the first payload byte). */
  start: number;
  /** One past the last position occupied (payload, then FIN). */
  end: number;
  syn: boolean;
  tcp: TcpHeader;
  packet: DecodedPacket;
  /** Occupies no sequence space (pure ACK, window update, RST without data). */
  control: boolean;
  /** Exact-match key: the range, or for control segments RST-or-not and the position. */
  key: string;
  /** Ack number relative to the ack ISN when known, else absolute; undefined without ACK. */
  ack?: number;
}

type PairKind = 'exact' | 'duplicate' | 'overlap';

const linear = (seq: number, ref: number): number => ((seq - ref + SLACK) >>> 0) - SLACK;

function place(packets: readonly DecodedPacket[], ref: number, ackRef: number): Placed[] {
  const placed: Placed[] = [];
  packets.forEach((packet, index) => {
    const tcp = packet.tcp;
    if (!tcp) return;
    const syn = (tcp.flags & TcpFlag.SYN) !== 0;
    const fin = (tcp.flags & TcpFlag.FIN) !== 0;
    const rst = (tcp.flags & TcpFlag.RST) !== 0;
    const start = linear(tcp.seq, ref);
    const end = start + (syn ? 1 : 0) + packet.payload.length + (fin ? 1 : 0);
    const control = end === start;
    const key = control ? `${rst ? 'R' : '.'}@${start}` : `${start}-${end}`;
    const ack = tcp.flags & TcpFlag.ACK ? (tcp.ack - ackRef) >>> 0 : undefined;
    placed.push({ index, start, end, syn, tcp, packet, control, key, ack });
  });
  return placed;
}

/** What occupies sequence position `pos` of a segment: a payload byte (0..255), its SYN or its FIN. */
function valueAt(p: Placed, pos: number): number {
  let off = pos - p.start;
  if (p.syn) {
    if (off === 0) return SYN_MARK;
    off -= 1;
  }
  return off < p.packet.payload.length ? p.packet.payload[off] : FIN_MARK;
}

function valuesEqual(a: Placed, b: Placed, from: number, to: number): boolean {
  for (let pos = from; pos < to; pos++) if (valueAt(a, pos) !== valueAt(b, pos)) return false;
  return true;
}

function optionsEqual(a: TcpHeader, b: TcpHeader): boolean {
  const x: readonly TcpOption[] = a.options ?? [];
  const y: readonly TcpOption[] = b.options ?? [];
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) {
    if (x[i].kind !== y[i].kind || (x[i].length ?? x[i].data.length + 2) !== (y[i].length ?? y[i].data.length + 2) || !bytesEqual(x[i].data, y[i].data)) return false;
  }
  return bytesEqual(a.optionsTail ?? new Uint8Array(0), b.optionsTail ?? new Uint8Array(0));
}

/**
 * How alike a sent and a received segment of the same range are. Data: 2 = payload, options and
 * flags equal; 1 = payload equal; 0 = same range only. Control segments: ack 2 (relative when the
 * ack ISNs are known), options 2 (timestamps make a segment's options nearly unique), window 1,
 * flags 1; so a real ACK whose ack number was rewritten still beats a forged one.
 */
function likeness(s: Placed, r: Placed): number {
  if (s.control) {
    return (s.ack === r.ack ? 2 : 0) + (optionsEqual(s.tcp, r.tcp) ? 2 : 0) + (s.tcp.window === r.tcp.window ? 1 : 0) + (s.tcp.flags === r.tcp.flags ? 1 : 0);
  }
  if (!bytesEqual(s.packet.payload, r.packet.payload)) return 0;
  return s.tcp.flags === r.tcp.flags && optionsEqual(s.tcp, r.tcp) ? 2 : 1;
}
const CONTROL_IDENTICAL = 6;
const LIKENESS_LEVELS = [6, 5, 4, 3, 2, 1, 0];

/** Two received segments that are copies of each other (a duplicate made on the path). */
const sameSegment = (a: Placed, b: Placed): boolean =>
  a.key === b.key && a.tcp.flags === b.tcp.flags && a.tcp.ack === b.tcp.ack && a.tcp.window === b.tcp.window && bytesEqual(a.packet.payload, b.packet.payload) && optionsEqual(a.tcp, b.tcp);

const overlaps = (a: Placed, b: Placed): boolean => a.start < b.end && b.start < a.end;
const within = (inner: Placed, outer: Placed): boolean => outer.start <= inner.start && inner.end <= outer.end;

function groupBy<T>(list: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const t of list) {
    const k = key(t);
    const bucket = map.get(k);
    if (bucket) bucket.push(t);
    else map.set(k, [t]);
  }
  return map;
}

const decodeAll = (list: ReadonlyArray<Uint8Array | DecodedPacket>): DecodedPacket[] => list.map((item) => (item instanceof Uint8Array ? decodePacket(item) : item));

export function matchSegments(
  sentList: ReadonlyArray<Uint8Array | DecodedPacket>,
  receivedList: ReadonlyArray<Uint8Array | DecodedPacket>,
  options: MatchOptions = {},
): MatchResult {
  const sentPackets = decodeAll(sentList);
  const receivedPackets = decodeAll(receivedList);
  const firstSeq = (ps: DecodedPacket[]): number | undefined => ps.find((p) => p.tcp)?.tcp?.seq;
  const base = firstSeq(sentPackets) ?? firstSeq(receivedPackets) ?? 0;
  const sent = place(sentPackets, options.isn?.sent ?? base, options.ackIsn?.sent ?? 0);
  const received = place(receivedPackets, options.isn?.received ?? base, options.ackIsn?.received ?? 0);
  const sentByIndex = new Map(sent.map((s) => [s.index, s]));

  const pairedTo = new Map<number, { sent: number[]; kind: PairKind }>();
  const pair = (r: Placed, to: number[], kind: PairKind): void => void pairedTo.set(r.index, { sent: to, kind });
  const injected = new Set<number>();

  // Where each received segment sits in sending order, when that is unambiguous (one candidate):
  // used to choose among identical copies of a retransmission the one that keeps arrival order.
  const sentByKey = groupBy(sent, (s) => s.key);
  const rank = new Map<number, number>();
  for (const r of received) {
    const candidates = sentByKey.get(r.key) ?? (r.control ? [] : sent.filter((s) => !s.control && overlaps(s, r)));
    if (candidates.length === 1) rank.set(r.index, candidates[0].index);
  }
  const choose = (r: Placed, candidates: Placed[]): Placed => {
    let best = candidates[0];
    let bestInversions = Infinity;
    for (const c of candidates) {
      let inversions = 0;
      for (const [ri, si] of rank) {
        if (ri === r.index) continue;
        if ((ri < r.index && si > c.index) || (ri > r.index && si < c.index)) inversions++;
      }
      // Ties go to the later copy: a sender retransmits because an earlier copy was lost.
      if (inversions <= bestInversions) {
        best = c;
        bestInversions = inversions;
      }
    }
    return best;
  };

  // 1. Exact ranges (and control segments by position), most alike first.
  for (const [key, rs] of groupBy(received, (r) => r.key)) {
    const ss = sentByKey.get(key);
    if (!ss) continue;
    const used = new Set<number>();
    for (const level of LIKENESS_LEVELS) {
      const candidatesOf = (r: Placed): Placed[] => ss.filter((s) => !used.has(s.index) && likeness(s, r) >= level);
      const pending = rs.filter((r) => !pairedTo.has(r.index) && candidatesOf(r).length > 0);
      let last = -1;
      pending.forEach((r, i) => {
        let candidates = candidatesOf(r);
        if (candidates.length === 0) return;
        // Copies of one range arrive in the order they were sent: keep later arrivals on later
        // copies, and leave a copy for each arrival still to be paired.
        const later = candidates.filter((s) => s.index > last);
        if (later.length > 0) candidates = later;
        const room = Math.min(pending.length - i - 1, candidates.length - 1);
        candidates = candidates.slice(0, candidates.length - room);
        const s = choose(r, candidates);
        last = s.index;
        used.add(s.index);
        pair(r, [s.index], 'exact');
        rank.set(r.index, s.index);
      });
    }
    // Every copy sent has a counterpart: what is left is a duplicate, or an injected look-alike.
    for (const r of rs) {
      if (pairedTo.has(r.index)) continue;
      const scores = ss.map((s) => likeness(s, r));
      const best = Math.max(...scores);
      const copyOfArrived = rs.some((o) => o !== r && pairedTo.get(o.index)?.kind === 'exact' && sameSegment(o, r));
      if (copyOfArrived || best >= (r.control ? CONTROL_IDENTICAL : 1)) pair(r, [ss[scores.lastIndexOf(best)].index], 'duplicate');
      else injected.add(r.index);
    }
  }

  // 2. Segments occupying sequence space, grouped by overlap.
  const sentData = sent.filter((s) => !s.control);
  const receivedData = received.filter((r) => !r.control && !injected.has(r.index));
  const parent = new Map<string, string>();
  const find = (k: string): string => {
    let root = k;
    while (parent.get(root) !== root) root = parent.get(root)!;
    parent.set(k, root);
    return root;
  };
  for (const s of sentData) parent.set(`s${s.index}`, `s${s.index}`);
  for (const r of receivedData) parent.set(`r${r.index}`, `r${r.index}`);
  for (const s of sentData) {
    for (const r of receivedData) if (overlaps(s, r)) parent.set(find(`s${s.index}`), find(`r${r.index}`));
  }
  const components = new Map<string, { sent: Placed[]; received: Placed[] }>();
  const componentOf = (k: string): { sent: Placed[]; received: Placed[] } => {
    const root = find(k);
    let c = components.get(root);
    if (!c) components.set(root, (c = { sent: [], received: [] }));
    return c;
  };
  for (const s of sentData) componentOf(`s${s.index}`).sent.push(s);
  for (const r of receivedData) componentOf(`r${r.index}`).received.push(r);

  const groups: MatchGroup[] = [];
  for (const { sent: gs, received: all } of components.values()) {
    if (gs.length === 0 || all.length === 0) continue;
    // Pieces without a same-range counterpart: pair with the sent segments they overlap.
    for (const r of all) {
      if (pairedTo.has(r.index)) continue;
      const from = new Set<number>();
      let mismatch = false;
      let alreadyArrived = true;
      for (const [a, b] of intervals(r.start, r.end, gs)) {
        const covering = gs.filter((s) => s.start <= a && b <= s.end);
        if (covering.length === 0) continue;
        const matching = covering.filter((s) => valuesEqual(s, r, a, b));
        from.add((matching.length ? matching : covering)[(matching.length ? matching : covering).length - 1].index);
        if (matching.length === 0) mismatch = true;
        if (!all.some((o) => o !== r && pairedTo.get(o.index)?.kind === 'exact' && o.start <= a && b <= o.end)) alreadyArrived = false;
      }
      // Bytes that already arrived intact, arriving again with content the sender never sent.
      if (mismatch && alreadyArrived) injected.add(r.index);
      else pair(r, [...from].sort((x, y) => x - y), 'overlap');
    }
    const gr = all.filter((r) => !injected.has(r.index));
    if (gr.length === 0) continue;
    const relations = relationsOf(gs, gr, (r) => pairedTo.get(r.index)!, sentByIndex);
    const group: MatchGroup = {
      sent: gs.map((s) => s.index),
      received: gr.map((r) => r.index),
      relation: relations[0],
      relations,
      pairs: gr.flatMap((r) => pairedTo.get(r.index)!.sent.map((s): [number, number] => [s, r.index])),
    };
    if ([...gs, ...gr].some((p) => p.packet.payload.length > 0)) group.payloadIntact = payloadIntact(gs, gr, (r) => pairedTo.get(r.index)!.sent.map((i) => sentByIndex.get(i)!));
    groups.push(group);
  }

  // 3. A data segment whose payload was stripped on the way arrives as a zero-length segment at
  //    its position: pair them when nothing else of that data arrived, rather than report a drop
  //    and an injection.
  const deliveredSoFar = new Set([...pairedTo.values()].flatMap((p) => p.sent));
  for (const r of received) {
    if (!r.control || pairedTo.has(r.index) || r.tcp.flags & TcpFlag.RST) continue;
    const s = sentData.find((x) => x.start === r.start && !x.syn && x.packet.payload.length > 0 && !deliveredSoFar.has(x.index));
    if (!s) continue;
    injected.delete(r.index);
    pair(r, [s.index], 'overlap');
    deliveredSoFar.add(s.index);
    groups.push({ sent: [s.index], received: [r.index], relation: 'one-to-one', relations: ['one-to-one'], pairs: [[s.index, r.index]], payloadIntact: false });
  }

  // 4. Control segments: one group per sent segment that something arrived for.
  for (const s of sent.filter((x) => x.control)) {
    const rs = received.filter((r) => pairedTo.get(r.index)?.sent[0] === s.index);
    if (rs.length === 0) continue;
    const relation: MatchRelation = rs.length > 1 ? 'duplicated' : 'one-to-one';
    groups.push({ sent: [s.index], received: rs.map((r) => r.index), relation, relations: [relation], pairs: rs.map((r): [number, number] => [s.index, r.index]) });
  }

  groups.sort((a, b) => a.sent[0] - b.sent[0]);
  const delivered = new Set<number>();
  for (const { sent: to } of pairedTo.values()) for (const i of to) delivered.add(i);
  const dropped = sent.filter((s) => !delivered.has(s.index)).map((s) => s.index);
  const injectedList = received.filter((r) => !pairedTo.has(r.index) || injected.has(r.index)).map((r) => r.index);
  let reordered = false;
  let latest = -1;
  for (const r of received) {
    const p = pairedTo.get(r.index);
    if (!p || p.kind === 'duplicate' || injected.has(r.index)) continue;
    const at = Math.min(...p.sent);
    if (at < latest) reordered = true;
    latest = Math.max(latest, at);
  }
  const events: MatchResult['events'] = new Set();
  for (const g of groups) for (const rel of g.relations) if (rel !== 'one-to-one') events.add(rel);
  if (dropped.length) events.add('dropped');
  if (injectedList.length) events.add('injected');
  if (reordered) events.add('reordered');
  return { groups, dropped, injected: injectedList, reordered, events };
}

/** The elementary intervals of [start, end) cut at every boundary of `others`. */
function intervals(start: number, end: number, others: readonly Placed[]): Array<[number, number]> {
  const cuts = new Set<number>([start, end]);
  for (const o of others) {
    if (o.start > start && o.start < end) cuts.add(o.start);
    if (o.end > start && o.end < end) cuts.add(o.end);
  }
  const sorted = [...cuts].sort((a, b) => a - b);
  return sorted.slice(1).map((b, i): [number, number] => [sorted[i], b]);
}

function relationsOf(gs: Placed[], gr: Placed[], pairing: (r: Placed) => { sent: number[]; kind: PairKind }, sentByIndex: Map<number, Placed>): MatchRelation[] {
  if (gs.length === 1 && gr.length === 1) return ['one-to-one'];
  const pieces = gr.filter((r) => pairing(r).kind === 'overlap');
  const piecesOf = new Map<number, Placed[]>();
  for (const r of pieces) for (const i of pairing(r).sent) piecesOf.set(i, [...(piecesOf.get(i) ?? []), r]);
  const split = [...piecesOf].some(([i, rs]) => rs.length >= 2 && rs.every((r) => within(r, sentByIndex.get(i)!)));
  const multi = pieces.filter((r) => pairing(r).sent.length >= 2);
  const aligned = (r: Placed): boolean => {
    const from = pairing(r).sent.map((i) => sentByIndex.get(i)!);
    return r.start === Math.min(...from.map((s) => s.start)) && r.end === Math.max(...from.map((s) => s.end));
  };
  const coalesced = multi.some(aligned);
  const irregular = multi.some((r) => !aligned(r));
  let duplicated = false;
  let retransmitted = false;
  const all = [...gs, ...gr];
  const lo = Math.min(...all.map((p) => p.start));
  const hi = Math.max(...all.map((p) => p.end));
  for (const [a, b] of intervals(lo, hi, all)) {
    const sentCount = gs.filter((s) => s.start <= a && b <= s.end).length;
    const receivedCount = gr.filter((r) => r.start <= a && b <= r.end).length;
    if (sentCount >= 2) retransmitted = true;
    if (receivedCount > Math.max(sentCount, 1)) duplicated = true;
  }
  const relations: MatchRelation[] = [];
  if (irregular || (split && coalesced)) relations.push('resegmented');
  if (split) relations.push('split');
  if (coalesced) relations.push('coalesced');
  if (duplicated) relations.push('duplicated');
  if (retransmitted) relations.push('retransmitted');
  return relations.length ? relations : ['one-to-one'];
}

/**
 * Every payload byte sent arrived (coverage), and every payload byte received equals what the
 * sent segment it was paired with holds at that position (so a retransmission whose bytes differ
 * from the first copy is judged against the copy that arrived).
 */
function payloadIntact(gs: Placed[], gr: Placed[], sourcesOf: (r: Placed) => Placed[]): boolean {
  const all = [...gs, ...gr];
  const lo = Math.min(...all.map((p) => p.start));
  const hi = Math.max(...all.map((p) => p.end));
  const sentCovered = new Uint8Array(hi - lo);
  const receivedCovered = new Uint8Array(hi - lo);
  let intact = true;
  for (const s of gs) for (let pos = s.start; pos < s.end; pos++) if (valueAt(s, pos) < SYN_MARK) sentCovered[pos - lo] = 1;
  for (const r of gr) {
    const sources = sourcesOf(r);
    for (let pos = r.start; pos < r.end; pos++) {
      const v = valueAt(r, pos);
      const there = sources.filter((s) => s.start <= pos && pos < s.end).map((s) => valueAt(s, pos));
      if (v < SYN_MARK) receivedCovered[pos - lo] = 1;
      if (v < SYN_MARK || there.some((x) => x < SYN_MARK)) {
        if (!there.includes(v)) intact = false;
      }
    }
  }
  return intact && bytesEqual(sentCovered, receivedCovered);
}
