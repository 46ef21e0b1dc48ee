import { diffHttpHeads, parseRequestHead } from './http.js';
import { bytesEqual, toHex } from './wire/bytes.js';
import { decodePacket, dscpOf, ecnOf, type DecodedPacket, type IpHeader } from './wire/packet.js';
import { formatFlags, TcpFlag, type TcpHeader } from './wire/tcp.js';
import { formatOption, optionName, OptionKind, viewOption, type TcpOption } from './wire/tcp-options.js';
import type { WireLayer } from './wire/issues.js';

/**
 * How a row should be read:
 * - `interference`: the path changed this field; this is what mbprobe exists to find.
 * - `expected`: fields every path changes (TTL, IP ID, checksums that are valid for the new bytes,
 *   length fields consistent with the bytes, option padding that follows another option change,
 *   an ECN-capable packet marked CE by a congested router); reported, but not a finding.
 * - `isn-offset`: an absolute sequence/ack number (or SACK block) that differs only by the
 *   connection's ISN offset; the rewrite is one finding of the connection, not of every segment.
 */
export type DiffClass = 'interference' | 'expected' | 'isn-offset';

export interface DiffRow {
  layer: WireLayer;
  field: string;
  /** Rendered value on the sending side; null when the field/option was added on the path. */
  sent: string | null;
  /** Rendered value on the receiving side; null when the field/option was removed on the path. */
  received: string | null;
  class: DiffClass;
  /**
   * What kind of change, where the field alone doesn't say: options `added`, `removed`,
   * `replaced-by-nop`, `modified`, `reordered`, `translated` / `not-translated` (SACK blocks and an
   * ISN rewrite); payload `truncated`, `extended`, `resized`, `modified`, and for HTTP request heads
   * (`http.request-line`, `http.header.<name>`, `http.header-order`, `http.line`) `added`, `removed`,
   * `modified`, `reordered`; checksums `invalid`,
   * `corrected`; ECN `bleached`, `ce-marked`, `modified`; DSCP `bleached`, `remarked`; flags
   * `cleared X` / `set Y`; seq/ack `offset +N`; filler `padding`.
   */
  change?: string;
}

/**
 * Initial sequence numbers of the connection, so seq/ack are also compared relative to the ISN.
 * For a segment initiator->responder:
 * - `seq`: the initiator's ISN as the initiator sent it (`sent`) and as the responder received it (`received`);
 * - `ack`: the responder's ISN as the initiator saw it (`sent`: the frame of the segment as sent)
 *   and as the responder sent it (`received`: the frame of the segment as received).
 * SACK blocks live in the same sequence space as the ack number and are compared relative to `ack`.
 */
export interface DiffContext {
  seq?: { sent: number; received: number };
  ack?: { sent: number; received: number };
}

type Segment = Uint8Array | DecodedPacket;

const asDecoded = (s: Segment): DecodedPacket => (s instanceof Uint8Array ? decodePacket(s) : s);

/** Every field that differs between a sent segment and what it became on the other side. Never throws on wire bytes. */
export function diffSegments(sentSegment: Segment, receivedSegment: Segment, context: DiffContext = {}): DiffRow[] {
  const sent = asDecoded(sentSegment);
  const received = asDecoded(receivedSegment);
  const rows: DiffRow[] = [];
  if (sent.ip && received.ip) diffIp(sent, received, rows);
  else if (sent.ip || received.ip) rows.push(row('ip', 'version', sent.ip ? String(sent.ip.version) : null, received.ip ? String(received.ip.version) : null));
  if (sent.tcp && received.tcp) {
    diffTcp(sent, received, context, rows);
    diffOptions(sent.tcp, received.tcp, context, rows);
    diffPayload(sent.payload, received.payload, rows);
  } else if (sent.tcp || received.tcp) {
    // One side is a TCP segment, the other not readable as one (an IP fragment, a cut header):
    // its "payload" is raw IP payload, so comparing payloads would invent changes.
    const fragmented = [sent, received].some((p) => p.issues.some((i) => i.code === 'fragment'));
    rows.push(row('tcp', 'header', sent.tcp ? 'tcp' : null, received.tcp ? 'tcp' : null, 'interference', fragmented ? 'fragmented' : 'undecodable'));
  } else {
    diffPayload(sent.payload, received.payload, rows);
  }
  return rows;
}

