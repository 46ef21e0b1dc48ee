import { ipv4ToString, ipv6ToString, addressToBytes, isIpv6 } from '../shared/wire/address.js';
import type { RunUpload } from '../shared/upload.js';

/**
 * What a volunteer's submission says about them: before a run leaves the machine, every address of
 * the volunteer (the initiator's own source address, and the address the responder saw, which is
 * the NAT's outside address behind a NAT) is truncated to its network, IPv4 /24 and IPv6 /48:
 *
 *   - in the IP headers of every segment, with the IPv4 header checksum and the TCP checksum
 *     adjusted incrementally (RFC 1624), so a checksum that was right stays right and one that a
 *     middlebox broke stays broken by exactly as much;
 *   - in every text: run.hostInfo, test details, diff rows (as whole addresses, never inside a longer one);
 *   - in the hop rows of a localised test: the copies sent, the routers' quotes of them (their IP and
 *     TCP checksums adjusted as above) and the ICMP errors (destination, the quote inside, and the
 *     ICMP checksum, which covers the quote and, for ICMPv6, the addresses); the routers' own
 *     addresses are the path's, not the volunteer's, and stay;
 *   - run.hostInfo.hostname is dropped.
 *
 * The responder address, ports, sequence numbers, options and payloads are left as they were: they
 * are the measurement. Verdicts were decided before anonymisation and are kept.
 */
export const ANONYMIZED_PREFIX = { ipv4: 24, ipv6: 48 } as const;

/** The network of an address: 203.0.113.57 -> 203.0.113.0, 2001:db8:1:2::5 -> 2001:db8:1::. */
export function truncateAddress(address: string): string {
  const bytes = addressToBytes(address);
  const keep = isIpv6(address) ? ANONYMIZED_PREFIX.ipv6 / 8 : ANONYMIZED_PREFIX.ipv4 / 8;
  bytes.fill(0, keep);
  return isIpv6(address) ? ipv6ToString(bytes) : ipv4ToString(bytes);
}

export interface Anonymization {
  upload: RunUpload;
  /** Each address that was replaced, with its replacement. */
  replaced: Array<{ address: string; as: string }>;
  /** IP header address fields rewritten, over all segments. */
  headerFields: number;
}

/** The volunteer's addresses recorded in the run: its source (a scan's, per family), and what the responder saw. */
export function volunteerAddresses(upload: RunUpload): string[] {
  const info = upload.run.hostInfo;
  // A scan records a source per address family (initiator/scan/command.ts).
  const perFamily = info.sources !== null && typeof info.sources === 'object' ? Object.values(info.sources as Record<string, unknown>) : [];
  const found = [info.source, info.observedAddress, ...perFamily].filter((a): a is string => typeof a === 'string' && a.length > 0);
  return [...new Set(found.map(canonical).filter((a): a is string => a !== undefined))];
}

/** The text form the codec prints, or undefined when `address` is not an address. */
function canonical(address: string): string | undefined {
  try {
    const bytes = addressToBytes(address);
    return bytes.length === 16 ? ipv6ToString(bytes) : ipv4ToString(bytes);
  } catch {
    return undefined;
  }
}

