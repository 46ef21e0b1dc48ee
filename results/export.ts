import { Option, type Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { TOOL_VERSION, UsageError, type CliIo } from '../shared/cli.js';
import { LINKTYPE_RAW, writePcapng, type PcapngPacket } from '../shared/pcapng.js';
import { DEFAULT_DB_PATH, type DiffRow, type RunRow, type SegmentRow, type Store, type TestRow } from '../shared/store.js';
import { toHex } from '../shared/wire/bytes.js';
import { formatDiffRow, openForReading, orderDiffRows, parsePort, resolveRun, segmentLine, selectTests } from './diffs.js';

export interface ExportOptions {
  /** Only this test (every port it ran on, unless `port`); default every test of the run. */
  test?: string;
  /** Only tests on this responder port. */
  port?: number;
}

/** pcapng interface ids, one per side. */
export const INTERFACE_ID = { initiator: 0, responder: 1 } as const;

/** One exported segment: frame `frame` (1-based, Wireshark's numbering) of the pcapng, line `frame` of the jsonl. */
interface ExportedSegment {
  frame: number;
  test: TestRow;
  segment: SegmentRow;
  /** Rows in which this segment is the sent or the received one. */
  rows: DiffRow[];
  /** The first exported segment of its test. */
  firstOfTest: boolean;
}

interface Collected {
  run: RunRow;
  tests: TestRow[];
  segments: ExportedSegment[];
  /** segments.id -> frame number. */
  frameOf: Map<number, number>;
}

/**
 * Every segment of the selected tests on both sides in time order (ties: test order, then capture order),
 * so the pcapng and the jsonl list the same segments in the same order. Both sides' times are as stored:
 * they come from two hosts' clocks, so the interleaving of the sides is only as good as their sync.
 */
function collect(store: Store, runId: string | undefined, options: ExportOptions): Collected {
  const run = resolveRun(store, runId);
  const tests = selectTests(store, run, options.test, options.port);
  const entries: Omit<ExportedSegment, 'frame' | 'firstOfTest'>[] = [];
  for (const test of tests) {
    const rows = store.diffs(test.id);
    const rowsOf = new Map<number, DiffRow[]>();
    for (const row of rows) {
      for (const id of [row.sentSegment, row.receivedSegment]) rowsOf.set(id, [...(rowsOf.get(id) ?? []), row]);
    }
    for (const segment of store.segments(test.id)) entries.push({ test, segment, rows: rowsOf.get(segment.id) ?? [] });
  }
  // Array.prototype.sort is stable: equal times keep test order, then the store's (at_us, id) order.
  entries.sort((a, b) => a.segment.atUs - b.segment.atUs);
  const seen = new Set<number>();
  const segments = entries.map((e, i) => {
    const firstOfTest = !seen.has(e.test.id);
    seen.add(e.test.id);
    return { ...e, frame: i + 1, firstOfTest };
  });
  return { run, tests, segments, frameOf: new Map(segments.map((s) => [s.segment.id, s.frame])) };
}

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
 * of the other end of the pair. Throws UsageError for an unknown run or test.
 */
export function exportPcapng(store: Store, runId: string | undefined, options: ExportOptions = {}): Uint8Array {
  return pcapngOf(collect(store, runId, options), options);
}

function pcapngOf({ run, tests, segments, frameOf }: Collected, options: ExportOptions): Uint8Array {
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
  const scope = options.test === undefined ? `${tests.length} tests` : `test ${options.test}`;
  return writePcapng({
    comment: `mbprobe run ${run.id}${run.label ? ` (${run.label})` : ''}, ${scope}${options.port === undefined ? '' : ` on port ${options.port}`}`,
    application: `mbprobe-results ${TOOL_VERSION}`,
    interfaces: [
      { linkType: LINKTYPE_RAW, name: 'initiator', description: 'segments the initiator sent and received', resolution: 'ns' },
      { linkType: LINKTYPE_RAW, name: 'responder', description: 'segments the responder sent and received', resolution: 'ns' },
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
  /** The same segment's frame number in `exportPcapng` with the same options. */
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

/** One JSON object per segment and line, in the order (and with the frame numbers) of `exportPcapng`. */
export function exportJsonl(store: Store, runId: string | undefined, options: ExportOptions = {}): string {
  return jsonlOf(collect(store, runId, options));
}

function jsonlOf({ run, segments }: Collected): string {
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
  }).join('');
}

export function registerExportCommand(program: Command, io: CliIo): Command {
  return program.command('export')
    .description('write a run\'s segments from both sides in one file: pcapng (one interface per side, each packet commented with its diff rows; opens in Wireshark) or jsonl (one JSON object per segment)')
    .addOption(new Option('--format <format>', 'output format').choices(['pcapng', 'jsonl']).makeOptionMandatory())
    .option('--db <path>', 'the initiator\'s SQLite database', DEFAULT_DB_PATH)
    .option('--run <id>', 'run id, or a unique prefix of one (may be omitted when the database holds one run)')
    .option('--test <name>', 'only this test (default: every test of the run)')
    .option('--port <port>', 'only tests on this responder port')
    .option('--out <file>', 'output file (required for pcapng; jsonl goes to stdout without it)')
    .action((opts: { format: 'pcapng' | 'jsonl'; db: string; run?: string; test?: string; port?: string; out?: string }) => {
      if (opts.format === 'pcapng' && opts.out === undefined) {
        throw new UsageError('OUT_REQUIRED', '--format pcapng writes a binary file: give it with --out FILE, e.g. --out run.pcapng');
      }
      const options: ExportOptions = { test: opts.test, port: opts.port === undefined ? undefined : parsePort(opts.port) };
      const store = openForReading(opts.db);
      let collected: Collected;
      try {
        collected = collect(store, opts.run, options);
      } finally {
        store.close();
      }
      const output = opts.format === 'pcapng' ? pcapngOf(collected, options) : jsonlOf(collected);
      if (opts.out === undefined) {
        io.stdout(output as string);
        return;
      }
      try {
        writeFileSync(opts.out, output);
      } catch (error) {
        throw new UsageError('CANNOT_WRITE', `cannot write ${opts.out}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
      }
      const on = (side: SegmentRow['side']): number => collected.segments.filter((e) => e.segment.side === side).length;
      io.stdout(`wrote ${collected.segments.length} segments (initiator ${on('initiator')}, responder ${on('responder')}) ` +
        `of ${collected.tests.length} test(s) of run ${collected.run.id} to ${opts.out}\n`);
    });
}