function row(layer: WireLayer, field: string, sent: string | null, received: string | null, cls: DiffClass = 'interference', change?: string): DiffRow {
  return change ? { layer, field, sent, received, class: cls, change } : { layer, field, sent, received, class: cls };
}

function compareField(rows: DiffRow[], layer: WireLayer, field: string, a: unknown, b: unknown, cls: DiffClass = 'interference', render: (v: never) => string = String, change?: string): void {
  const same = a instanceof Uint8Array && b instanceof Uint8Array ? bytesEqual(a, b) : a === b;
  if (!same) rows.push(row(layer, field, a === undefined ? null : render(a as never), b === undefined ? null : render(b as never), cls, change));
}

const hex16 = (v: number): string => `0x${v.toString(16).padStart(4, '0')}`;

/**
 * A checksum that changed and is valid for the new bytes is what every rewriting hop (NAT, TTL
 * decrement) produces: expected. One that is invalid on arrival while it was valid (or changed) when
 * sent, or one that was invalid when sent and valid on arrival (something recomputed it, e.g. a
 * proxy or normaliser; also what a capture with checksum offload looks like), is interference.
 */
function diffChecksum(rows: DiffRow[], layer: WireLayer, s: number, r: number, sentValid: boolean | undefined, receivedValid: boolean | undefined): void {
  const changed = s !== r;
  if (receivedValid === false && (changed || sentValid === true)) rows.push(row(layer, 'checksum', hex16(s), hex16(r), 'interference', 'invalid'));
  else if (receivedValid === true && sentValid === false) rows.push(row(layer, 'checksum', hex16(s), hex16(r), 'interference', 'corrected'));
  else if (changed) rows.push(row(layer, 'checksum', hex16(s), hex16(r), 'expected'));
}

const ECN_NAMES = ['Not-ECT', 'ECT(1)', 'ECT(0)', 'CE'];
const ECN_CE = 3;

function ipFlagsText(flags: number): string {
  const names = [flags & 0x4 ? 'RSV' : '', flags & 0x2 ? 'DF' : '', flags & 0x1 ? 'MF' : ''].filter(Boolean);
  return names.length ? names.join('+') : 'none';
}