/** A copy of `upload` with the volunteer's addresses truncated (see above); the input is not changed. */
export function anonymizeUpload(upload: RunUpload, addresses: readonly string[] = volunteerAddresses(upload)): Anonymization {
  const replaced = addresses.map((address) => ({ address, as: truncateAddress(address) })).filter((r) => r.address !== r.as);
  const swaps = replaced.map((r) => ({ from: addressToBytes(r.address), to: addressToBytes(r.as) }));
  const text = textReplacer(replaced);
  let headerFields = 0;

  const { hostname: _dropped, ...info } = upload.run.hostInfo;
  const hostInfo = deepReplace(info, text) as Record<string, unknown>;
  hostInfo.anonymized = { ipv4Prefix: ANONYMIZED_PREFIX.ipv4, ipv6Prefix: ANONYMIZED_PREFIX.ipv6, hostname: 'removed' };

  const tests = upload.tests.map((t) => ({
    ...t,
    detail: deepReplace(t.detail, text),
    segments: t.segments.map((s) => {
      const bytes = Buffer.from(s.bytes, 'base64');
      const n = rewriteHeaderAddresses(bytes, swaps);
      headerFields += n;
      return n === 0 ? s : { ...s, bytes: bytes.toString('base64') };
    }),
    diffs: t.diffs.map((d) => ({ ...d, sent: d.sent === null ? null : text(d.sent), received: d.received === null ? null : text(d.received) })),
    ...(t.hops ? {
      hops: t.hops.map((h) => {
        const rewrite = (b64: string, how: (bytes: Uint8Array) => number): string => {
          const bytes = Buffer.from(b64, 'base64');
          const n = how(bytes);
          headerFields += n;
          return n === 0 ? b64 : bytes.toString('base64');
        };
        return {
          ...h,
          sent: rewrite(h.sent, (b) => rewriteHeaderAddresses(b, swaps)),
          quote: h.quote === null ? null : rewrite(h.quote, (b) => rewriteHeaderAddresses(b, swaps)),
          packet: h.packet === null ? null : rewrite(h.packet, (b) => rewriteIcmpError(b, swaps)),
          diff: h.diff.map((d) => ({ ...d, sent: d.sent === null ? null : text(d.sent), received: d.received === null ? null : text(d.received) })),
        };
      }),
    } : {}),
  }));
  return {
    upload: { ...upload, run: { ...upload.run, hostInfo }, tests },
    replaced,
    headerFields,
  };
}

function textReplacer(replaced: ReadonlyArray<{ address: string; as: string }>): (s: string) => string {
  if (replaced.length === 0) return (s) => s;
  const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // Whole addresses only: 10.0.0.2 must not match inside 10.0.0.23 or 110.0.0.2.
  const alternatives = replaced.map((r) => (isIpv6(r.address)
    ? `(?<![0-9A-Fa-f:])${escape(r.address)}(?![0-9A-Fa-f:])`
    : `(?<![0-9.])${escape(r.address)}(?![0-9]|\\.[0-9])`));
  const pattern = new RegExp(alternatives.join('|'), 'gi');
  const map = new Map(replaced.map((r) => [r.address.toLowerCase(), r.as]));
  return (s) => s.replace(pattern, (m) => map.get(m.toLowerCase()) ?? m);
}

function deepReplace(value: unknown, text: (s: string) => string): unknown {
  if (typeof value === 'string') return text(value);
  if (Array.isArray(value)) return value.map((v) => deepReplace(v, text));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [text(k), deepReplace(v, text)]));
  }
  return value;
}

const equalAt = (bytes: Uint8Array, at: number, want: Uint8Array): boolean => {
  if (at + want.length > bytes.length) return false;
  for (let i = 0; i < want.length; i++) if (bytes[at + i] !== want[i]) return false;
  return true;
};

/** RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for the 16-bit words of `from` replaced by `to`. */
function adjustChecksum(bytes: Uint8Array, at: number, from: Uint8Array, to: Uint8Array): void {
  if (at + 2 > bytes.length) return;
  let sum = ~((bytes[at] << 8) | bytes[at + 1]) & 0xffff;
  for (let i = 0; i < from.length; i += 2) {
    sum += (~((from[i] << 8) | from[i + 1]) & 0xffff) + ((to[i] << 8) | to[i + 1]);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const checksum = ~sum & 0xffff;
  bytes[at] = checksum >> 8;
  bytes[at + 1] = checksum & 0xff;
}

/** Where the TCP checksum of this packet is, if the packet has a TCP header. */
function tcpChecksumOffset(bytes: Uint8Array): number | undefined {
  const version = bytes[0] >> 4;
  if (version === 4) {
    const ihl = (bytes[0] & 0x0f) * 4;
    const fragmentOffset = ((bytes[6] & 0x1f) << 8) | bytes[7];
    return bytes[9] === 6 && fragmentOffset === 0 && ihl >= 20 ? ihl + 16 : undefined;
  }
  let next = bytes[6];
  let at = 40;
  // Hop-by-hop, routing, destination options (length in 8-byte units after the first 8), fragment (8 bytes).
  while ((next === 0 || next === 43 || next === 60 || next === 44) && at + 8 <= bytes.length) {
    if (next === 44 && (((bytes[at + 2] << 8) | bytes[at + 3]) >> 3) !== 0) return undefined;
    const length = next === 44 ? 8 : (bytes[at + 1] + 1) * 8;
    next = bytes[at];
    at += length;
  }
  return next === 6 ? at + 16 : undefined;
}

/** Replaces matching source/destination addresses in place and fixes the checksums; returns how many fields changed. */
function rewriteHeaderAddresses(bytes: Uint8Array, swaps: ReadonlyArray<{ from: Uint8Array; to: Uint8Array }>): number {
  const version = bytes[0] >> 4;
  const fields = version === 4 ? [12, 16] : version === 6 ? [8, 24] : [];
  const tcpChecksum = tcpChecksumOffset(bytes);
  let changed = 0;
  for (const at of fields) {
    const swap = swaps.find((s) => s.from.length === (version === 4 ? 4 : 16) && equalAt(bytes, at, s.from));
    if (!swap) continue;
    if (version === 4) adjustChecksum(bytes, 10, swap.from, swap.to);
    if (tcpChecksum !== undefined) adjustChecksum(bytes, tcpChecksum, swap.from, swap.to);
    bytes.set(swap.to, at);
    changed++;
  }
  return changed;
}

/**
 * An ICMP/ICMPv6 error: the volunteer's address as its destination and inside its quote (the quoted
 * packet's source), with every checksum adjusted incrementally: the outer IPv4 header's, the quoted
 * packet's own (rewriteHeaderAddresses), and the ICMP checksum over every word that changed in the
 * message (for ICMPv6 also over the pseudo-header's addresses). Returns how many address fields changed.
 */
function rewriteIcmpError(bytes: Uint8Array, swaps: ReadonlyArray<{ from: Uint8Array; to: Uint8Array }>): number {
  const version = bytes[0] >> 4;
  const outerLength = version === 4 ? (bytes[0] & 0x0f) * 4 : 40;
  const icmp = (version === 4 && bytes[9] === 1) || (version === 6 && bytes[6] === 58);
  if (!icmp || bytes.length < outerLength + 8) return rewriteHeaderAddresses(bytes, swaps);
  const checksumAt = outerLength + 2;
  // A copy (Buffer's slice would be a view of the bytes about to change).
  const before = Uint8Array.from(bytes.subarray(outerLength));
  let changed = rewriteHeaderAddresses(bytes.subarray(outerLength + 8), swaps);
  for (let at = outerLength; at + 1 < bytes.length; at += 2) {
    if (at === checksumAt) continue;
    const i = at - outerLength;
    if (before[i] !== bytes[at] || before[i + 1] !== bytes[at + 1]) adjustChecksum(bytes, checksumAt, before.subarray(i, i + 2), Uint8Array.from(bytes.subarray(at, at + 2)));
  }
  // The outer addresses: the IPv4 header checksum covers them; the ICMPv6 checksum too (its pseudo-header).
  const fields = version === 4 ? [12, 16] : [8, 24];
  for (const at of fields) {
    const swap = swaps.find((s) => s.from.length === (version === 4 ? 4 : 16) && equalAt(bytes, at, s.from));
    if (!swap) continue;
    if (version === 4) adjustChecksum(bytes, 10, swap.from, swap.to);
    else adjustChecksum(bytes, checksumAt, swap.from, swap.to);
    bytes.set(swap.to, at);
    changed++;
  }
  return changed;
}
