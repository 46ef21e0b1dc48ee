/** `export`'s two formats: pcapng (one interface per side, packets commented with their diff rows) and jsonl. */
import { TOOL_VERSION } from '../../shared/cli.js';
import { LINKTYPE_RAW, writePcapng, type PcapngPacket } from '../../shared/pcapng.js';
import type { DiffRow, HopRow, RunRow, SegmentRow, TestRow } from '../../shared/store.js';
import type { DatasetManifest } from '../../shared/store/dataset.js';
import { toHex } from '../../shared/wire/bytes.js';
import type { ExportedRun, ExportOptions } from '../read/export.js';
import { formatDiffRow, orderDiffRows, segmentLine } from './aligned.js';

/** pcapng interface ids, one per side, and one for the hops' answers to locate's copies. */
export const INTERFACE_ID = { initiator: 0, responder: 1, hops: 2 } as const;

const MAX_DETAIL_COMMENT = 4000;

function testComment(run: RunRow, test: TestRow): string {
  return `mbprobe test ${test.name} port ${test.port}: ${test.verdict} (run ${run.id}${run.label ? ` ${run.label}` : ''}, test id ${test.id})`;
}

function detailComment(test: TestRow): string | undefined {
  if (test.detail === null || test.detail === undefined) return undefined;
  const json = JSON.stringify(test.detail);
  return `detail: ${json.length > MAX_DETAIL_COMMENT ? `${json.slice(0, MAX_DETAIL_COMMENT - 1)}…` : json}`;
}

/** `diff <row>; received as frame N` on the sent segment, `...; sent as frame N` on the received one. */
function rowComment(row: DiffRow, segmentId: number, frameOf: Map<number, number>): string {
  const isSent = row.sentSegment === segmentId;
  const peer = frameOf.get(isSent ? row.receivedSegment : row.sentSegment);
  return `diff ${formatDiffRow(row)}; ${isSent ? 'received' : 'sent'} as ${peer === undefined ? 'a segment not exported' : `frame ${peer}`}`;
}

/**
 * The initiator's and the responder's segments of a run (or of one test) in one pcapng: interface 0
 * "initiator", interface 1 "responder", both raw IP with nanosecond timestamps from at_us. The first
 * packet of each test carries a comment with the test's name, port and verdict (and one with its detail);
 * every packet carries one comment per diff row it is the sent or received segment of, naming the frame
 * of the other end of the pair.
 */
/** A hop answer's comments: which hop, what it quoted, its diff rows and what it could not show. */
function hopComments(test: TestRow, hop: HopRow): string[] {
  const who = hop.kind === 'responder' ? `the responder ${hop.router} received the copy with TTL ${hop.ttl}` : `hop ${hop.ttl} (${hop.router}): ${hop.kind}, quoting ${hop.quoteLength ?? '?'} of ${hop.sent.length} bytes of the copy with TTL ${hop.ttl}`;
  return [
    `mbprobe locate ${test.name} port ${test.port} (test id ${test.id}): ${who}`,
    ...orderDiffRows(hop.diff).map((r) => `hop diff ${formatDiffRow({ ...r, change: r.change ?? null })}`),
    ...(hop.notVisible.length ? [`not visible at this hop: ${hop.notVisible.join(', ')}`] : []),
  ];
}

export function renderPcapng({ run, tests, segments, hops = [], frameOf }: ExportedRun, options: ExportOptions): Uint8Array {
  const packets: PcapngPacket[] = segments.map((e) => {
    const comments: string[] = [];
    if (e.firstOfTest) {
      comments.push(testComment(run, e.test));
      const detail = detailComment(e.test);
      if (detail !== undefined) comments.push(detail);
    }
    for (const row of orderDiffRows(e.rows)) comments.push(rowComment(row, e.segment.id, frameOf));
    const packet: PcapngPacket = {
      interfaceId: INTERFACE_ID[e.segment.side],
      timestampNs: BigInt(e.segment.atUs) * 1000n,
      data: e.segment.bytes,
    };
    if (comments.length > 0) packet.comments = comments;
    return packet;
  });
  // The ICMP errors as the initiator received them (the quote inside, for Wireshark to dissect), after the segments.
  for (const h of hops) {
    const first = hops.find((x) => x.test.id === h.test.id) === h;
    const location = (h.test.detail as { location?: { summary?: string } } | null)?.location?.summary;
    packets.push({
      interfaceId: INTERFACE_ID.hops,
      timestampNs: BigInt(h.hop.atUs ?? 0) * 1000n,
      data: h.hop.packet ?? h.hop.quote!,
      comments: [...(first && location ? [`location: ${location}`] : []), ...hopComments(h.test, h.hop)],
    });
  }
  const scope = options.test === undefined ? `${tests.length} tests` : `test ${options.test}`;
  return writePcapng({
    comment: `mbprobe run ${run.id}${run.label ? ` (${run.label})` : ''}, ${scope}${options.port === undefined ? '' : ` on port ${options.port}`}`,
    application: `mbprobe-results ${TOOL_VERSION}`,
    interfaces: [
      { linkType: LINKTYPE_RAW, name: 'initiator', description: 'segments the initiator sent and received', resolution: 'ns' },
      { linkType: LINKTYPE_RAW, name: 'responder', description: 'segments the responder sent and received', resolution: 'ns' },
      ...(hops.length ? [{ linkType: LINKTYPE_RAW, name: 'hops', description: 'what the hops answered to copies of localised tests\' probes: ICMP errors quoting them (mbprobe-initiator locate)', resolution: 'ns' as const }] : []),
    ],
    packets,
  });
}