function diffIp(sentPacket: DecodedPacket, receivedPacket: DecodedPacket, rows: DiffRow[]): void {
  const s = sentPacket.ip as IpHeader;
  const r = receivedPacket.ip as IpHeader;
  if (s.version !== r.version) {
    rows.push(row('ip', 'version', String(s.version), String(r.version)));
    compareField(rows, 'ip', 'src', s.src, r.src);
    compareField(rows, 'ip', 'dst', s.dst, r.dst);
    return;
  }
  // A length field is "expected" to change only when it is consistent with the bytes that arrived
  // (then the change that made it differ is reported where it happened: options, payload).
  const lengthsConsistent = !receivedPacket.issues.some((i) => i.layer === 'ip' && (i.code === 'bad-total-length' || i.code === 'bad-header-length' || i.code === 'truncated'));
  const lengthClass: DiffClass = lengthsConsistent ? 'expected' : 'interference';
  const sd = dscpOf(s);
  const rd = dscpOf(r);
  compareField(rows, 'ip', 'dscp', sd, rd, 'interference', String, rd === 0 ? 'bleached' : 'remarked');
  const se = ecnOf(s);
  const re = ecnOf(r);
  if (se !== re) {
    // ECT -> CE is a congested router doing its job; anything else is the path tampering with ECN.
    const ceMarked = se !== 0 && re === ECN_CE;
    const change = ceMarked ? 'ce-marked' : re === 0 ? 'bleached' : 'modified';
    rows.push(row('ip', 'ecn', ECN_NAMES[se], ECN_NAMES[re], ceMarked ? 'expected' : 'interference', change));
  }
  if (s.version === 4 && r.version === 4) {
    compareField(rows, 'ip', 'ihl', s.ihl, r.ihl, lengthClass);
    compareField(rows, 'ip', 'totalLength', s.totalLength, r.totalLength, lengthClass);
    compareField(rows, 'ip', 'id', s.id, r.id, 'expected');
    compareField(rows, 'ip', 'flags', s.flags, r.flags, 'interference', ipFlagsText);
    compareField(rows, 'ip', 'fragmentOffset', s.fragmentOffset, r.fragmentOffset);
    compareField(rows, 'ip', 'ttl', s.ttl, r.ttl, 'expected');
    compareField(rows, 'ip', 'protocol', s.protocol, r.protocol);
    diffChecksum(rows, 'ip', s.checksum ?? 0, r.checksum ?? 0, sentPacket.checksums.ip, receivedPacket.checksums.ip);
    compareField(rows, 'ip', 'src', s.src, r.src);
    compareField(rows, 'ip', 'dst', s.dst, r.dst);
    compareField(rows, 'ip', 'options', s.options ?? new Uint8Array(0), r.options ?? new Uint8Array(0), 'interference', toHex);
  } else if (s.version === 6 && r.version === 6) {
    compareField(rows, 'ip', 'flowLabel', s.flowLabel, r.flowLabel, 'interference', (v: number) => `0x${v.toString(16).padStart(5, '0')}`);
    compareField(rows, 'ip', 'payloadLength', s.payloadLength, r.payloadLength, lengthClass);
    compareField(rows, 'ip', 'nextHeader', s.nextHeader, r.nextHeader);
    compareField(rows, 'ip', 'hopLimit', s.hopLimit, r.hopLimit, 'expected');
    compareField(rows, 'ip', 'src', s.src, r.src);
    compareField(rows, 'ip', 'dst', s.dst, r.dst);
    compareField(rows, 'ip', 'extensions', s.extensions ?? new Uint8Array(0), r.extensions ?? new Uint8Array(0), 'interference', toHex);
  }
}

const relative = (value: number, isn: number): number => (value - isn) >>> 0;
/** The distance from a to b in sequence space, as a signed 32-bit number, rendered "+N" / "-N". */
const offsetText = (a: number, b: number): string => {
  const d = (b - a) | 0;
  return `offset ${d >= 0 ? '+' : ''}${d}`;
};

function diffSequence(rows: DiffRow[], field: 'seq' | 'ack', sent: number, received: number, isn: { sent: number; received: number } | undefined): void {
  if (sent === received && (!isn || isn.sent === isn.received)) return;
  const sentRel = isn ? relative(sent, isn.sent) : undefined;
  const receivedRel = isn ? relative(received, isn.received) : undefined;
  const consistent = isn !== undefined && sentRel === receivedRel;
  if (sent !== received) rows.push(row('tcp', field, String(sent), String(received), consistent ? 'isn-offset' : 'interference', offsetText(sent, received)));
  if (isn && !consistent) rows.push(row('tcp', `${field}.relative`, String(sentRel), String(receivedRel), 'interference', offsetText(sentRel!, receivedRel!)));
}

const FLAG_NAMES: Array<[number, string]> = [
  [TcpFlag.FIN, 'FIN'], [TcpFlag.SYN, 'SYN'], [TcpFlag.RST, 'RST'], [TcpFlag.PSH, 'PSH'], [TcpFlag.ACK, 'ACK'],
  [TcpFlag.URG, 'URG'], [TcpFlag.ECE, 'ECE'], [TcpFlag.CWR, 'CWR'], [TcpFlag.AE, 'AE'],
];

function flagsChange(s: number, r: number): string {
  const names = (bits: number): string => FLAG_NAMES.filter(([b]) => bits & b).map(([, n]) => n).join(',');
  const cleared = s & ~r;
  const set = r & ~s;
  return [cleared ? `cleared ${names(cleared)}` : '', set ? `set ${names(set)}` : ''].filter(Boolean).join('; ');
}

