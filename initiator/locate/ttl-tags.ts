/**
 * Which TTL a quote belongs to. Every copy of a probe carries its TTL (and a per-flow nonce) in
 * fields the test's judge does not read: the IPv4 ID or the IPv6 flow label (in every quote, even a
 * 28-byte one), the low byte of the window, the urgent pointer when URG is clear and the ack number
 * when ACK is clear. A quote's TTL is the one most of its readable fields agree on, so a box that
 * rewrites one of them (a window shaper, a URG scrubber) does not move a quote to another TTL. Pure.
 */
import { decodePacket, encodePacket, type DecodedPacket } from '../../shared/wire/packet.js';
import { TcpFlag, type TcpHeader } from '../../shared/wire/tcp.js';

export type TagField = 'ip.id' | 'ip.flowLabel' | 'tcp.window' | 'tcp.urgentPointer' | 'tcp.ack';

export interface TagPlan {
  /** The fields that carry the TTL, in order of how often they are readable (the IP header's first). */
  fields: TagField[];
  /** 24 random bits identifying the flow's copies (as much of it as each field holds). */
  nonce: number;
  /** The probe's window as sent: a tagged window keeps its high byte. */
  window: number;
}

/** The most hops a copy may be sent to (the tag holds the TTL in one byte). */
export const MAX_TAG_TTL = 255;

/** The fields of this probe that may carry the TTL: none the judge reads, none with a meaning in this segment. */
export function planTags(probe: DecodedPacket, examines: readonly string[], nonce: number): TagPlan {
  const ip = probe.ip!;
  const tcp = probe.tcp!;
  const reads = (field: string): boolean => examines.some((e) => e === field || e.startsWith(`${field}.`));
  const fields: TagField[] = [ip.version === 4 ? 'ip.id' : 'ip.flowLabel'];
  if (!reads('tcp.window')) fields.push('tcp.window');
  if (!(tcp.flags & TcpFlag.URG) && !reads('tcp.urgentPointer')) fields.push('tcp.urgentPointer');
  if (!(tcp.flags & TcpFlag.ACK) && !reads('tcp.ack')) fields.push('tcp.ack');
  return { fields, nonce: nonce & 0xffffff, window: tcp.window };
}

function encodeField(field: TagField, ttl: number, plan: TagPlan): number {
  switch (field) {
    case 'ip.id':
    case 'tcp.urgentPointer':
      return ((plan.nonce & 0xff) << 8) | ttl;
    case 'ip.flowLabel':
      return ((plan.nonce & 0xfff) << 8) | ttl;
    case 'tcp.window':
      // The high byte stays (the window keeps its size); the low byte is the TTL under a byte of the nonce.
      return (plan.window & 0xff00) | ((ttl ^ (plan.nonce >>> 16)) & 0xff);
    case 'tcp.ack':
      return (((plan.nonce & 0xffffff) << 8) | ttl) >>> 0;
  }
}

/** The TTL a field's value names, if it carries this flow's tag. */
function decodeField(field: TagField, value: number, plan: TagPlan): number | undefined {
  const ttl = field === 'tcp.window' ? (value ^ (plan.nonce >>> 16)) & 0xff : value & 0xff;
  if (ttl === 0) return undefined;
  return encodeField(field, ttl, plan) === value ? ttl : undefined;
}

/** A copy of the probe with TTL / hop limit `ttl` and the tags; checksums recomputed. */
export function tagCopy(probe: DecodedPacket, ttl: number, plan: TagPlan): Uint8Array {
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TAG_TTL) throw new RangeError(`a copy's TTL is 1..${MAX_TAG_TTL}, not ${ttl}`);
  const ip = probe.ip!;
  const tcp: TcpHeader = { ...probe.tcp! };
  const set = (field: TagField): number => encodeField(field, ttl, plan);
  const header = ip.version === 4
    ? { ...ip, ttl, id: plan.fields.includes('ip.id') ? set('ip.id') : ip.id }
    : { ...ip, hopLimit: ttl, flowLabel: plan.fields.includes('ip.flowLabel') ? set('ip.flowLabel') : ip.flowLabel };
  if (plan.fields.includes('tcp.window')) tcp.window = set('tcp.window');
  if (plan.fields.includes('tcp.urgentPointer')) tcp.urgentPointer = set('tcp.urgentPointer');
  if (plan.fields.includes('tcp.ack')) tcp.ack = set('tcp.ack');
  return encodePacket({ ip: header, tcp, payload: probe.payload }, { computeChecksums: true });
}

