import type { DiffRow, HopRow, RunRow, SegmentRow, Store, TestRow } from '../../shared/store.js';

/** What was stored about one test: its run, the test, both sides' segments (by capture time), its diff rows, and its hop rows when it was localised. */
export interface TestEvidence {
  run: RunRow;
  test: TestRow;
  segments: SegmentRow[];
  diffs: DiffRow[];
  /** Empty for a test that was not localised. */
  hops?: HopRow[];
}

export function readEvidence(store: Store, run: RunRow, test: TestRow): TestEvidence {
  return { run, test, segments: store.segments(test.id), diffs: store.diffs(test.id), hops: store.hops(test.id) };
}
