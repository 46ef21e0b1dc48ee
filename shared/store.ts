import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { MbprobeError } from './wire/errors.js';

/** Bump whenever SCHEMA_SQL changes; files with another version are refused rather than guessed at. */
export const SCHEMA_VERSION = 1;

/** Where the initiator keeps its results unless told otherwise. */
export const DEFAULT_DB_PATH = 'results/mbprobe.sqlite';

/**
 * The schema researchers query directly; names are a contract. JSON columns are TEXT checked with
 * json_valid (a declared type of JSON would get NUMERIC affinity and turn '5' into 5).
 */
export const SCHEMA_SQL = `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE runs (
  id           TEXT PRIMARY KEY,
  started_at   TEXT NOT NULL,
  finished_at  TEXT,
  label        TEXT,
  responder    TEXT,
  tool_version TEXT NOT NULL,
  host_info    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(host_info)),
  tags         TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(tags))
);

CREATE TABLE tests (
  id          INTEGER PRIMARY KEY,
  run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  seq         INTEGER NOT NULL,
  name        TEXT NOT NULL,
  port        INTEGER NOT NULL CHECK (port BETWEEN 0 AND 65535),
  started_at  TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  verdict     TEXT NOT NULL,
  detail      TEXT CHECK (detail IS NULL OR json_valid(detail))
);
CREATE INDEX tests_run_id ON tests(run_id);
CREATE INDEX tests_name_port ON tests(name, port);

CREATE TABLE segments (
  id      INTEGER PRIMARY KEY,
  test_id INTEGER NOT NULL REFERENCES tests(id) ON DELETE CASCADE,
  side    TEXT NOT NULL CHECK (side IN ('initiator', 'responder')),
  dir     TEXT NOT NULL CHECK (dir IN ('sent', 'received')),
  at_us   INTEGER NOT NULL CHECK (typeof(at_us) = 'integer'),
  bytes   BLOB NOT NULL
);
CREATE INDEX segments_test_id ON segments(test_id);

CREATE TABLE diffs (
  id               INTEGER PRIMARY KEY,
  test_id          INTEGER NOT NULL REFERENCES tests(id) ON DELETE CASCADE,
  sent_segment     INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
  received_segment INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
  layer            TEXT NOT NULL CHECK (layer IN ('ip', 'tcp', 'option', 'payload')),
  field            TEXT NOT NULL,
  sent             TEXT,
  received         TEXT,
  class            TEXT NOT NULL CHECK (class IN ('interference', 'expected', 'isn-offset')),
  change           TEXT
);
CREATE INDEX diffs_test_id ON diffs(test_id);
-- Without these, every cascaded segment delete scans all of diffs.
CREATE INDEX diffs_sent_segment ON diffs(sent_segment);
CREATE INDEX diffs_received_segment ON diffs(received_segment);

CREATE VIEW verdicts AS
  SELECT r.id AS run_id, r.label AS label, t.name AS test, t.port AS port, t.verdict AS verdict, t.detail AS detail
  FROM tests t JOIN runs r ON r.id = t.run_id
  ORDER BY r.started_at, r.id, t.seq, t.id;
`;

export class StoreError extends MbprobeError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'StoreError';
  }
}

export type DiffLayer = 'ip' | 'tcp' | 'option' | 'payload';
export type DiffClass = 'interference' | 'expected' | 'isn-offset';

export interface RunRecord {
  id: string;
  startedAt: string;
  finishedAt?: string | null;
  label?: string | null;
  responder?: string | null;
  toolVersion: string;
  hostInfo?: Record<string, unknown>;
  tags?: Record<string, string>;
}

export interface SegmentRecord {
  side: 'initiator' | 'responder';
  dir: 'sent' | 'received';
  /** Microseconds since the epoch. */
  atUs: number;
  /** The whole IP packet. */
  bytes: Uint8Array;
}

export interface DiffRecord {
  /** Index into this test's `segments` array. */
  sentSegment: number;
  /** Index into this test's `segments` array. */
  receivedSegment: number;
  layer: DiffLayer;
  field: string;
  sent: string | null;
  received: string | null;
  class: DiffClass;
  change?: string;
}

