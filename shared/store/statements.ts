/**
 * Every statement that writes the store or reads its rows back, in one place: the Store's own
 * (shared/store.ts), and the exact-copy reads and inserts of `mbprobe-results merge`.
 * Inserts take named parameters spelled like the columns (`@started_at`), so a row read as it is
 * stored can be written back by column name.
 */
import type Database from 'better-sqlite3';
import { DIFF_COLUMNS, HOP_COLUMNS, RUN_COLUMNS, SEGMENT_COLUMNS, TEST_COLUMNS } from './schema.js';

const insert = (table: string, columns: readonly string[]): string =>
  `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((c) => `@${c}`).join(', ')})`;

export const SQL = {
  insertRun: insert('runs', RUN_COLUMNS),
  finishRun: 'UPDATE runs SET finished_at = ? WHERE id = ?',
  /** Adds (or replaces) keys of host_info: what a run learns only as it goes (a scan's counts of targets left out). */
  mergeHostInfo: 'UPDATE runs SET host_info = json_patch(host_info, ?) WHERE id = ?',
  /** seq NULL: one past the run's highest so far. */
  insertTest: `INSERT INTO tests (run_id, ${TEST_COLUMNS.join(', ')})
    VALUES (@run_id, COALESCE(@seq, (SELECT COALESCE(MAX(seq), -1) + 1 FROM tests WHERE run_id = @run_id)),
            ${TEST_COLUMNS.slice(1).map((c) => `@${c}`).join(', ')})`,
  insertSegment: insert('segments', ['test_id', ...SEGMENT_COLUMNS]),
  insertDiff: insert('diffs', ['test_id', 'sent_segment', 'received_segment', ...DIFF_COLUMNS]),
  insertHop: insert('hops', ['test_id', ...HOP_COLUMNS]),
  /** A test's hop localisation finding, into its detail (the test row was written when its verdict was decided). */
  setLocation: "UPDATE tests SET detail = json_set(COALESCE(detail, '{}'), '$.location', json(?)) WHERE id = ?",
  deleteTest: 'DELETE FROM tests WHERE id = ?',

  runs: `SELECT id, started_at AS startedAt, finished_at AS finishedAt, label, responder,
    tool_version AS toolVersion, host_info AS hostInfo, tags, kind FROM runs ORDER BY started_at, id`,
  run: `SELECT id, started_at AS startedAt, finished_at AS finishedAt, label, responder,
    tool_version AS toolVersion, host_info AS hostInfo, tags, kind FROM runs WHERE id = ?`,
  tests: `SELECT id, run_id AS runId, seq, name, port, started_at AS startedAt, finished_at AS finishedAt, verdict, detail,
    target, target_name AS targetName FROM tests WHERE run_id = ? ORDER BY seq, id`,
  test: `SELECT id, run_id AS runId, seq, name, port, started_at AS startedAt, finished_at AS finishedAt, verdict, detail,
    target, target_name AS targetName FROM tests WHERE id = ?`,
  segments: `SELECT id, test_id AS testId, side, dir, at_us AS atUs, bytes FROM segments WHERE test_id = ? ORDER BY at_us, id`,
  diffs: `SELECT id, test_id AS testId, sent_segment AS sentSegment, received_segment AS receivedSegment,
    layer, field, sent, received, class, change FROM diffs WHERE test_id = ? ORDER BY id`,
  hops: `SELECT id, test_id AS testId, ttl, kind, router, at_us AS atUs, sent, quote_length AS quoteLength, quote, packet, diff,
    not_visible AS notVisible FROM hops WHERE test_id = ? ORDER BY ttl, id`,
  // The view's ORDER BY carries over when no outer ORDER BY is given.
  allVerdicts: 'SELECT run_id AS runId, label, test, port, verdict, detail FROM verdicts',
  runVerdicts: 'SELECT run_id AS runId, label, test, port, verdict, detail FROM verdicts WHERE run_id = ?',
} as const;

/**
 * Rows as they are stored, for copying a run exactly (merge): each a raw array, the row's id first
 * where it has one, then the copied columns of shared/store/schema.ts in order. Ordered by id, so a
 * copy keeps the relative order of tests, segments and diffs.
 */
export const COPY_SQL = {
  runIds: 'SELECT id FROM runs ORDER BY started_at, id',
  run: `SELECT ${RUN_COLUMNS.join(', ')} FROM runs WHERE id = ?`,
  tests: `SELECT id, ${TEST_COLUMNS.join(', ')} FROM tests WHERE run_id = ? ORDER BY id`,
  segments: `SELECT id, ${SEGMENT_COLUMNS.join(', ')} FROM segments WHERE test_id = ? ORDER BY id`,
  diffs: `SELECT id, sent_segment, received_segment, ${DIFF_COLUMNS.join(', ')} FROM diffs WHERE test_id = ? ORDER BY id`,
  hops: `SELECT id, ${HOP_COLUMNS.join(', ')} FROM hops WHERE test_id = ? ORDER BY id`,
} as const;

type Row = unknown[];

/** Raw rows as arrays with integers as BigInt: values are copied exactly, whatever their size. */
function reader(db: Database.Database, sql: string): Database.Statement<unknown[], Row> {
  return db.prepare<unknown[], Row>(sql).raw(true).safeIntegers(true);
}

/** The reads of COPY_SQL, prepared on `db`. */
export function prepareCopyReads(db: Database.Database) {
  return {
    runIds: reader(db, COPY_SQL.runIds),
    run: reader(db, COPY_SQL.run),
    tests: reader(db, COPY_SQL.tests),
    segments: reader(db, COPY_SQL.segments),
    diffs: reader(db, COPY_SQL.diffs),
    hops: reader(db, COPY_SQL.hops),
  };
}
export type CopyReads = ReturnType<typeof prepareCopyReads>;

/** The inserts, prepared on `db` to take values exactly as read by prepareCopyReads (BigInt integers). */
export function prepareCopyWrites(db: Database.Database) {
  return {
    insertRun: db.prepare(SQL.insertRun).safeIntegers(true),
    insertTest: db.prepare(SQL.insertTest).safeIntegers(true),
    insertSegment: db.prepare(SQL.insertSegment).safeIntegers(true),
    insertDiff: db.prepare(SQL.insertDiff).safeIntegers(true),
    insertHop: db.prepare(SQL.insertHop).safeIntegers(true),
  };
}
export type CopyWrites = ReturnType<typeof prepareCopyWrites>;

/** Named parameters for an insert from a raw row: `values[i]` bound to `columns[i]`. */
export function byColumn(columns: readonly string[], values: Row): Record<string, unknown> {
  const named: Record<string, unknown> = {};
  columns.forEach((c, i) => (named[c] = values[i]));
  return named;
}