function diffTcp(sentPacket: DecodedPacket, receivedPacket: DecodedPacket, context: DiffContext, rows: DiffRow[]): void {
  const s = sentPacket.tcp as TcpHeader;
  const r = receivedPacket.tcp as TcpHeader;
  compareField(rows, 'tcp', 'srcPort', s.srcPort, r.srcPort);
  compareField(rows, 'tcp', 'dstPort', s.dstPort, r.dstPort);
  diffSequence(rows, 'seq', s.seq, r.seq, context.seq);
  // An ack number only means something when ACK is set on both sides.
  if (s.flags & r.flags & TcpFlag.ACK) diffSequence(rows, 'ack', s.ack, r.ack, context.ack);
  else compareField(rows, 'tcp', 'ack', s.ack, r.ack);
  const offsetConsistent = !receivedPacket.issues.some((i) => i.code === 'bad-data-offset');
  compareField(rows, 'tcp', 'dataOffset', s.dataOffset, r.dataOffset, offsetConsistent ? 'expected' : 'interference');
  compareField(rows, 'tcp', 'reserved', s.reserved ?? 0, r.reserved ?? 0);
  if (s.flags !== r.flags) rows.push(row('tcp', 'flags', formatFlags(s.flags), formatFlags(r.flags), 'interference', flagsChange(s.flags, r.flags)));
  compareField(rows, 'tcp', 'window', s.window, r.window);
  diffChecksum(rows, 'tcp', s.checksum ?? 0, r.checksum ?? 0, sentPacket.checksums.tcp, receivedPacket.checksums.tcp);
  compareField(rows, 'tcp', 'urgentPointer', s.urgentPointer ?? 0, r.urgentPointer ?? 0);
}

// ---- Options ----

const isFiller = (o: TcpOption): boolean => o.kind === OptionKind.NOP || o.kind === OptionKind.EOL;
/** Bytes the option takes on the wire (a decoded option's data runs to wherever its bytes ended). */
const wireSize = (o: TcpOption): number => (o.kind <= 1 ? 1 : 2 + o.data.length);
const declaredLength = (o: TcpOption): number => o.length ?? o.data.length + 2;

interface LaidOption {
  option: TcpOption;
  /** `mss`, `sack`, `sack#2` for the second SACK option, ... */
  key: string;
  /** Offset in the option space. */
  at: number;
  size: number;
}

function layOut(list: readonly TcpOption[]): LaidOption[] {
  const seen = new Map<number, number>();
  const laid: LaidOption[] = [];
  let at = 0;
  for (const option of list) {
    const size = wireSize(option);
    if (!isFiller(option)) {
      const nth = seen.get(option.kind) ?? 0;
      seen.set(option.kind, nth + 1);
      laid.push({ option, key: nth > 0 ? `${optionName(option.kind)}#${nth + 1}` : optionName(option.kind), at, size });
    }
    at += size;
  }
  return laid;
}

/** For every byte of the option space: is it a NOP? */
function nopBytes(list: readonly TcpOption[]): boolean[] {
  const out: boolean[] = [];
  for (const o of list) for (let i = 0; i < wireSize(o); i++) out.push(o.kind === OptionKind.NOP);
  return out;
}

const sackBlocks = (o: TcpOption): Array<[number, number]> | undefined => {
  const v = viewOption(o);
  return v.type === 'sack' ? v.blocks : undefined;
};
const renderBlocks = (blocks: Array<[number, number]>, isn: number): string => blocks.map(([l, r]) => `{${relative(l, isn)}:${relative(r, isn)}}`).join('');

/**
 * Options are paired by kind and occurrence (`sack#2` is the second SACK option). An option that is
 * gone from the received header is `replaced-by-nop` when NOPs now sit where it was (TCPOPTSTRIP and
 * most normalisers overwrite rather than shorten the header), or when the received header has enough
 * extra NOPs to account for it; otherwise `removed`. NOP/EOL/zero padding is filler: its changes are
 * reported, and classed as expected when they only follow another option change.
 */
