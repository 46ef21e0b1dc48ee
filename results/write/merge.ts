import { existsSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { TOOL_VERSION, UsageError } from '../../shared/cli.js';
import { Store, StoreError } from '../../shared/store.js';
import { DIFF_COLUMNS, HOP_COLUMNS, RUN_COLUMNS, SEGMENT_COLUMNS, TEST_COLUMNS } from '../../shared/store/schema.js';
import { byColumn, prepareCopyReads, prepareCopyWrites, type CopyReads } from '../../shared/store/statements.js';
import { MbprobeError } from '../../shared/wire/errors.js';

/**
 * `mbprobe-results merge OUT IN...`: copies every run of every input database into OUT, each run in
 * one transaction. A run whose id is already in OUT is skipped when its content is identical and
 * refused (a conflict) when it is not; an input that is not an mbprobe database of this schema
 * version, or is OUT itself, is refused as a whole. Inputs are only ever opened read-only.
 *
 * Why rows are copied through JavaScript rather than with ATTACH + INSERT ... SELECT: this build of
 * better-sqlite3 has URI filenames disabled (SQLITE_USE_URI=0), so an attached file cannot be
 * opened with mode=ro, and a read-write attachment of a WAL database may checkpoint into the
 * volunteer's file when it is detached. Two connections (input read-only, OUT read-write) with
 * prepared statements copy thousands of segments in milliseconds, and keep the input untouched.
 */

/** A run copied into OUT, with what came with it. */
export interface MergedRun {
  runId: string;
  label: string | null;
  /** False when the run has no finished_at (interrupted, or still running when the file was copied). */
  finished: boolean;
  tests: number;
  segments: number;
  diffs: number;
}

export interface Refusal {
  /** RUN_CONFLICT, BAD_DIFF_REFERENCE, BAD_RUN_DATA for runs; StoreError codes or SAME_AS_OUTPUT, INPUT_UNREADABLE for files. */
  code: string;
  reason: string;
}

export interface RefusedRun extends Refusal {
  runId: string;
}

export interface InputReport {
  path: string;
  /** Set when the whole file was refused; then nothing of it was read. */
  refused: Refusal | null;
  merged: MergedRun[];
  /** Runs already in OUT with identical content. */
  duplicates: string[];
  refusedRuns: RefusedRun[];
}

export interface MergeReport {
  out: string;
  /** OUT did not exist before this merge. */
  created: boolean;
  inputs: InputReport[];
  totals: {
    runsMerged: number;
    duplicatesSkipped: number;
    runsRefused: number;
    filesRefused: number;
    tests: number;
    segments: number;
    diffs: number;
  };
  /**
   * Set when the merge stopped early on an error that is not the input's fault (OUT's disk full,
   * I/O error, lock timeout). Every run listed as merged is committed; the inputs after `input`
   * were not looked at (`notProcessed`) and are not in `inputs`.
   */
  aborted: (Refusal & { input: string; runId: string | null; notProcessed: string[] }) | null;
  /** Everything was merged or skipped as identical: nothing refused, not aborted. */
  complete: boolean;
}

export interface MergeOptions {
  /** meta.created_by when OUT is created. */
  createdBy?: string;
}

type Row = unknown[];

/** OUT's statements: the input's reads (to compare a run it already has) and the inserts. */
function prepareTarget(db: Database.Database) {
  return { ...prepareCopyReads(db), ...prepareCopyWrites(db) };
}
type TargetStatements = ReturnType<typeof prepareTarget>;

/** Merges every run of `inPaths` into `outPath` (created if missing). Throws only when OUT itself cannot be opened. */
export function mergeDatabases(outPath: string, inPaths: readonly string[], options: MergeOptions = {}): MergeReport {
  if (inPaths.length === 0) throw new UsageError('NO_INPUTS', 'give at least one database to merge into ' + outPath);
  if (outPath === ':memory:') throw new UsageError('BAD_OUTPUT', 'OUT must be a file: a merge into :memory: would be lost');

  const created = !existsSync(outPath);
  const out = Store.open(outPath, { createdBy: options.createdBy ?? `mbprobe-results ${TOOL_VERSION} merge` });
  const report: MergeReport = {
    out: outPath,
    created,
    inputs: [],
    totals: { runsMerged: 0, duplicatesSkipped: 0, runsRefused: 0, filesRefused: 0, tests: 0, segments: 0, diffs: 0 },
    aborted: null,
    complete: false,
  };
  try {
    const target = prepareTarget(out.db);
    const outIdentity = fileIdentity(outPath);
    for (const [i, inPath] of inPaths.entries()) {
      const input: InputReport = { path: inPath, refused: null, merged: [], duplicates: [], refusedRuns: [] };
      const aborted = mergeInput(out, target, outIdentity, input);
      report.inputs.push(input);
      if (aborted) {
        report.aborted = { input: inPath, ...aborted, notProcessed: inPaths.slice(i + 1) };
        break;
      }
    }
  } finally {
    out.close();
  }

  const t = report.totals;
  for (const input of report.inputs) {
    if (input.refused) t.filesRefused++;
    t.runsMerged += input.merged.length;
    t.duplicatesSkipped += input.duplicates.length;
    t.runsRefused += input.refusedRuns.length;
    for (const run of input.merged) {
      t.tests += run.tests;
      t.segments += run.segments;
      t.diffs += run.diffs;
    }
  }
  report.complete = report.aborted === null && t.filesRefused === 0 && t.runsRefused === 0;
  return report;
}

function fileIdentity(path: string): string | undefined {
  try {
    const s = statSync(path);
    return `${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
}

/** Fills `input`; returns the reason when the whole merge has to stop. */
function mergeInput(out: Store, target: TargetStatements, outIdentity: string | undefined, input: InputReport): (Refusal & { runId: string | null }) | undefined {
  const identity = fileIdentity(input.path);
  if (identity !== undefined && identity === outIdentity) {
    input.refused = {
      code: 'SAME_AS_OUTPUT',
      reason: `${input.path} is the output database ${out.path} itself; give the inputs and the output as different files.`,
    };
    return undefined;
  }

  let source: Store;
  try {
    source = Store.open(input.path, { readonly: true });
  } catch (err) {
    // Whatever stops an input from opening is that input's problem, never a reason to stop the merge.
    input.refused = err instanceof StoreError
      ? { code: err.code, reason: err.message }
      : { code: sqliteCode(err) ?? 'OPEN_FAILED', reason: `cannot open ${input.path}: ${(err as Error).message ?? String(err)}` };
    return undefined;
  }

  try {
    const statements = prepareCopyReads(source.db);
    let runIds: string[];
    try {
      runIds = statements.runIds.all().map((r) => String(r[0]));
    } catch (err) {
      input.refused = { code: 'INPUT_UNREADABLE', reason: `cannot read the runs of ${input.path}: ${(err as Error).message}` };
      return undefined;
    }
    for (const runId of runIds) {
      try {
        const outcome = mergeRun(out, target, source, statements, runId);
        if (outcome.kind === 'merged') input.merged.push(outcome.run);
        else input.duplicates.push(runId);
      } catch (err) {
        if (err instanceof StoreError) {
          input.refusedRuns.push({ runId, code: err.code, reason: err.message });
        } else if (isInputDataError(err)) {
          input.refusedRuns.push({
            runId, code: 'BAD_RUN_DATA',
            reason: `run ${runId} of ${input.path} could not be copied (${(err as Error).message}); nothing of it was written to ${out.path}.`,
          });
        } else {
          return {
            runId,
            code: err instanceof MbprobeError ? err.code : sqliteCode(err) ?? 'MERGE_FAILED',
            reason: `merging run ${runId} of ${input.path} failed: ${(err as Error).message ?? String(err)}. ` +
              `That run was rolled back; every run reported as merged is committed in ${out.path}, so the same merge can simply be run again.`,
          };
        }
      }
    }
  } finally {
    source.close();
  }
  return undefined;
}

const sqliteCode = (err: unknown): string | undefined => (err instanceof Database.SqliteError ? err.code : undefined);

/** Errors caused by what is in the input (bad rows, a damaged file), as opposed to OUT or the machine failing. */
function isInputDataError(err: unknown): boolean {
  const code = sqliteCode(err);
  return code !== undefined && /^SQLITE_(CONSTRAINT|CORRUPT|NOTADB|MISMATCH|TOOBIG|RANGE|FORMAT)/.test(code);
}

type RunOutcome = { kind: 'merged'; run: MergedRun } | { kind: 'duplicate' };

/**
 * One run, in one IMMEDIATE transaction on OUT (so two merges into the same OUT cannot both copy
 * it) and one read transaction on the input (so the run is read as one consistent snapshot even
 * while the initiator is still writing to that file).
 */
function mergeRun(out: Store, target: TargetStatements, source: Store, statements: CopyReads, runId: string): RunOutcome {
  return source.db.transaction(() => out.db.transaction((): RunOutcome => {
    const existing = target.run.get(runId);
    if (existing !== undefined) {
      const differences = compareRuns(loadRun(target, runId)!, loadRun(statements, runId)!, source.path, out.path);
      if (differences.length === 0) return { kind: 'duplicate' };
      const shown = differences.slice(0, 3).join('; ') + (differences.length > 3 ? `; and ${differences.length - 3} more` : '');
      throw new StoreError('RUN_CONFLICT',
        `run ${runId} is already in ${out.path} with different content (${shown}). ` +
        `Not merged: ${out.path} keeps its copy. Compare the two, then merge the one you trust into a fresh database.`);
    }
    return { kind: 'merged', run: copyRun(target, statements, runId, source.path) };
  }).immediate())();
}

function copyRun(target: TargetStatements, statements: CopyReads, runId: string, sourcePath: string): MergedRun {
  const run = statements.run.get(runId)!;
  target.insertRun.run(byColumn(RUN_COLUMNS, run));
  const merged: MergedRun = {
    runId,
    label: run[3] === null ? null : String(run[3]),
    finished: run[2] !== null,
    tests: 0,
    segments: 0,
    diffs: 0,
  };
  // tests are read with all(): better-sqlite3 allows no other statement on a connection while one iterates.
  for (const [testId, ...columns] of statements.tests.all(runId)) {
    const newTestId = target.insertTest.run({ run_id: runId, ...byColumn(TEST_COLUMNS, columns) }).lastInsertRowid;
    merged.tests++;
    const segmentIds = new Map<bigint, number | bigint>();
    for (const [segmentId, ...segment] of statements.segments.iterate(testId)) {
      segmentIds.set(segmentId as bigint, target.insertSegment.run({ test_id: newTestId, ...byColumn(SEGMENT_COLUMNS, segment) }).lastInsertRowid);
      merged.segments++;
    }
    for (const [diffId, sent, received, ...diff] of statements.diffs.iterate(testId)) {
      const newSent = segmentIds.get(sent as bigint);
      const newReceived = segmentIds.get(received as bigint);
      if (newSent === undefined || newReceived === undefined) {
        throw new StoreError('BAD_DIFF_REFERENCE',
          `run ${runId} of ${sourcePath}: diff ${diffId} of test ${describeTest(columns)} refers to segment ${newSent === undefined ? sent : received}, ` +
          `which is not one of that test's segments; the run was not merged (the input is damaged or was edited by hand).`);
      }
      target.insertDiff.run({ test_id: newTestId, sent_segment: newSent, received_segment: newReceived, ...byColumn(DIFF_COLUMNS, diff) });
      merged.diffs++;
    }
    // Hop localisation (locate): rows of their own, copied as they are.
    for (const [, ...hop] of statements.hops.iterate(testId)) target.insertHop.run({ test_id: newTestId, ...byColumn(HOP_COLUMNS, hop) });
  }
  return merged;
}