/** What can be read of a packet (a quote's readable fields, or a whole segment). */
export interface TagSource {
  ipId?: number;
  flowLabel?: number;
  window?: number;
  urgentPointer?: number;
  ack?: number;
}

export function tagSourceOf(packet: DecodedPacket, tcpPrefix?: { ack?: number }): TagSource {
  const source: TagSource = {};
  if (packet.ip?.version === 4) source.ipId = packet.ip.id;
  if (packet.ip?.version === 6) source.flowLabel = packet.ip.flowLabel;
  if (packet.tcp) Object.assign(source, { window: packet.tcp.window, urgentPointer: packet.tcp.urgentPointer ?? 0, ack: packet.tcp.ack });
  else if (tcpPrefix?.ack !== undefined) source.ack = tcpPrefix.ack;
  return source;
}

export interface TagReading {
  /** The TTL the readable fields agree on; undefined when none carries the tag, they tie, or the evidence is too thin. */
  ttl?: number;
  /** Per field read: the TTL it names, or null when it does not carry this flow's tag (rewritten, or not a copy). */
  votes: Partial<Record<TagField, number | null>>;
}

const VALUE_OF: Record<TagField, keyof TagSource> = {
  'ip.id': 'ipId', 'ip.flowLabel': 'flowLabel', 'tcp.window': 'window', 'tcp.urgentPointer': 'urgentPointer', 'tcp.ack': 'ack',
};

/**
 * The vote: which TTL the readable tag fields name, among the TTLs copies were sent with. The winner
 * needs more votes than any other TTL, and the IP header's field among them or two votes: a segment
 * that is not a copy (the probe itself) matches one field now and then by chance, never two.
 * A whole segment (`whole`: one that reached the responder) shows every field the plan tagged, so
 * it needs two votes whenever the plan tagged two fields or more: a box's own segments there (a
 * split-connection proxy's) carry IP IDs of their own, and with copies at TTL 1 to 30 about one in
 * 2,000 names a copy by chance (the lab's split-proxy gave a false "changed at the responder" once in
 * three full runs of the locate tests).
 */
export function readTag(source: TagSource, plan: TagPlan, sentTtls: (ttl: number) => boolean = () => true, whole = false): TagReading {
  const votes: TagReading['votes'] = {};
  const counts = new Map<number, { n: number; ip: boolean }>();
  for (const field of plan.fields) {
    const value = source[VALUE_OF[field]];
    if (value === undefined) continue;
    const decoded = decodeField(field, value, plan);
    const ttl = decoded !== undefined && sentTtls(decoded) ? decoded : null;
    votes[field] = ttl;
    if (ttl === null) continue;
    const count = counts.get(ttl) ?? { n: 0, ip: false };
    counts.set(ttl, { n: count.n + 1, ip: count.ip || field.startsWith('ip.') });
  }
  const ranked = [...counts.entries()].sort((a, b) => b[1].n - a[1].n);
  const [best, second] = ranked;
  const decided = best !== undefined && (second === undefined || best[1].n > second[1].n)
    && (best[1].n >= 2 || (best[1].ip && !(whole && plan.fields.length >= 2)));
  return decided ? { ttl: best[0], votes } : { votes };
}

/** Reads the tag of a whole segment (a copy that reached the responder). */
export const readSegmentTag = (bytes: Uint8Array, plan: TagPlan, sentTtls?: (ttl: number) => boolean): TagReading => readTag(tagSourceOf(decodePacket(bytes)), plan, sentTtls, true);
