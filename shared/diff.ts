import { bytesEqual, toHex } from './wire/bytes.js';
import { decodePacket, dscpOf, ecnOf, type DecodedPacket, type IpHeader } from './wire/packet.js';
import { formatFlags, type TcpHeader } from './wire/tcp.js';
import { formatOption, optionName, OptionKind, type TcpOption } from './wire/tcp-options.js';
import type { WireLayer } from './wire/issues.js';

/**
 * How a row should be read:
 * - `interference`: the path changed this field; this is what mbprobe exists to find.
 * - `expected`: fields every path changes (TTL, IP ID, checksums that are valid for the new bytes,
 *   length fields consistent with the bytes); reported, but not a finding.
 * - `isn-offset`: an absolute sequence/ack number that differs only by the connection's ISN offset;
 *   the rewrite is one finding of the connection, not of every segment.
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
  /** What kind of change, where the field alone doesn't say (e.g. `replaced-by-nop`, `truncated`, `reordered`). */
  change?: string;
}

/**
 * Initial sequence numbers of the connection as each side saw them, so seq/ack are also compared
 * relative to the ISN. For a segment initiator->responder: `seq` holds the initiator's ISN as sent and
 * as the responder received it; `ack` holds the responder's ISN as it sent it and as the initiator received it.
 */
export interface DiffContext {
  seq?: { sent: number; received: number };
  ack?: { sent: number; received: number };
}

type Segment = Uint8Array | DecodedPacket;

const asDecoded = (s: Segment): DecodedPacket => (s instanceof Uint8Array ? decodePacket(s) : s);

/** Every field that differs between a sent segment and what it became on the other side. */
export function diffSegments(sentSegment: Segment, receivedSegment: Segment, context: DiffContext = {}): DiffRow[] {
  const sent = asDecoded(sentSegment);
  const received = asDecoded(receivedSegment);
  const rows: DiffRow[] = [];
  if (sent.ip && received.ip) diffIp(sent.ip, received.ip, received, rows);
  else if (sent.ip || received.ip) rows.push(row('ip', 'version', sent.ip ? String(sent.ip.version) : null, received.ip ? String(received.ip.version) : null));
  if (sent.tcp && received.tcp) {
    diffTcp(sent.tcp, received.tcp, received, context, rows);
    diffOptions(sent.tcp.options ?? [], received.tcp.options ?? [], rows);
    if (!bytesEqual(sent.tcp.optionsTail ?? new Uint8Array(0), received.tcp.optionsTail ?? new Uint8Array(0))) {
      rows.push(row('option', 'tail', toHex(sent.tcp.optionsTail ?? new Uint8Array(0)), toHex(received.tcp.optionsTail ?? new Uint8Array(0))));
    }
  } else if (sent.tcp || received.tcp) {
    rows.push(row('tcp', 'header', sent.tcp ? 'tcp' : null, received.tcp ? 'tcp' : null));
  }
  diffPayload(sent.payload, received.payload, rows);
  return rows;
}

function row(layer: WireLayer, field: string, sent: string | null, received: string | null, cls: DiffClass = 'interference', change?: string): DiffRow {
  return change ? { layer, field, sent, received, class: cls, change } : { layer, field, sent, received, class: cls };
}

function compareField(rows: DiffRow[], layer: WireLayer, field: string, a: unknown, b: unknown, cls: DiffClass = 'interference', render: (v: never) => string = String): void {
  const same = a instanceof Uint8Array && b instanceof Uint8Array ? bytesEqual(a, b) : a === b;
  if (!same) rows.push(row(layer, field, a === undefined ? null : render(a as never), b === undefined ? null : render(b as never), cls));
}