interface TestContent {
  /** seq, name, port, started_at, finished_at, verdict, detail */
  columns: Row;
  /** side, dir, at_us, bytes, in id order */
  segments: Row[];
  /** Segment references as indexes into `segments` (-1: not a segment of this test), then the other columns. */
  diffs: Row[];
  /** HOP_COLUMNS, in id order. */
  hops: Row[];
}

interface RunContent {
  run: Row;
  tests: TestContent[];
}

function loadRun(statements: CopyReads, runId: string): RunContent | undefined {
  const run = statements.run.get(runId);
  if (run === undefined) return undefined;
  const tests = statements.tests.all(runId).map(([testId, ...columns]): TestContent => {
    const segmentRows = statements.segments.all(testId);
    const index = new Map(segmentRows.map((s, i) => [s[0] as bigint, i]));
    return {
      columns,
      segments: segmentRows.map((s) => s.slice(1)),
      diffs: statements.diffs.all(testId).map(([, sent, received, ...rest]) =>
        [index.get(sent as bigint) ?? -1, index.get(received as bigint) ?? -1, ...rest]),
      hops: statements.hops.all(testId).map((h) => h.slice(1)),
    };
  });
  return { run, tests };
}

const describeTest = (columns: Row): string => `${String(columns[1])} port ${String(columns[2])} (seq ${String(columns[0])})`;

