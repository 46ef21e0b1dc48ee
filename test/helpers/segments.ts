/**
 * Stored segments for results tests: real Linux segments (test/fixtures/linux-segments.txt) and, for
 * the far side, copies changed through the codec the way a middlebox would (MSS clamped, TTL
 * decremented, lengths and checksums fixed), with the diff rows diffSegments gives for each pair, as
 * the initiator's runner stores them.
 */
import { diffSegments } from '../../shared/diff.js';
import type { DiffRecord, SegmentRecord } from '../../shared/store.js';
import { asPacket, decodePacket, encodePacket, mss, type Packet, type TcpHeader } from '../../shared/wire/index.js';
import { fixture } from './fixtures.js';

type TcpPacket = Packet & { tcp: TcpHeader & { options: NonNullable<TcpHeader['options']> } };

function rewrite(bytes: Uint8Array, change: (p: TcpPacket) => void): Uint8Array {
  const p = asPacket(decodePacket(bytes.slice())) as TcpPacket;
  change(p);
  return encodePacket(p, { fixLengths: true, computeChecksums: true });
}

const hop = (p: TcpPacket): void => {
  if (p.ip.version === 4) p.ip.ttl -= 1;
};

/** Microseconds since the epoch of the first segment. */
export const T0 = 1_700_000_000_000_000;
export const SYN = fixture('v4-normal-syn').bytes;
/** The SYN one hop later with its MSS clamped to 536. */
export const SYN_CLAMPED = rewrite(SYN, (p) => {
  hop(p);
  p.tcp.options[0] = mss(536);
});
export const SYNACK = fixture('v4-normal-synack').bytes;
/** The SYN-ACK one hop later. */
export const SYNACK_HOPPED = rewrite(SYNACK, hop);
export const ACK = fixture('v4-normal-ack-c2s').bytes;
export const SYN_DATA = fixture('v4-tfo2-syn-data-tfo-cookie').bytes;
export const RST = fixture('v4-closed-rstack-s2c').bytes;

/** A segment `atMs` milliseconds after T0. */
export const seg = (side: SegmentRecord['side'], dir: SegmentRecord['dir'], atMs: number, bytes: Uint8Array): SegmentRecord =>
  ({ side, dir, atUs: T0 + Math.round(atMs * 1000), bytes });

/** The diff rows of segments[sent] -> segments[received], as stored. */
export function rowsOf(segments: SegmentRecord[], sent: number, received: number): DiffRecord[] {
  return diffSegments(segments[sent].bytes, segments[received].bytes).map((r) => ({
    sentSegment: sent, receivedSegment: received, layer: r.layer, field: r.field, sent: r.sent, received: r.received, class: r.class, change: r.change,
  }));
}