export interface TestRecord {
  runId: string;
  name: string;
  port: number;
  /** Order within the run, 0-based; defaults to one past the run's highest seq so far. */
  seq?: number;
  startedAt: string;
  finishedAt: string;
  verdict: string;
  detail: unknown;
  segments: SegmentRecord[];
  diffs: DiffRecord[];
}

export interface RunRow {
  id: string;
  startedAt: string;
  finishedAt: string | null;
  label: string | null;
  responder: string | null;
  toolVersion: string;
  hostInfo: Record<string, unknown>;
  tags: Record<string, string>;
}

export interface TestRow {
  id: number;
  runId: string;
  seq: number;
  name: string;
  port: number;
  startedAt: string;
  finishedAt: string;
  verdict: string;
  detail: unknown;
}

export interface SegmentRow extends SegmentRecord {
  id: number;
  testId: number;
}

/** A stored diff: as DiffRecord, but `sentSegment`/`receivedSegment` are segments.id. */
export interface DiffRow extends Omit<DiffRecord, 'change'> {
  id: number;
  testId: number;
  change: string | null;
}

export interface VerdictRow {
  runId: string;
  label: string | null;
  test: string;
  port: number;
  verdict: string;
  detail: unknown;
}

export interface OpenOptions {
  /** Open an existing file without writing to it; never creates one. */
  readonly?: boolean;
  /** Recorded in meta.created_by when this call creates the file, e.g. 'mbprobe-initiator 0.1.0'. */
  createdBy?: string;
}

type RunSql = Omit<RunRow, 'hostInfo' | 'tags'> & { hostInfo: string; tags: string };
type TestSql = Omit<TestRow, 'detail'> & { detail: string | null };
type SegmentSql = Omit<SegmentRow, 'bytes'> & { bytes: Buffer };
type VerdictSql = Omit<VerdictRow, 'detail'> & { detail: string | null };

const RUN_COLUMNS = `id, started_at AS startedAt, finished_at AS finishedAt, label, responder,
  tool_version AS toolVersion, host_info AS hostInfo, tags`;
const TEST_COLUMNS = `id, run_id AS runId, seq, name, port, started_at AS startedAt, finished_at AS finishedAt, verdict, detail`;
const VERDICT_COLUMNS = `run_id AS runId, label, test, port, verdict, detail`;

function prepareStatements(db: Database.Database) {
  return {
    insertRun: db.prepare(`INSERT INTO runs (id, started_at, finished_at, label, responder, tool_version, host_info, tags)
      VALUES (@id, @startedAt, @finishedAt, @label, @responder, @toolVersion, @hostInfo, @tags)`),
    finishRun: db.prepare(`UPDATE runs SET finished_at = ? WHERE id = ?`),
    insertTest: db.prepare(`INSERT INTO tests (run_id, seq, name, port, started_at, finished_at, verdict, detail)
      VALUES (@runId, COALESCE(@seq, (SELECT COALESCE(MAX(seq), -1) + 1 FROM tests WHERE run_id = @runId)),
              @name, @port, @startedAt, @finishedAt, @verdict, @detail)`),
    insertSegment: db.prepare(`INSERT INTO segments (test_id, side, dir, at_us, bytes) VALUES (?, ?, ?, ?, ?)`),
    insertDiff: db.prepare(`INSERT INTO diffs (test_id, sent_segment, received_segment, layer, field, sent, received, class, change)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    runs: db.prepare<[], RunSql>(`SELECT ${RUN_COLUMNS} FROM runs ORDER BY started_at, id`),
    run: db.prepare<[string], RunSql>(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = ?`),
    tests: db.prepare<[string], TestSql>(`SELECT ${TEST_COLUMNS} FROM tests WHERE run_id = ? ORDER BY seq, id`),
    segments: db.prepare<[number], SegmentSql>(`SELECT id, test_id AS testId, side, dir, at_us AS atUs, bytes
      FROM segments WHERE test_id = ? ORDER BY at_us, id`),
    diffs: db.prepare<[number], DiffRow>(`SELECT id, test_id AS testId, sent_segment AS sentSegment,
      received_segment AS receivedSegment, layer, field, sent, received, class, change FROM diffs WHERE test_id = ? ORDER BY id`),
    // The view's ORDER BY carries over when no outer ORDER BY is given.
    allVerdicts: db.prepare<[], VerdictSql>(`SELECT ${VERDICT_COLUMNS} FROM verdicts`),
    runVerdicts: db.prepare<[string], VerdictSql>(`SELECT ${VERDICT_COLUMNS} FROM verdicts WHERE run_id = ?`),
  };
}