function diffOptions(sentTcp: TcpHeader, receivedTcp: TcpHeader, context: DiffContext, rows: DiffRow[]): void {
  const sent = sentTcp.options ?? [];
  const received = receivedTcp.options ?? [];
  const sentOpts = layOut(sent);
  const receivedOpts = layOut(received);
  const receivedByKey = new Map(receivedOpts.map((o) => [o.key, o]));
  const sentKeys = new Set(sentOpts.map((o) => o.key));
  const receivedNops = nopBytes(received);
  const nopCount = (list: readonly TcpOption[]): number => list.filter((o) => o.kind === OptionKind.NOP).length;
  let spareNops = nopCount(received) - nopCount(sent);
  const optionRows: DiffRow[] = [];

  // Gone options: NOPs exactly where the option was first; then spare NOPs elsewhere, in order.
  const gone = sentOpts.filter((o) => !receivedByKey.has(o.key));
  const replaced = new Set(gone.filter(({ at, size }) => at + size <= receivedNops.length && receivedNops.slice(at, at + size).every(Boolean)));
  for (const o of replaced) spareNops -= o.size;
  for (const o of gone) {
    if (!replaced.has(o) && spareNops >= o.size) {
      replaced.add(o);
      spareNops -= o.size;
    }
  }

  for (const laid of sentOpts) {
    const { option, key, size } = laid;
    const other = receivedByKey.get(key)?.option;
    if (!other) {
      const nopped = replaced.has(laid);
      optionRows.push(row('option', key, formatOption(option), nopped ? `nop×${size}` : null, 'interference', nopped ? 'replaced-by-nop' : 'removed'));
      continue;
    }
    const same = declaredLength(other) === declaredLength(option) && bytesEqual(other.data, option.data);
    const sentBlocks = sackBlocks(option);
    const receivedBlocks = sackBlocks(other);
    // SACK blocks are in the ack number's sequence space: an ISN-rewriting box must translate them too.
    if (context.ack && sentBlocks && receivedBlocks) {
      const sentRel = renderBlocks(sentBlocks, context.ack.sent);
      const receivedRel = renderBlocks(receivedBlocks, context.ack.received);
      if (same && sentRel !== receivedRel) {
        optionRows.push(row('option', `${key}.relative`, sentRel, receivedRel, 'interference', 'not-translated'));
        continue;
      }
      if (!same && sentRel === receivedRel) {
        optionRows.push(row('option', key, formatOption(option), formatOption(other), 'isn-offset', 'translated'));
        continue;
      }
    }
    if (!same) optionRows.push(row('option', key, ...describePair(option, other), 'interference', 'modified'));
  }
  for (const { option, key } of receivedOpts) {
    if (!sentKeys.has(key)) optionRows.push(row('option', key, null, formatOption(option), 'interference', 'added'));
  }
  const kept = sentOpts.filter((o) => receivedByKey.has(o.key)).map((o) => o.key);
  const keptOrderReceived = receivedOpts.filter((o) => sentKeys.has(o.key)).map((o) => o.key);
  if (kept.join(',') !== keptOrderReceived.join(',')) optionRows.push(row('option', 'order', kept.join(','), keptOrderReceived.join(','), 'interference', 'reordered'));

  // Filler: expected when it only makes room for (or pads after) the changes above.
  const fillerClass: DiffClass = optionRows.some((r) => r.class === 'interference') ? 'expected' : 'interference';
  const fillerRows: DiffRow[] = [];
  if (spareNops !== 0) fillerRows.push(row('option', 'nop', String(nopCount(sent)), String(nopCount(received)), fillerClass, spareNops > 0 ? 'added' : 'removed'));
  const eolCount = (list: readonly TcpOption[]): number => list.filter((o) => o.kind === OptionKind.EOL).length;
  if (eolCount(sent) !== eolCount(received)) fillerRows.push(row('option', 'eol', String(eolCount(sent)), String(eolCount(received)), fillerClass, 'padding'));
  const sentTail = sentTcp.optionsTail ?? new Uint8Array(0);
  const receivedTail = receivedTcp.optionsTail ?? new Uint8Array(0);
  if (!bytesEqual(sentTail, receivedTail)) {
    // Bytes after EOL: zero padding is filler; anything else is data hidden in the header.
    const zeros = (b: Uint8Array): boolean => b.every((x) => x === 0);
    const tailClass = zeros(sentTail) && zeros(receivedTail) ? fillerClass : 'interference';
    fillerRows.push(row('option', 'tail', toHex(sentTail), toHex(receivedTail), tailClass, tailClass === 'interference' ? 'modified' : 'padding'));
  }
  rows.push(...optionRows, ...fillerRows);
}

