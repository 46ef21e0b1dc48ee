import { bytesEqual } from './wire/bytes.js';
import { decodePacket, type DecodedPacket } from './wire/packet.js';
import { TcpFlag } from './wire/tcp.js';

/**
 * Matching what one side sent with what the other side received, when the path may have split,
 * merged, dropped, duplicated, reordered or injected segments. Segments of one direction are placed
 * in sequence space relative to each side's ISN (so an ISN rewrite doesn't break the matching), then
 * grouped by overlap: each group is one piece of the byte stream (or one control segment) as sent
 * and as received.
 */
export type MatchRelation =
  | 'one-to-one'
  | 'split' // one sent segment arrived as several
  | 'coalesced' // several sent segments arrived as one
  | 'resegmented' // several became several with different boundaries
  | 'duplicated' // one sent range arrived more than once
  | 'retransmitted'; // the same range was sent more than once (the received copies are matched to it)

export interface MatchGroup {
  /** Indexes into the sent list, in sending order. */
  sent: number[];
  /** Indexes into the received list, in receiving order. */
  received: number[];
  relation: MatchRelation;
  /** For data groups: do the received bytes equal the sent bytes over the group's range? */
  payloadIntact?: boolean;
}

export interface MatchResult {
  groups: MatchGroup[];
  /** Sent segments nothing was received for. */
  dropped: number[];
  /** Received segments that correspond to nothing that was sent. */
  injected: number[];
  /** Received order of the groups differs from sending order. */
  reordered: boolean;
  /** Which of split/coalesced/resegmented/duplicated/dropped/injected/reordered happened. */
  events: Set<MatchRelation | 'dropped' | 'injected' | 'reordered'>;
}

export interface MatchOptions {
  /** ISN of this direction as sent and as received; unset = absolute sequence numbers. */
  isn?: { sent: number; received: number };
}

interface Placed {
  index: number;
  start: number;
  end: number;
  /** Control segments (no payload) are matched by kind and position, data by byte range. */
  control?: string;
  packet: DecodedPacket;
}

function place(list: ReadonlyArray<Uint8Array | DecodedPacket>, isn: number): Placed[] {
  const placed: Placed[] = [];
  list.forEach((item, index) => {
    const packet = item instanceof Uint8Array ? decodePacket(item) : item;
    if (!packet.tcp) return;
    const flags = packet.tcp.flags;
    // Data after a SYN starts one past the SYN's sequence number.
    const start = (packet.tcp.seq - isn + (flags & TcpFlag.SYN ? 1 : 0)) >>> 0;
    const length = packet.payload.length;
    const control = length === 0 ? `${flags & (TcpFlag.SYN | TcpFlag.FIN | TcpFlag.RST)}@${start}` : undefined;
    placed.push({ index, start, end: start + length, control, packet });
  });
  return placed;
}