const toRun = (r: RunSql): RunRow => ({ ...r, hostInfo: JSON.parse(r.hostInfo), tags: JSON.parse(r.tags) });
const parseDetail = (detail: string | null): unknown => (detail === null ? null : JSON.parse(detail));
const sqliteCode = (err: unknown): string | undefined =>
  err instanceof Database.SqliteError ? err.code : undefined;

export class Store {
  readonly path: string;
  private readonly connection: Database.Database;
  private readonly statements: ReturnType<typeof prepareStatements>;

  private constructor(path: string, connection: Database.Database) {
    this.path = path;
    this.connection = connection;
    this.statements = prepareStatements(connection);
  }

  /** Opens (creating if needed, unless readonly) an mbprobe database; ':memory:' works too. */
  static open(path: string, opts: OpenOptions = {}): Store {
    const inMemory = path === ':memory:';
    const exists = inMemory || existsSync(path);
    if (opts.readonly && !exists) {
      throw new StoreError('DATABASE_NOT_FOUND', `No mbprobe database at ${path}: check the path, or run the initiator/responder first to create one.`);
    }
    if (!exists) mkdirSync(dirname(path), { recursive: true });

    let db: Database.Database;
    try {
      db = new Database(path, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false, timeout: 5000 }); // timeout is busy_timeout
    } catch (err) {
      throw new StoreError('OPEN_FAILED', `Cannot open ${path}: ${(err as Error).message}. Check the path and its permissions.`, { cause: err });
    }
    try {
      Store.prepareConnection(db, path, opts);
      return new Store(path, db);
    } catch (err) {
      db.close();
      if (sqliteCode(err) === 'SQLITE_NOTADB') {
        throw new StoreError('NOT_A_DATABASE', `${path} is not an SQLite database: point mbprobe at a .sqlite file it created, or move this file aside.`, { cause: err });
      }
      throw err;
    }
  }

  /** Creates the schema in a new file, refuses other versions before writing anything, then sets the pragmas. */
  private static prepareConnection(db: Database.Database, path: string, opts: OpenOptions): void {
    db.pragma('foreign_keys = ON');
    const userVersion = (): number => db.pragma('user_version', { simple: true }) as number;
    if (!opts.readonly && userVersion() === 0 && Store.isEmpty(db)) {
      // IMMEDIATE and re-checked inside, so two processes creating the same file at once don't both run the DDL.
      db.transaction(() => {
        if (userVersion() === 0 && Store.isEmpty(db)) Store.createSchema(db, opts.createdBy ?? 'mbprobe');
      }).immediate();
    }
    const version = userVersion();
    if (version !== SCHEMA_VERSION) {
      const has = version === 0 ? 'has no mbprobe schema (user_version 0)' : `has schema version ${version}`;
      throw new StoreError('SCHEMA_VERSION_MISMATCH',
        `${path} ${has}; this build of mbprobe reads schema version ${SCHEMA_VERSION}. ` +
        'Open it with the mbprobe version that wrote it, or use a new database file.');
    }
    if (!opts.readonly) {
      // WAL persists in the file, so readonly connections get it too; synchronous is per connection.
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
    }
  }

  private static isEmpty(db: Database.Database): boolean {
    return db.prepare('SELECT 1 FROM sqlite_master LIMIT 1').get() === undefined;
  }

  private static createSchema(db: Database.Database, createdBy: string): void {
    db.exec(SCHEMA_SQL);
    const setMeta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
    setMeta.run('schema_version', String(SCHEMA_VERSION));
    setMeta.run('created_by', createdBy);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }

  /** Escape hatch for results queries; prefer the methods for writes. */
  get db(): Database.Database {
    return this.connection;
  }

  insertRun(run: RunRecord): void {
    try {
      this.statements.insertRun.run({
        id: run.id,
        startedAt: run.startedAt,
        finishedAt: run.finishedAt ?? null,
        label: run.label ?? null,
        responder: run.responder ?? null,
        toolVersion: run.toolVersion,
        hostInfo: JSON.stringify(run.hostInfo ?? {}),
        tags: JSON.stringify(run.tags ?? {}),
      });
    } catch (err) {
      if (sqliteCode(err) === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new StoreError('RUN_EXISTS', `Run ${run.id} is already in ${this.path}: use a new run id, or a different database file.`, { cause: err });
      }
      throw err;
    }
  }

  finishRun(runId: string, finishedAt: string): void {
    if (this.statements.finishRun.run(finishedAt, runId).changes === 0) {
      throw new StoreError('RUN_NOT_FOUND', `Cannot finish run ${runId}: it is not in ${this.path}. Insert the run before finishing it.`);
    }
  }

  /** Writes the test, its segments and its diffs in one transaction; returns the new test id. */
  insertTest(test: TestRecord): number {
    try {
      return this.transaction(() => {
        const testId = Number(this.statements.insertTest.run({
          runId: test.runId,
          seq: test.seq ?? null,
          name: test.name,
          port: test.port,
          startedAt: test.startedAt,
          finishedAt: test.finishedAt,
          verdict: test.verdict,
          detail: test.detail === undefined || test.detail === null ? null : JSON.stringify(test.detail),
        }).lastInsertRowid);
        const segmentIds = test.segments.map((s) =>
          Number(this.statements.insertSegment.run(testId, s.side, s.dir, s.atUs, s.bytes).lastInsertRowid));
        for (const d of test.diffs) {
          const sentId = segmentIds[d.sentSegment];
          const receivedId = segmentIds[d.receivedSegment];
          if (sentId === undefined || receivedId === undefined) {
            throw new StoreError('BAD_DIFF_REFERENCE',
              `Test ${test.name} (run ${test.runId}) has a ${d.layer} diff of '${d.field}' referring to segments ${d.sentSegment}/${d.receivedSegment}, ` +
              `but only ${segmentIds.length} segments were given; nothing was written to ${this.path}. This is a bug in the caller.`);
          }
          this.statements.insertDiff.run(testId, sentId, receivedId, d.layer, d.field, d.sent, d.received, d.class, d.change ?? null);
        }
        return testId;
      });
    } catch (err) {
      // The run is the only foreign key a caller can get wrong here.
      if (sqliteCode(err) === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
        throw new StoreError('RUN_NOT_FOUND', `Cannot add test ${test.name}: run ${test.runId} is not in ${this.path}. Insert the run first.`, { cause: err });
      }
      throw err;
    }
  }

  /** Deletes a test with its segments and diffs (the responder replaces its bounded record of unattributed segments). */
  deleteTest(testId: number): void {
    this.connection.prepare('DELETE FROM tests WHERE id = ?').run(testId);
  }

  runs(): RunRow[] {
    return this.statements.runs.all().map(toRun);
  }

  run(id: string): RunRow | undefined {
    const row = this.statements.run.get(id);
    return row && toRun(row);
  }

  /** Tests of a run in the order they ran (seq, then id). */
  tests(runId: string): TestRow[] {
    return this.statements.tests.all(runId).map((t) => ({ ...t, detail: parseDetail(t.detail) }));
  }

  /** Segments of a test by capture time; `bytes` is a plain Uint8Array view. */
  segments(testId: number): SegmentRow[] {
    return this.statements.segments.all(testId).map((s) => ({
      ...s,
      bytes: new Uint8Array(s.bytes.buffer, s.bytes.byteOffset, s.bytes.byteLength),
    }));
  }

  diffs(testId: number): DiffRow[] {
    return this.statements.diffs.all(testId);
  }

  verdicts(runId?: string): VerdictRow[] {
    const rows = runId === undefined ? this.statements.allVerdicts.all() : this.statements.runVerdicts.all(runId);
    return rows.map((v) => ({ ...v, detail: parseDetail(v.detail) }));
  }

  /** Runs fn in a transaction (a savepoint when nested); rolls back if it throws. */
  transaction<T>(fn: () => T): T {
    return this.connection.transaction(fn)();
  }

  close(): void {
    this.connection.close();
  }
}