function diffIp(s: IpHeader, r: IpHeader, received: DecodedPacket, rows: DiffRow[]): void {
  if (s.version !== r.version) {
    rows.push(row('ip', 'version', String(s.version), String(r.version)));
    compareField(rows, 'ip', 'src', s.src, r.src);
    compareField(rows, 'ip', 'dst', s.dst, r.dst);
    return;
  }
  const lengthsConsistent = !received.issues.some((i) => i.layer === 'ip' && (i.code === 'bad-total-length' || i.code === 'bad-header-length'));
  const lengthClass: DiffClass = lengthsConsistent ? 'expected' : 'interference';
  compareField(rows, 'ip', 'dscp', dscpOf(s), dscpOf(r));
  compareField(rows, 'ip', 'ecn', ecnOf(s), ecnOf(r));
  if (s.version === 4 && r.version === 4) {
    compareField(rows, 'ip', 'ihl', s.ihl, r.ihl, lengthClass);
    compareField(rows, 'ip', 'totalLength', s.totalLength, r.totalLength, lengthClass);
    compareField(rows, 'ip', 'id', s.id, r.id, 'expected');
    compareField(rows, 'ip', 'flags', s.flags, r.flags);
    compareField(rows, 'ip', 'fragmentOffset', s.fragmentOffset, r.fragmentOffset);
    compareField(rows, 'ip', 'ttl', s.ttl, r.ttl, 'expected');
    compareField(rows, 'ip', 'protocol', s.protocol, r.protocol);
    compareField(rows, 'ip', 'checksum', s.checksum, r.checksum, received.checksums.ip === false ? 'interference' : 'expected');
    compareField(rows, 'ip', 'src', s.src, r.src);
    compareField(rows, 'ip', 'dst', s.dst, r.dst);
    compareField(rows, 'ip', 'options', s.options ?? new Uint8Array(0), r.options ?? new Uint8Array(0), 'interference', toHex);
  } else if (s.version === 6 && r.version === 6) {
    compareField(rows, 'ip', 'flowLabel', s.flowLabel, r.flowLabel);
    compareField(rows, 'ip', 'payloadLength', s.payloadLength, r.payloadLength, lengthClass);
    compareField(rows, 'ip', 'nextHeader', s.nextHeader, r.nextHeader);
    compareField(rows, 'ip', 'hopLimit', s.hopLimit, r.hopLimit, 'expected');
    compareField(rows, 'ip', 'src', s.src, r.src);
    compareField(rows, 'ip', 'dst', s.dst, r.dst);
    compareField(rows, 'ip', 'extensions', s.extensions ?? new Uint8Array(0), r.extensions ?? new Uint8Array(0), 'interference', toHex);
  }
}

const relative = (value: number, isn: number): number => (value - isn) >>> 0;

function diffSequence(rows: DiffRow[], field: 'seq' | 'ack', sent: number, received: number, isn: { sent: number; received: number } | undefined): void {
  if (sent === received && (!isn || isn.sent === isn.received)) return;
  const sentRel = isn ? relative(sent, isn.sent) : undefined;
  const receivedRel = isn ? relative(received, isn.received) : undefined;
  if (sent !== received) rows.push(row('tcp', field, String(sent), String(received), isn && sentRel === receivedRel ? 'isn-offset' : 'interference'));
  if (isn && sentRel !== receivedRel) rows.push(row('tcp', `${field}.relative`, String(sentRel), String(receivedRel)));
}

function diffTcp(s: TcpHeader, r: TcpHeader, received: DecodedPacket, context: DiffContext, rows: DiffRow[]): void {
  compareField(rows, 'tcp', 'srcPort', s.srcPort, r.srcPort);
  compareField(rows, 'tcp', 'dstPort', s.dstPort, r.dstPort);
  diffSequence(rows, 'seq', s.seq, r.seq, context.seq);
  // An ack number only means something when ACK is set on both sides.
  if (s.flags & r.flags & 0x10) diffSequence(rows, 'ack', s.ack, r.ack, context.ack);
  else compareField(rows, 'tcp', 'ack', s.ack, r.ack);
  const offsetConsistent = !received.issues.some((i) => i.code === 'bad-data-offset');
  compareField(rows, 'tcp', 'dataOffset', s.dataOffset, r.dataOffset, offsetConsistent ? 'expected' : 'interference');
  compareField(rows, 'tcp', 'reserved', s.reserved ?? 0, r.reserved ?? 0);
  compareField(rows, 'tcp', 'flags', s.flags, r.flags, 'interference', formatFlags);
  compareField(rows, 'tcp', 'window', s.window, r.window);
  compareField(rows, 'tcp', 'checksum', s.checksum, r.checksum, received.checksums.tcp === false ? 'interference' : 'expected');
  compareField(rows, 'tcp', 'urgentPointer', s.urgentPointer ?? 0, r.urgentPointer ?? 0);
}