/** One line of `exportJsonl`. */
export interface JsonlSegment {
  run: string;
  test: string;
  port: number;
  verdict: string;
  test_id: number;
  /** segments.id. */
  segment: number;
  /** The same segment's frame number in renderPcapng with the same options. */
  frame: number;
  side: SegmentRow['side'];
  dir: SegmentRow['dir'];
  at_us: number;
  /** The whole IP packet. */
  hex: string;
  /** tcpdump-like line, decode issue codes appended after `!`. */
  summary: string;
  /** Rows in which this segment is the sent or received one; sent_segment/received_segment are segments.id. */
  diffs: Array<{
    id: number;
    layer: DiffRow['layer'];
    field: string;
    sent: string | null;
    received: string | null;
    class: DiffRow['class'];
    change: string | null;
    sent_segment: number;
    received_segment: number;
  }>;
}

/** One line of `exportJsonl` for a hop's answer to a localised test's copy (after the segments). */
export interface JsonlHop {
  run: string;
  test: string;
  port: number;
  verdict: string;
  test_id: number;
  /** The same answer's frame number in renderPcapng. */
  frame: number;
  side: 'hop';
  ttl: number;
  kind: HopRow['kind'];
  router: string | null;
  at_us: number | null;
  quote_length: number | null;
  /** The ICMP error as received (or, for the responder's row, the copy as it received it). */
  hex: string;
  /** The copy as sent. */
  sent_hex: string;
  diffs: HopRow['diff'];
  not_visible: string[];
}

/** One JSON object per segment and line, in the order (and with the frame numbers) of renderPcapng; then one per hop answer. */
export function renderJsonl({ run, segments, hops = [] }: ExportedRun): string {
  const hopLines = hops.map((h): string => {
    const line: JsonlHop = {
      run: run.id, test: h.test.name, port: h.test.port, verdict: h.test.verdict, test_id: h.test.id, frame: h.frame, side: 'hop', ttl: h.hop.ttl, kind: h.hop.kind,
      router: h.hop.router, at_us: h.hop.atUs, quote_length: h.hop.quoteLength, hex: toHex(h.hop.packet ?? h.hop.quote!), sent_hex: toHex(h.hop.sent), diffs: h.hop.diff, not_visible: h.hop.notVisible,
    };
    return `${JSON.stringify(line)}\n`;
  }).join('');
  return segments.map((e): string => {
    const line: JsonlSegment = {
      run: run.id,
      test: e.test.name,
      port: e.test.port,
      verdict: e.test.verdict,
      test_id: e.test.id,
      segment: e.segment.id,
      frame: e.frame,
      side: e.segment.side,
      dir: e.segment.dir,
      at_us: e.segment.atUs,
      hex: toHex(e.segment.bytes),
      summary: segmentLine(e.segment.bytes),
      diffs: e.rows.map((r) => ({
        id: r.id, layer: r.layer, field: r.field, sent: r.sent, received: r.received, class: r.class,
        change: r.change, sent_segment: r.sentSegment, received_segment: r.receivedSegment,
      })),
    };
    return `${JSON.stringify(line)}\n`;
  }).join('') + hopLines;
}

/** What `export --format parquet` wrote: rows and files per table, what was left out. */
export function renderDatasetSummary(manifest: DatasetManifest, out: string): string {
  const months = manifest.tables[0]?.files.map((f) => f.month) ?? [];
  const span = months.length === 0 ? 'no runs' : months.length === 1 ? `month ${months[0]}` : `${months.length} months, ${months[0]} to ${months[months.length - 1]}`;
  const lines = [`wrote a Parquet dataset (version ${manifest.version}, ${span}) to ${out}:`];
  for (const t of manifest.tables) {
    const bytes = t.files.reduce((sum, f) => sum + f.bytes, 0);
    lines.push(`  ${t.name.padEnd(9)} ${String(t.rows).padStart(12)} rows  ${(bytes / 1024 / 1024).toFixed(1).padStart(9)} MiB`);
  }
  if (manifest.responderRunsLeftOut > 0) lines.push(`left out: ${manifest.responderRunsLeftOut} responder record(s) (whole volunteer addresses; --responder-records exports them)`);
  for (const n of manifest.notExported) lines.push(`not exported: table ${n.table}: ${n.reason}`);
  return `${lines.join('\n')}\n`;
}
