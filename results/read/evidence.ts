import type { DiffRow, RunRow, SegmentRow, Store, TestRow } from '../../shared/store.js';

/** What was stored about one test: its run, the test, both sides' segments (by capture time) and its diff rows. */
export interface TestEvidence {
  run: RunRow;
  test: TestRow;
  segments: SegmentRow[];
  diffs: DiffRow[];
}

export function readEvidence(store: Store, run: RunRow, test: TestRow): TestEvidence {
  return { run, test, segments: store.segments(test.id), diffs: store.diffs(test.id) };
}
