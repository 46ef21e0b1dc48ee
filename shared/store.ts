import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { MbprobeError, type ErrorCode } from './wire/errors.js';
import { addedViewsSql, MIGRATIONS, SCHEMA_SQL, SCHEMA_VERSION, upgradeViewsSql, type HopKind, type RunKind } from './store/schema.js';
import { SQL } from './store/statements.js';

export { HOP_KINDS, RUN_KINDS, SCHEMA_SQL, SCHEMA_VERSION, type HopKind, type RunKind } from './store/schema.js';

/** Where the initiator keeps its results unless told otherwise. */
export const DEFAULT_DB_PATH = 'results/mbprobe.sqlite';

export class StoreError extends MbprobeError {
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
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
  /** Default 'measurement' (a run against a responder); 'server-scan' for `mbprobe-initiator scan`. */
  kind?: RunKind;
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

/** A diff row as a hop's `diff` column holds it (shared/diff.ts's DiffRow): a test's diff row without the segments it joins (a hop's row compares its copy and its quote). */
export type HopDiffRow = Omit<DiffRecord, 'sentSegment' | 'receivedSegment'>;

/** One row of hops: what came back for the copy of a test's probe sent with this TTL (shared/store/schema.ts). */
export interface HopRecord {
  ttl: number;
  kind: HopKind;
  /** The hop's address (the error's source, or the responder's); null when nothing answered. */
  router: string | null;
  /** Microseconds since the epoch when the answer arrived; null when none did. */
  atUs: number | null;
  /** The copy as sent (the whole IP packet). */
  sent: Uint8Array;
  /** How many bytes of the copy the answer shows, and those bytes. */
  quoteLength: number | null;
  quote: Uint8Array | null;
  /** The ICMP error as received (the whole IP packet). */
  packet: Uint8Array | null;
  diff: HopDiffRow[];
  notVisible: string[];
}

export interface HopRow extends HopRecord {
  id: number;
  testId: number;
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
  /** Hop localisation rows (locate), when the test was localised. */
  hops?: HopRecord[];
  /** The server a scan probed: its address, and the name it was resolved from (unset for measurements). */
  target?: string | null;
  targetName?: string | null;
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
  kind: RunKind;
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
  /** The server a scan probed (null for measurements against a responder). */
  target: string | null;
  targetName: string | null;
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
type HopSql = Omit<HopRow, 'sent' | 'quote' | 'packet' | 'diff' | 'notVisible'> & { sent: Buffer; quote: Buffer | null; packet: Buffer | null; diff: string; notVisible: string };

/**
 * Statements prepared on first use: a read-only connection to an older file reads it through TEMP
 * views (shared/store/schema.ts, upgradeViewsSql), on which a write statement cannot even be prepared.
 */
function writeStatements<K extends string>(db: Database.Database, sql: Record<K, string>): Record<K, Database.Statement> {
  const statements = {} as Record<K, Database.Statement>;
  for (const key of Object.keys(sql) as K[]) {
    let statement: Database.Statement | undefined;
    Object.defineProperty(statements, key, { get: () => (statement ??= db.prepare(sql[key])), enumerable: true });
  }
  return statements;
}

function prepareStatements(db: Database.Database) {
  return {
    write: writeStatements(db, {
      insertRun: SQL.insertRun, finishRun: SQL.finishRun, mergeHostInfo: SQL.mergeHostInfo, insertTest: SQL.insertTest,
      insertSegment: SQL.insertSegment, insertDiff: SQL.insertDiff, deleteTest: SQL.deleteTest, insertHop: SQL.insertHop, setLocation: SQL.setLocation,
    }),
    hops: db.prepare<[number], HopSql>(SQL.hops),
    runs: db.prepare<[], RunSql>(SQL.runs),
    run: db.prepare<[string], RunSql>(SQL.run),
    tests: db.prepare<[string], TestSql>(SQL.tests),
    test: db.prepare<[number], TestSql>(SQL.test),
    segments: db.prepare<[number], SegmentSql>(SQL.segments),
    diffs: db.prepare<[number], DiffRow>(SQL.diffs),
    allVerdicts: db.prepare<[], VerdictSql>(SQL.allVerdicts),
    runVerdicts: db.prepare<[string], VerdictSql>(SQL.runVerdicts),
  };
}

const view = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
const toHop = (h: HopSql): HopRow => ({
  ...h, sent: view(h.sent), quote: h.quote && view(h.quote), packet: h.packet && view(h.packet), diff: JSON.parse(h.diff), notVisible: JSON.parse(h.notVisible),
});
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