const isFiller = (o: TcpOption): boolean => o.kind === OptionKind.NOP || o.kind === OptionKind.EOL;
const wireSize = (o: TcpOption): number => (o.kind <= 1 ? 1 : 2 + o.data.length);

/** Options are paired by kind and occurrence; NOP/EOL filler is accounted for separately. */
function diffOptions(sent: readonly TcpOption[], received: readonly TcpOption[], rows: DiffRow[]): void {
  const label = (o: TcpOption, nth: number): string => (nth > 0 ? `${optionName(o.kind)}#${nth + 1}` : optionName(o.kind));
  const occurrences = (list: readonly TcpOption[]): Array<{ option: TcpOption; key: string }> => {
    const seen = new Map<number, number>();
    return list.filter((o) => !isFiller(o)).map((option) => {
      const nth = seen.get(option.kind) ?? 0;
      seen.set(option.kind, nth + 1);
      return { option, key: label(option, nth) };
    });
  };
  const sentOpts = occurrences(sent);
  const receivedOpts = occurrences(received);
  const receivedByKey = new Map(receivedOpts.map((o) => [o.key, o.option]));
  const sentKeys = new Set(sentOpts.map((o) => o.key));
  const nopBytes = (list: readonly TcpOption[]): number => list.filter((o) => o.kind === OptionKind.NOP).length;
  let spareNops = nopBytes(received) - nopBytes(sent);
  for (const { option, key } of sentOpts) {
    const other = receivedByKey.get(key);
    if (!other) {
      // TCPOPTSTRIP and many normalisers overwrite an option with NOPs rather than shortening the header.
      const replaced = spareNops >= wireSize(option);
      if (replaced) spareNops -= wireSize(option);
      rows.push(row('option', key, formatOption(option), replaced ? `nop×${wireSize(option)}` : null, 'interference', replaced ? 'replaced-by-nop' : 'removed'));
    } else if (other.length !== option.length || !bytesEqual(other.data, option.data)) {
      rows.push(row('option', key, describeOption(option), describeOption(other), 'interference', 'modified'));
    }
  }
  for (const { option, key } of receivedOpts) {
    if (!sentKeys.has(key)) rows.push(row('option', key, null, formatOption(option), 'interference', 'added'));
  }
  if (spareNops !== 0) rows.push(row('option', 'nop', String(nopBytes(sent)), String(nopBytes(received)), 'interference', spareNops > 0 ? 'added' : 'removed'));
  const eolCount = (list: readonly TcpOption[]): number => list.filter((o) => o.kind === OptionKind.EOL).length;
  if (eolCount(sent) !== eolCount(received)) rows.push(row('option', 'eol', String(eolCount(sent)), String(eolCount(received)), 'interference', eolCount(received) > eolCount(sent) ? 'added' : 'removed'));
  const kept = sentOpts.filter((o) => receivedByKey.has(o.key)).map((o) => o.key);
  const keptOrderReceived = receivedOpts.filter((o) => sentKeys.has(o.key)).map((o) => o.key);
  if (kept.join(',') !== keptOrderReceived.join(',')) rows.push(row('option', 'order', kept.join(','), keptOrderReceived.join(','), 'interference', 'reordered'));
}

/** The usual rendering, plus the raw bytes when the rendering alone wouldn't show the change. */
function describeOption(o: TcpOption): string {
  const text = formatOption(o);
  return `${text} [${o.length ?? o.data.length + 2}:${toHex(o.data)}]`;
}

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
    let differing = 0;
    for (let i = first; i < common; i++) if (sent[i] !== received[i]) differing++;
    const preview = (b: Uint8Array): string => `@${first}: ${toHex(b.subarray(first, first + PAYLOAD_PREVIEW))}${b.length > first + PAYLOAD_PREVIEW ? '…' : ''}`;
    rows.push(row('payload', 'bytes', preview(sent), preview(received), 'interference', `changed ${differing} of ${common} bytes`));
  }
}

/** Rows that are findings, not the fields that every path changes. */
export const interferenceRows = (rows: readonly DiffRow[]): DiffRow[] => rows.filter((r) => r.class === 'interference');