export function matchSegments(
  sentList: ReadonlyArray<Uint8Array | DecodedPacket>,
  receivedList: ReadonlyArray<Uint8Array | DecodedPacket>,
  options: MatchOptions = {},
): MatchResult {
  const sent = place(sentList, options.isn?.sent ?? 0);
  const received = place(receivedList, options.isn?.received ?? 0);
  const groups: MatchGroup[] = [];
  const matchedSent = new Set<number>();
  const matchedReceived = new Set<number>();

  // Control segments: the n-th sent with a key pairs with the n-th received with that key.
  const controlQueue = new Map<string, Placed[]>();
  for (const s of sent) if (s.control) controlQueue.set(s.control, [...(controlQueue.get(s.control) ?? []), s]);
  for (const r of received) {
    if (!r.control) continue;
    const s = controlQueue.get(r.control)?.shift();
    if (!s) continue;
    groups.push({ sent: [s.index], received: [r.index], relation: 'one-to-one' });
    matchedSent.add(s.index);
    matchedReceived.add(r.index);
  }

  // Data: union-find over byte-range overlap between the two sides.
  const sentData = sent.filter((s) => !s.control);
  const receivedData = received.filter((r) => !r.control);
  const parent = new Map<string, string>();
  const find = (k: string): string => {
    let root = k;
    while (parent.get(root) !== root) root = parent.get(root)!;
    parent.set(k, root);
    return root;
  };
  const union = (a: string, b: string): void => void parent.set(find(a), find(b));
  for (const s of sentData) parent.set(`s${s.index}`, `s${s.index}`);
  for (const r of receivedData) parent.set(`r${r.index}`, `r${r.index}`);
  for (const s of sentData) {
    for (const r of receivedData) {
      if (s.start < r.end && r.start < s.end) union(`s${s.index}`, `r${r.index}`);
    }
  }
  const components = new Map<string, { sent: Placed[]; received: Placed[] }>();
  for (const s of sentData) addTo(components, find(`s${s.index}`)).sent.push(s);
  for (const r of receivedData) addTo(components, find(`r${r.index}`)).received.push(r);
  for (const { sent: gs, received: gr } of components.values()) {
    if (gs.length === 0 || gr.length === 0) continue;
    gs.forEach((s) => matchedSent.add(s.index));
    gr.forEach((r) => matchedReceived.add(r.index));
    groups.push({ sent: gs.map((s) => s.index), received: gr.map((r) => r.index), relation: relationOf(gs, gr), payloadIntact: streamsAgree(gs, gr) });
  }

  groups.sort((a, b) => a.sent[0] - b.sent[0]);
  const dropped = sent.filter((s) => !matchedSent.has(s.index)).map((s) => s.index);
  const injected = received.filter((r) => !matchedReceived.has(r.index)).map((r) => r.index);
  const receivedOrder = groups.map((g) => g.received[0]);
  const reordered = receivedOrder.some((v, i) => i > 0 && v < receivedOrder[i - 1]);
  const events: MatchResult['events'] = new Set();
  for (const g of groups) if (g.relation !== 'one-to-one') events.add(g.relation);
  if (dropped.length) events.add('dropped');
  if (injected.length) events.add('injected');
  if (reordered) events.add('reordered');
  return { groups, dropped, injected, reordered, events };
}

function addTo<K, V extends { sent: Placed[]; received: Placed[] }>(map: Map<K, V>, key: K): V {
  let v = map.get(key);
  if (!v) map.set(key, (v = { sent: [], received: [] } as unknown as V));
  return v;
}

const sameRange = (a: Placed, b: Placed): boolean => a.start === b.start && a.end === b.end;

function relationOf(sent: Placed[], received: Placed[]): MatchRelation {
  const sentRanges = new Set(sent.map((s) => `${s.start}-${s.end}`));
  if (sent.length === 1 && received.length === 1) return sameRange(sent[0], received[0]) ? 'one-to-one' : 'resegmented';
  // Every copy covers the same range: a retransmission or a duplication, not a resegmentation.
  if (received.every((r) => sentRanges.has(`${r.start}-${r.end}`)) && sentRanges.size === 1) {
    return sent.length > 1 ? 'retransmitted' : 'duplicated';
  }
  if (sentRanges.size === 1) return 'split';
  if (received.length === 1) return 'coalesced';
  return 'resegmented';
}

/** Rebuilds both sides' bytes over the group's range (last write wins) and compares them. */
function streamsAgree(sent: Placed[], received: Placed[]): boolean {
  const start = Math.min(...sent.map((s) => s.start), ...received.map((r) => r.start));
  const end = Math.max(...sent.map((s) => s.end), ...received.map((r) => r.end));
  const rebuild = (list: Placed[]): { bytes: Uint8Array; covered: Uint8Array } => {
    const bytes = new Uint8Array(end - start);
    const covered = new Uint8Array(end - start);
    for (const p of list) {
      bytes.set(p.packet.payload, p.start - start);
      covered.fill(1, p.start - start, p.end - start);
    }
    return { bytes, covered };
  };
  const a = rebuild(sent);
  const b = rebuild(received);
  return bytesEqual(a.covered, b.covered) && bytesEqual(a.bytes, b.bytes);
}
