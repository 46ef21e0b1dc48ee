/** The segments `export` writes: every segment of the selected tests on both sides, with their diff rows, in one order for pcapng and jsonl. */
import type { DiffRow, HopRow, RunRow, SegmentRow, Store, TestRow } from '../../shared/store.js';
import { readEvidence } from './evidence.js';
import { resolveRun, testsOfRun } from './runs.js';

export interface ExportOptions {
  /** Only this test (every port it ran on, unless `port`); default every test of the run. */
  test?: string;
  /** Only tests on this responder port. */
  port?: number;
}

/** One exported segment: frame `frame` (1-based, Wireshark's numbering) of the pcapng, line `frame` of the jsonl. */
export interface ExportedSegment {
  frame: number;
  test: TestRow;
  segment: SegmentRow;
  /** Rows in which this segment is the sent or the received one. */
  rows: DiffRow[];
  /** The first exported segment of its test. */
  firstOfTest: boolean;
}

/** One exported hop answer of a localised test: frame `frame`, after every segment. */
export interface ExportedHop {
  frame: number;
  test: TestRow;
  hop: HopRow;
}

export interface ExportedRun {
  run: RunRow;
  tests: TestRow[];
  segments: ExportedSegment[];
  /** The ICMP errors (and the copies the responder received) of localised tests, by test then TTL. */
  hops: ExportedHop[];
  /** segments.id -> frame number. */
  frameOf: Map<number, number>;
}

/**
 * Every segment of the selected tests on both sides in time order (ties: test order, then capture order),
 * so the pcapng and the jsonl list the same segments in the same order. Both sides' times are as stored:
 * they come from two hosts' clocks, so the interleaving of the sides is only as good as their sync.
 */
export function readExport(store: Store, runId: string | undefined, options: ExportOptions): ExportedRun {
  const run = resolveRun(store, runId);
  const tests = testsOfRun(store, run, options.test, options.port);
  const entries: Omit<ExportedSegment, 'frame' | 'firstOfTest'>[] = [];
  const hopRows: Array<{ test: TestRow; hop: HopRow }> = [];
  for (const test of tests) {
    const { segments, diffs, hops = [] } = readEvidence(store, run, test);
    for (const hop of hops) if (hop.packet !== null || hop.quote !== null) hopRows.push({ test, hop });
    const rowsOf = new Map<number, DiffRow[]>();
    for (const row of diffs) {
      for (const id of [row.sentSegment, row.receivedSegment]) rowsOf.set(id, [...(rowsOf.get(id) ?? []), row]);
    }
    for (const segment of segments) entries.push({ test, segment, rows: rowsOf.get(segment.id) ?? [] });
  }
  // Array.prototype.sort is stable: equal times keep test order, then the store's (at_us, id) order.
  entries.sort((a, b) => a.segment.atUs - b.segment.atUs);
  const seen = new Set<number>();
  const segments = entries.map((e, i) => {
    const firstOfTest = !seen.has(e.test.id);
    seen.add(e.test.id);
    return { ...e, frame: i + 1, firstOfTest };
  });
  const hops = hopRows.map((h, i) => ({ ...h, frame: segments.length + i + 1 }));
  return { run, tests, segments, hops, frameOf: new Map(segments.map((s) => [s.segment.id, s.frame])) };
}