  /**
   * Creates the schema in a new file, migrates a file of an older version opened for writing (read-only,
   * it is read through TEMP views of the current shape), refuses newer versions before writing
   * anything, then sets the pragmas.
   */
  private static prepareConnection(db: Database.Database, path: string, opts: OpenOptions): void {
    db.pragma('foreign_keys = ON');
    const userVersion = (): number => db.pragma('user_version', { simple: true }) as number;
    if (!opts.readonly && userVersion() === 0 && Store.isEmpty(db)) {
      // IMMEDIATE and re-checked inside, so two processes creating the same file at once don't both run the DDL.
      db.transaction(() => {
        if (userVersion() === 0 && Store.isEmpty(db)) Store.createSchema(db, opts.createdBy ?? 'mbprobe');
      }).immediate();
    }
    if (!opts.readonly && userVersion() > 0 && userVersion() < SCHEMA_VERSION && MIGRATIONS[userVersion()] !== undefined) {
      // Re-checked inside, as above: another process may have migrated the file while we waited for the lock.
      db.transaction(() => {
        if (userVersion() < SCHEMA_VERSION) Store.migrate(db, userVersion());
      }).immediate();
    }
    const version = userVersion();
    const readableOlder = opts.readonly && version > 0 && version < SCHEMA_VERSION && MIGRATIONS[version] !== undefined;
    if (version !== SCHEMA_VERSION && !readableOlder) {
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
    if (readableOlder) {
      db.exec(upgradeViewsSql(version));
      return;
    }
    // Files written before initiator_runs existed: the same version (a view holds no data), so add it.
    if (db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = 'initiator_runs'").get() === undefined) {
      db.exec(addedViewsSql(opts.readonly ?? false));
    }
  }

  /** Runs the migrations from `from` up to SCHEMA_VERSION (inside the caller's transaction); the file then reads as if created by this build. */
  private static migrate(db: Database.Database, from: number): void {
    for (let version = from; version < SCHEMA_VERSION; version++) {
      const sql = MIGRATIONS[version];
      if (sql === undefined) throw new StoreError('NO_MIGRATION', `no migration from schema version ${version}; open the file with the mbprobe version that wrote it`);
      db.exec(sql);
      db.pragma(`user_version = ${version + 1}`);
    }
    db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(String(SCHEMA_VERSION));
    db.prepare("INSERT INTO meta (key, value) VALUES ('migrated_from', ?) ON CONFLICT (key) DO NOTHING").run(String(from));
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

  /** The connection, for the statements and queries of shared/store/; prefer the methods. */
  get db(): Database.Database {
    return this.connection;
  }

  insertRun(run: RunRecord): void {
    try {
      this.statements.write.insertRun.run({
        id: run.id,
        started_at: run.startedAt,
        finished_at: run.finishedAt ?? null,
        label: run.label ?? null,
        responder: run.responder ?? null,
        tool_version: run.toolVersion,
        host_info: JSON.stringify(run.hostInfo ?? {}),
        tags: JSON.stringify(run.tags ?? {}),
        kind: run.kind ?? 'measurement',
      });
    } catch (err) {
      if (sqliteCode(err) === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new StoreError('RUN_EXISTS', `Run ${run.id} is already in ${this.path}: use a new run id, or a different database file.`, { cause: err });
      }
      throw err;
    }
  }

  finishRun(runId: string, finishedAt: string): void {
    if (this.statements.write.finishRun.run(finishedAt, runId).changes === 0) {
      throw new StoreError('RUN_NOT_FOUND', `Cannot finish run ${runId}: it is not in ${this.path}. Insert the run before finishing it.`);
    }
  }

  /** Adds `info`'s keys to the run's host_info (JSON merge patch: a key set to null is removed). */
  mergeHostInfo(runId: string, info: Record<string, unknown>): void {
    if (this.statements.write.mergeHostInfo.run(JSON.stringify(info), runId).changes === 0) {
      throw new StoreError('RUN_NOT_FOUND', `Cannot update run ${runId}: it is not in ${this.path}.`);
    }
  }

  /** Writes the test, its segments and its diffs in one transaction; returns the new test id. */
  insertTest(test: TestRecord): number {
    try {
      return this.transaction(() => {
        const testId = Number(this.statements.write.insertTest.run({
          run_id: test.runId,
          seq: test.seq ?? null,
          name: test.name,
          port: test.port,
          started_at: test.startedAt,
          finished_at: test.finishedAt,
          verdict: test.verdict,
          detail: test.detail === undefined || test.detail === null ? null : JSON.stringify(test.detail),
          target: test.target ?? null,
          target_name: test.targetName ?? null,
        }).lastInsertRowid);
        const segmentIds = test.segments.map((s) =>
          Number(this.statements.write.insertSegment.run({ test_id: testId, side: s.side, dir: s.dir, at_us: s.atUs, bytes: s.bytes }).lastInsertRowid));
        for (const d of test.diffs) {
          const sentId = segmentIds[d.sentSegment];
          const receivedId = segmentIds[d.receivedSegment];
          if (sentId === undefined || receivedId === undefined) {
            throw new StoreError('BAD_DIFF_REFERENCE',
              `Test ${test.name} (run ${test.runId}) has a ${d.layer} diff of '${d.field}' referring to segments ${d.sentSegment}/${d.receivedSegment}, ` +
              `but only ${segmentIds.length} segments were given; nothing was written to ${this.path}. This is a bug in the caller.`);
          }
          this.statements.write.insertDiff.run({
            test_id: testId, sent_segment: sentId, received_segment: receivedId,
            layer: d.layer, field: d.field, sent: d.sent, received: d.received, class: d.class, change: d.change ?? null,
          });
        }
        if (test.hops) this.writeHops(testId, test.hops);
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

  /**
   * Adds a test's hop localisation after the fact (locate runs once the test's verdict is stored): its
   * rows in hops and the finding as detail.location, in one transaction.
   */
  addLocation(testId: number, location: unknown, hops: readonly HopRecord[]): void {
    this.transaction(() => {
      if (this.statements.write.setLocation.run(JSON.stringify(location), testId).changes === 0) {
        throw new StoreError('TEST_NOT_FOUND', `Cannot add a location to test ${testId}: it is not in ${this.path}.`);
      }
      this.writeHops(testId, hops);
    });
  }

  private writeHops(testId: number, hops: readonly HopRecord[]): void {
    for (const h of hops) {
      this.statements.write.insertHop.run({
        test_id: testId, ttl: h.ttl, kind: h.kind, router: h.router, at_us: h.atUs, sent: h.sent, quote_length: h.quoteLength, quote: h.quote,
        packet: h.packet, diff: JSON.stringify(h.diff), not_visible: JSON.stringify(h.notVisible),
      });
    }
  }

  /** A test's hop rows, by TTL. */
  hops(testId: number): HopRow[] {
    return this.statements.hops.all(testId).map(toHop);
  }

  /** Deletes a test with its segments and diffs (the responder replaces its bounded record of unattributed segments). */
  deleteTest(testId: number): void {
    this.statements.write.deleteTest.run(testId);
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

  test(id: number): TestRow | undefined {
    const row = this.statements.test.get(id);
    return row && { ...row, detail: parseDetail(row.detail) };
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