/** The usual renderings, plus the raw bytes when the renderings alone wouldn't show the change. */
function describePair(a: TcpOption, b: TcpOption): [string, string] {
  const ta = formatOption(a);
  const tb = formatOption(b);
  if (ta !== tb) return [ta, tb];
  const raw = (o: TcpOption): string => `${ta} [${declaredLength(o)}:${toHex(o.data)}]`;
  return [raw(a), raw(b)];
}

// ---- Payload ----

const PAYLOAD_PREVIEW = 32;

function diffPayload(sent: Uint8Array, received: Uint8Array, rows: DiffRow[]): void {
  if (bytesEqual(sent, received)) return;
  const common = Math.min(sent.length, received.length);
  let first = 0;
  while (first < common && sent[first] === received[first]) first++;
  if (sent.length !== received.length) {
    const change = first === common ? (received.length < sent.length ? 'truncated' : 'extended') : 'resized';
    rows.push(row('payload', 'length', String(sent.length), String(received.length), 'interference', change));
  }
  if (first < common) {
    let last = common - 1;
    while (last > first && sent[last] === received[last]) last--;
    // Show the differing span (from the first to the last differing byte of the common part).
    const end = Math.min(last + 1, first + PAYLOAD_PREVIEW);
    const preview = (b: Uint8Array): string => `@${first}: ${toHex(b.subarray(first, end))}${last + 1 > end ? '…' : ''}`;
    rows.push(row('payload', 'bytes', preview(sent), preview(received), 'interference', 'modified'));
  }
  diffHttpRequest(sent, received, rows);
}

/** Long enough for any real header line; a 1400-byte X-Pad would drown the row. */
const HTTP_LINE_PREVIEW = 200;
const lineText = (line: string): string => (line.length > HTTP_LINE_PREVIEW ? `${line.slice(0, HTTP_LINE_PREVIEW)}…` : line);

/** When both payloads are HTTP request heads, the lines a proxy added, removed or rewrote, named (Via, X-Forwarded-For, ...). */
function diffHttpRequest(sentPayload: Uint8Array, receivedPayload: Uint8Array, rows: DiffRow[]): void {
  const sent = parseRequestHead(sentPayload);
  const received = parseRequestHead(receivedPayload);
  if (!sent || !received) return;
  const diff = diffHttpHeads(sent, received);
  if (diff.requestLine) rows.push(row('payload', 'http.request-line', lineText(diff.requestLine.sent), lineText(diff.requestLine.received), 'interference', 'modified'));
  for (const h of diff.removed) rows.push(row('payload', `http.header.${h.key}`, lineText(h.line), null, 'interference', 'removed'));
  for (const { sent: s, received: r } of diff.changed) rows.push(row('payload', `http.header.${s.key}`, lineText(s.line), lineText(r.line), 'interference', 'modified'));
  for (const h of diff.added) rows.push(row('payload', `http.header.${h.key}`, null, lineText(h.line), 'interference', 'added'));
  if (diff.reordered) rows.push(row('payload', 'http.header-order', diff.reordered.sent.join(','), diff.reordered.received.join(','), 'interference', 'reordered'));
  for (const line of diff.otherLinesRemoved) rows.push(row('payload', 'http.line', lineText(line), null, 'interference', 'removed'));
  for (const line of diff.otherLinesAdded) rows.push(row('payload', 'http.line', null, lineText(line), 'interference', 'added'));
}

/** Rows that are findings, not the fields that every path changes. */
export const interferenceRows = (rows: readonly DiffRow[]): DiffRow[] => rows.filter((r) => r.class === 'interference');