function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b) === 0;
  return a === b;
}

const sameRow = (a: Row, b: Row): boolean => a.length === b.length && a.every((v, i) => sameValue(v, b[i]));
const show = (v: unknown): string => (v === null ? 'null' : typeof v === 'string' ? `'${v}'` : String(v));

/** Every way the two copies of a run differ, most telling first; empty when they are identical. */
function compareRuns(kept: RunContent, incoming: RunContent, sourcePath: string, outPath: string): string[] {
  const differences: string[] = [];
  if (kept.tests.length !== incoming.tests.length) {
    const unfinished = kept.run[2] === null && incoming.run[2] !== null ? `; the copy in ${outPath} was taken before the run finished` : '';
    differences.push(`${outPath} has ${kept.tests.length} tests, ${sourcePath} has ${incoming.tests.length}${unfinished}`);
  }
  const paired = Math.min(kept.tests.length, incoming.tests.length);
  const verdicts: string[] = [];
  const others: string[] = [];
  for (let i = 0; i < paired; i++) {
    const a = kept.tests[i];
    const b = incoming.tests[i];
    const name = describeTest(a.columns);
    if (!sameRow(a.columns.slice(0, 3), b.columns.slice(0, 3))) {
      others.push(`test #${i + 1} is ${name} in ${outPath}, ${describeTest(b.columns)} in ${sourcePath}`);
      continue;
    }
    TEST_COLUMNS.forEach((column, c) => {
      if (c < 3 || sameValue(a.columns[c], b.columns[c])) return;
      const line = `${name}: ${column} ${show(a.columns[c])} in ${outPath}, ${show(b.columns[c])} in ${sourcePath}`;
      (column === 'verdict' ? verdicts : others).push(line);
    });
    if (a.segments.length !== b.segments.length) {
      others.push(`${name}: ${a.segments.length} segments in ${outPath}, ${b.segments.length} in ${sourcePath}`);
    } else {
      const k = a.segments.findIndex((s, j) => !sameRow(s, b.segments[j]));
      if (k >= 0) {
        const column = SEGMENT_COLUMNS.find((_, c) => !sameValue(a.segments[k][c], b.segments[k][c]));
        others.push(`${name}: segment ${k + 1} differs (${column})`);
      }
    }
    if (a.diffs.length !== b.diffs.length) {
      others.push(`${name}: ${a.diffs.length} diffs in ${outPath}, ${b.diffs.length} in ${sourcePath}`);
    } else if (a.diffs.some((d, j) => !sameRow(d, b.diffs[j]))) {
      others.push(`${name}: diffs differ`);
    }
    if (a.hops.length !== b.hops.length) others.push(`${name}: ${a.hops.length} hop rows in ${outPath}, ${b.hops.length} in ${sourcePath}`);
    else if (a.hops.some((h, j) => !sameRow(h, b.hops[j]))) others.push(`${name}: hop rows differ`);
  }
  differences.push(...verdicts, ...others);
  RUN_COLUMNS.forEach((column, c) => {
    if (!sameValue(kept.run[c], incoming.run[c])) {
      differences.push(`run ${column} ${show(kept.run[c])} in ${outPath}, ${show(incoming.run[c])} in ${sourcePath}`);
    }
  });
  return differences;
}
