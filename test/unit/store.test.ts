import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  SCHEMA_VERSION, Store, StoreError, type DiffRecord, type RunRecord, type SegmentRecord, type TestRecord,
} from '../../shared/store.js';

let dir: string;
const opened: Store[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mbprobe-store-'));
});

afterEach(() => {
  for (const store of opened.splice(0)) if (store.db.open) store.close();
  rmSync(dir, { recursive: true, force: true });
});

function open(path = join(dir, 'db.sqlite'), opts?: { readonly?: boolean; createdBy?: string }): Store {
  const store = Store.open(path, opts);
  opened.push(store);
  return store;
}

function caught(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    return err as StoreError;
  }
  throw new Error('expected a StoreError, nothing was thrown');
}

const fullRun: RunRecord = {
  id: 'run-1',
  startedAt: '2024-05-01T10:00:00.000Z',
  finishedAt: '2024-05-01T10:05:00.000Z',
  label: 'home-dsl',
  responder: 'responder.example.org',
  toolVersion: '0.1.0',
  hostInfo: { os: 'linux', kernel: '6.8', nested: { ifaces: ['eth0', 'wlan0'] } },
  tags: { isp: 'example', access: 'dsl' },
};

const segments: SegmentRecord[] = [
  { side: 'initiator', dir: 'sent', atUs: 1_714_557_600_000_001, bytes: Uint8Array.from([0x45, 0x00, 0x00, 0x28, 0xde, 0xad]) },
  { side: 'responder', dir: 'received', atUs: 1_714_557_600_020_002, bytes: Uint8Array.from([0x45, 0x00, 0x00, 0x2c, 0xbe, 0xef, 0x00]) },
  { side: 'responder', dir: 'sent', atUs: 1_714_557_600_030_003, bytes: new Uint8Array(0) },
];

const diffs: DiffRecord[] = [
  { sentSegment: 0, receivedSegment: 1, layer: 'ip', field: 'ttl', sent: '64', received: '57', class: 'expected' },
  { sentSegment: 0, receivedSegment: 1, layer: 'option', field: 'mss', sent: '1460', received: '1400', class: 'interference', change: 'clamped' },
  { sentSegment: 0, receivedSegment: 1, layer: 'option', field: 'sackOK', sent: 'sackOK', received: null, class: 'interference', change: 'removed' },
  { sentSegment: 0, receivedSegment: 1, layer: 'option', field: 'tfo', sent: null, received: 'tfo', class: 'interference' },
  { sentSegment: 2, receivedSegment: 0, layer: 'tcp', field: 'seq', sent: '1000', received: '5000', class: 'isn-offset' },
];

function testRecord(overrides: Partial<TestRecord> = {}): TestRecord {
  return {
    runId: 'run-1',
    name: 'mss-clamp',
    port: 443,
    startedAt: '2024-05-01T10:00:01.000Z',
    finishedAt: '2024-05-01T10:00:02.500Z',
    verdict: 'interference',
    detail: { summary: 'MSS clamped to 1400', counts: [1, 2, 3], ok: false, missing: null },
    segments,
    diffs,
    ...overrides,
  };
}

const count = (store: Store, table: string): number =>
  (store.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;

describe('Store round trip', () => {
  it('stores and returns every run field, including NULLs and defaults', () => {
    const store = open();
    store.insertRun(fullRun);
    store.insertRun({ id: 'run-0', startedAt: '2024-04-30T09:00:00.000Z', toolVersion: '0.1.0' });

    expect(store.run('run-1')).toEqual({ ...fullRun, kind: 'measurement' });
    expect(store.run('run-0')).toEqual({
      id: 'run-0', startedAt: '2024-04-30T09:00:00.000Z', finishedAt: null, label: null, responder: null,
      toolVersion: '0.1.0', hostInfo: {}, tags: {}, kind: 'measurement',
    });
    expect(store.run('nope')).toBeUndefined();
    expect(store.runs().map((r) => r.id)).toEqual(['run-0', 'run-1']);

    store.finishRun('run-0', '2024-04-30T09:30:00.000Z');
    expect(store.run('run-0')?.finishedAt).toBe('2024-04-30T09:30:00.000Z');
    expect(caught(() => store.finishRun('nope', '2024-04-30T09:30:00.000Z')).code).toBe('RUN_NOT_FOUND');
  });

  it('stores a test with its segments and diffs, mapping diff indexes to segment ids', () => {
    const store = open();
    store.insertRun(fullRun);
    const testId = store.insertTest(testRecord({ seq: 7 }));

    expect(store.tests('run-1')).toEqual([{
      id: testId, runId: 'run-1', seq: 7, name: 'mss-clamp', port: 443, startedAt: '2024-05-01T10:00:01.000Z',
      finishedAt: '2024-05-01T10:00:02.500Z', verdict: 'interference', detail: testRecord().detail, target: null, targetName: null,
    }]);

    const stored = store.segments(testId);
    expect(stored.map(({ side, dir, atUs }) => ({ side, dir, atUs }))).toEqual(segments.map(({ side, dir, atUs }) => ({ side, dir, atUs })));
    stored.forEach((s, i) => {
      expect(s.testId).toBe(testId);
      expect(s.bytes).toBeInstanceOf(Uint8Array);
      expect(Buffer.isBuffer(s.bytes)).toBe(false);
      expect(Array.from(s.bytes)).toEqual(Array.from(segments[i].bytes));
    });

    const storedDiffs = store.diffs(testId);
    expect(storedDiffs).toHaveLength(diffs.length);
    storedDiffs.forEach((d, i) => {
      const record = diffs[i];
      expect(d).toEqual({
        id: d.id, testId, sentSegment: stored[record.sentSegment].id, receivedSegment: stored[record.receivedSegment].id,
        layer: record.layer, field: record.field, sent: record.sent, received: record.received, class: record.class,
        change: record.change ?? null,
      });
    });
    // The ids really are segments.id in the database, not the indexes we passed in.
    const joined = store.db.prepare(`SELECT s.bytes AS sentBytes, r.bytes AS receivedBytes FROM diffs d
      JOIN segments s ON s.id = d.sent_segment JOIN segments r ON r.id = d.received_segment WHERE d.field = 'seq'`).get() as { sentBytes: Buffer; receivedBytes: Buffer };
    expect(Array.from(joined.sentBytes)).toEqual(Array.from(segments[2].bytes));
    expect(Array.from(joined.receivedBytes)).toEqual(Array.from(segments[0].bytes));
  });

  it('keeps a null detail null and numbers tests in order when seq is omitted', () => {
    const store = open();
    store.insertRun(fullRun);
    for (const name of ['a', 'b', 'c']) store.insertTest(testRecord({ name, detail: null, segments: [], diffs: [] }));
    store.insertTest(testRecord({ name: 'first', seq: -1, detail: undefined, segments: [], diffs: [] }));

    const tests = store.tests('run-1');
    expect(tests.map((t) => [t.name, t.seq])).toEqual([['first', -1], ['a', 0], ['b', 1], ['c', 2]]);
    expect(tests.every((t) => t.detail === null)).toBe(true);
    expect(store.db.prepare('SELECT COUNT(*) AS n FROM tests WHERE detail IS NULL').get()).toEqual({ n: 4 });
  });

  it('exposes verdicts through the view, in run and test order', () => {
    const store = open();
    store.insertRun(fullRun);
    store.insertRun({ id: 'run-2', startedAt: '2024-05-02T10:00:00.000Z', toolVersion: '0.1.0' });
    store.insertTest(testRecord({ runId: 'run-2', name: 'ecn', port: 80, verdict: 'pass', detail: null, seq: 0, segments: [], diffs: [] }));
    store.insertTest(testRecord({ name: 'late', port: 8080, verdict: 'pass', detail: { n: 2 }, seq: 2, segments: [], diffs: [] }));
    store.insertTest(testRecord({ name: 'early', port: 443, verdict: 'interference', detail: ['x'], seq: 1, segments: [], diffs: [] }));

    const measurement = { kind: 'measurement', target: null, target_name: null };
    expect(store.db.prepare('SELECT * FROM verdicts').all()).toEqual([
      { run_id: 'run-1', label: 'home-dsl', test: 'early', port: 443, verdict: 'interference', detail: '["x"]', ...measurement },
      { run_id: 'run-1', label: 'home-dsl', test: 'late', port: 8080, verdict: 'pass', detail: '{"n":2}', ...measurement },
      { run_id: 'run-2', label: null, test: 'ecn', port: 80, verdict: 'pass', detail: null, ...measurement },
    ]);
    expect(store.verdicts('run-1')).toEqual([
      { runId: 'run-1', label: 'home-dsl', test: 'early', port: 443, verdict: 'interference', detail: ['x'] },
      { runId: 'run-1', label: 'home-dsl', test: 'late', port: 8080, verdict: 'pass', detail: { n: 2 } },
    ]);
    expect(store.verdicts().map((v) => v.test)).toEqual(['early', 'late', 'ecn']);
  });

  it('deleting a run cascades to its tests, segments and diffs', () => {
    const store = open();
    store.insertRun(fullRun);
    store.insertRun({ ...fullRun, id: 'run-keep' });
    store.insertTest(testRecord());
    store.insertTest(testRecord({ runId: 'run-keep' }));

    store.db.prepare('DELETE FROM runs WHERE id = ?').run('run-1');
    expect([count(store, 'tests'), count(store, 'segments'), count(store, 'diffs')]).toEqual([1, segments.length, diffs.length]);
    expect(store.tests('run-keep')).toHaveLength(1);
  });
});

describe('Store errors', () => {
  it('refuses a run id that already exists', () => {
    const store = open();
    store.insertRun(fullRun);
    const err = caught(() => store.insertRun({ ...fullRun, label: 'other' }));
    expect(err.code).toBe('RUN_EXISTS');
    expect(err.name).toBe('StoreError');
    expect(err.message).toContain('run-1');
    expect(store.run('run-1')?.label).toBe('home-dsl');
  });

  it('rolls the whole test back when a diff references a segment that does not exist', () => {
    const store = open();
    store.insertRun(fullRun);
    const bad = testRecord({ diffs: [...diffs, { ...diffs[0], receivedSegment: segments.length }] });
    const err = caught(() => store.insertTest(bad));
    expect(err.code).toBe('BAD_DIFF_REFERENCE');
    expect([count(store, 'tests'), count(store, 'segments'), count(store, 'diffs')]).toEqual([0, 0, 0]);
  });

  it('refuses a test for a run that was never inserted', () => {
    const store = open();
    expect(caught(() => store.insertTest(testRecord({ runId: 'ghost' }))).code).toBe('RUN_NOT_FOUND');
    expect(count(store, 'tests')).toBe(0);
  });

  it('refuses a file written with another schema version', () => {
    const path = join(dir, 'old.sqlite');
    open(path).close();
    const raw = new Database(path);
    raw.pragma('user_version = 99');
    raw.close();

    for (const opts of [{}, { readonly: true }]) {
      const err = caught(() => open(path, opts));
      expect(err.code).toBe('SCHEMA_VERSION_MISMATCH');
      expect(err.message).toContain(path);
      expect(err.message).toContain('schema version 99');
      expect(err.message).toContain(`reads schema version ${SCHEMA_VERSION}`);
    }
  });

  it('refuses an SQLite file that is not an mbprobe database', () => {
    const path = join(dir, 'other.sqlite');
    const raw = new Database(path);
    raw.exec('CREATE TABLE unrelated (x)');
    raw.close();
    expect(caught(() => open(path)).code).toBe('SCHEMA_VERSION_MISMATCH');
  });

  it('names the path when the file is not SQLite at all', () => {
    const path = join(dir, 'garbage.sqlite');
    writeFileSync(path, 'this is a packet capture, honest\n'.repeat(50));
    const err = caught(() => open(path));
    expect(err.code).toBe('NOT_A_DATABASE');
    expect(err.message).toContain(path);
  });

  it('opens readonly without creating, and reports a missing file clearly', () => {
    const missing = join(dir, 'nowhere', 'missing.sqlite');
    const err = caught(() => open(missing, { readonly: true }));
    expect(err.code).toBe('DATABASE_NOT_FOUND');
    expect(err.message).toContain(missing);
    expect(existsSync(join(dir, 'nowhere'))).toBe(false);

    const path = join(dir, 'db.sqlite');
    open(path).insertRun(fullRun);
    const reader = open(path, { readonly: true });
    expect(reader.run('run-1')).toEqual({ ...fullRun, kind: 'measurement' });
    expect(() => reader.insertRun({ ...fullRun, id: 'run-2' })).toThrow(/readonly/);
  });
});

describe('Store file handling', () => {
  it('creates missing parent directories and records the schema version', () => {
    const path = join(dir, 'results', 'deep', 'mbprobe.sqlite');
    const store = open(path, { createdBy: 'mbprobe-initiator 0.1.0' });
    expect(store.path).toBe(path);
    expect(existsSync(path)).toBe(true);
    expect(store.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(store.db.prepare('SELECT key, value FROM meta ORDER BY key').all()).toEqual([
      { key: 'created_by', value: 'mbprobe-initiator 0.1.0' },
      { key: 'schema_version', value: String(SCHEMA_VERSION) },
    ]);
    store.close();
    // Reopening an existing file leaves it as it was.
    expect(open(path).db.prepare('SELECT value FROM meta WHERE key = ?').get('created_by')).toEqual({ value: 'mbprobe-initiator 0.1.0' });
  });

  it('sets WAL, synchronous NORMAL, foreign keys and a busy timeout', () => {
    const store = open();
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.db.pragma('synchronous', { simple: true })).toBe(1);
    expect(store.db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(store.db.pragma('busy_timeout', { simple: true })).toBe(5000);
  });

  it('has the indexes the researchers queries rely on', () => {
    const store = open();
    const indexed = (table: string) => (store.db.prepare(`PRAGMA index_list(${table})`).all() as Array<{ name: string }>)
      .map((i) => (store.db.prepare(`PRAGMA index_info(${i.name})`).all() as Array<{ name: string }>).map((c) => c.name).join(','));
    expect(indexed('tests')).toEqual(expect.arrayContaining(['run_id', 'name,port']));
    expect(indexed('segments')).toContain('test_id');
    expect(indexed('diffs')).toContain('test_id');
  });

  it('initiator_runs: the runs that are measurements, in new files and in files written before the view existed', () => {
    const path = join(dir, 'db.sqlite');
    const store = open(path);
    store.insertRun(fullRun);
    store.insertRun({ ...fullRun, id: 'responder-own', hostInfo: { role: 'responder' } });
    const ids = (s: Store): unknown => s.db.prepare('SELECT id FROM initiator_runs ORDER BY id').all();
    expect(ids(store)).toEqual([{ id: 'run-1' }]);
    // A file of the same schema version without the view (as written before it was added).
    store.db.exec('DROP VIEW initiator_runs');
    store.close();
    const views = (s: Store): unknown => s.db.prepare("SELECT name FROM sqlite_master WHERE type = 'view' ORDER BY name").all();
    // Read-only: a TEMP view for this connection, the file untouched.
    const reader = open(path, { readonly: true });
    expect(ids(reader)).toEqual([{ id: 'run-1' }]);
    expect(views(reader)).toEqual([{ name: 'verdicts' }]);
    reader.close();
    // Opened for writing: added to the file.
    const writer = open(path);
    expect(views(writer)).toEqual([{ name: 'initiator_runs' }, { name: 'verdicts' }]);
    expect(ids(writer)).toEqual([{ id: 'run-1' }]);
  });

  it('works in memory', () => {
    const store = open(':memory:');
    store.insertRun(fullRun);
    expect(store.segments(store.insertTest(testRecord()))).toHaveLength(segments.length);
  });

  it('makes each committed test visible to another connection while the writer is still open', () => {
    const path = join(dir, 'db.sqlite');
    const writer = open(path);
    writer.insertRun(fullRun);
    const ids = ['a', 'b', 'c'].map((name) => writer.insertTest(testRecord({ name })));

    const reader = open(path, { readonly: true });
    expect(reader.tests('run-1').map((t) => t.id)).toEqual(ids);
    for (const id of ids) {
      expect(reader.segments(id)).toHaveLength(segments.length);
      expect(reader.diffs(id)).toHaveLength(diffs.length);
    }
  });

  it('keeps committed tests when the writing process is killed mid-transaction', () => {
    const path = join(dir, 'db.sqlite');
    const store = open(path);
    store.insertRun(fullRun);
    store.close();

    // Plain JS so it runs without a TypeScript loader; it writes the same rows insertTest would.
    const script = join(dir, 'killed-writer.cjs');
    writeFileSync(script, `
      const Database = require(process.argv[3]);
      const db = new Database(process.argv[2]);
      db.pragma('foreign_keys = ON');
      const insertTest = db.prepare("INSERT INTO tests (run_id, seq, name, port, started_at, finished_at, verdict, detail) VALUES ('run-1', ?, ?, 80, '2024-05-01T10:00:01Z', '2024-05-01T10:00:02Z', 'pass', NULL)");
      const insertSegment = db.prepare("INSERT INTO segments (test_id, side, dir, at_us, bytes) VALUES (?, 'initiator', 'sent', 1, ?)");
      const writeTest = (seq, name) => insertSegment.run(insertTest.run(seq, name).lastInsertRowid, Buffer.from([0x45, seq]));
      db.transaction(() => writeTest(0, 'committed'))();
      db.transaction(() => {
        writeTest(1, 'interrupted');
        process.kill(process.pid, 'SIGKILL');
      })();
    `);
    const betterSqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    const child = spawnSync(process.execPath, [script, path, betterSqlite], { encoding: 'utf8' });
    expect(child.stderr).toBe('');
    expect(child.signal).toBe('SIGKILL');

    const after = open(path);
    const tests = after.tests('run-1');
    expect(tests.map((t) => t.name)).toEqual(['committed']);
    expect(Array.from(after.segments(tests[0].id)[0].bytes)).toEqual([0x45, 0]);
    expect(count(after, 'segments')).toBe(1);
  });
});

describe('Store schema migration', () => {
  /** A file exactly as schema version 1 wrote it (before runs.kind and the tests' target columns), with one run and test. */
  function writeVersion1(path: string): void {
    const raw = new Database(path);
    raw.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE runs (id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT, label TEXT, responder TEXT, tool_version TEXT NOT NULL,
        host_info TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(host_info)), tags TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(tags)));
      CREATE TABLE tests (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, seq INTEGER NOT NULL, name TEXT NOT NULL,
        port INTEGER NOT NULL CHECK (port BETWEEN 0 AND 65535), started_at TEXT NOT NULL, finished_at TEXT NOT NULL, verdict TEXT NOT NULL,
        detail TEXT CHECK (detail IS NULL OR json_valid(detail)));
      CREATE TABLE segments (id INTEGER PRIMARY KEY, test_id INTEGER NOT NULL REFERENCES tests(id) ON DELETE CASCADE, side TEXT NOT NULL, dir TEXT NOT NULL,
        at_us INTEGER NOT NULL, bytes BLOB NOT NULL);
      CREATE TABLE diffs (id INTEGER PRIMARY KEY, test_id INTEGER NOT NULL REFERENCES tests(id) ON DELETE CASCADE, sent_segment INTEGER NOT NULL,
        received_segment INTEGER NOT NULL, layer TEXT NOT NULL, field TEXT NOT NULL, sent TEXT, received TEXT, class TEXT NOT NULL, change TEXT);
      CREATE VIEW verdicts AS SELECT r.id AS run_id, r.label AS label, t.name AS test, t.port AS port, t.verdict AS verdict, t.detail AS detail
        FROM tests t JOIN runs r ON r.id = t.run_id ORDER BY r.started_at, r.id, t.seq, t.id;
      INSERT INTO meta VALUES ('schema_version', '1'), ('created_by', 'mbprobe-initiator 0.1.0');
      INSERT INTO runs (id, started_at, finished_at, label, responder, tool_version) VALUES ('old', '2024-01-01T00:00:00Z', '2024-01-01T00:01:00Z', 'dsl', 'r.example', '0.1.0');
      INSERT INTO tests (run_id, seq, name, port, started_at, finished_at, verdict, detail) VALUES ('old', 0, 'syn-mss', 443, '2024-01-01T00:00:01Z', '2024-01-01T00:00:02Z', 'passed', NULL);
    `);
    raw.pragma('user_version = 1');
    raw.close();
  }

  it('read-only: sees a version 1 file with the current columns (defaults) and leaves the file as it was', () => {
    const path = join(dir, 'v1.sqlite');
    writeVersion1(path);
    const reader = open(path, { readonly: true });
    expect(reader.run('old')?.kind).toBe('measurement');
    expect(reader.tests('old').map((t) => [t.name, t.target, t.targetName])).toEqual([['syn-mss', null, null]]);
    expect(reader.db.prepare('SELECT test, kind, target FROM verdicts').all()).toEqual([{ test: 'syn-mss', kind: 'measurement', target: null }]);
    expect(reader.db.prepare('SELECT id, kind FROM initiator_runs').all()).toEqual([{ id: 'old', kind: 'measurement' }]);
    reader.close();
    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('user_version', { simple: true })).toBe(1);
    expect((raw.prepare('PRAGMA table_info(runs)').all() as Array<{ name: string }>).map((c) => c.name)).not.toContain('kind');
    raw.close();
  });

  it('for writing: migrates a version 1 file in place, keeping every row', () => {
    const path = join(dir, 'v1.sqlite');
    writeVersion1(path);
    const store = open(path);
    expect(store.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(store.db.prepare("SELECT key, value FROM meta WHERE key IN ('schema_version', 'migrated_from') ORDER BY key").all())
      .toEqual([{ key: 'migrated_from', value: '1' }, { key: 'schema_version', value: String(SCHEMA_VERSION) }]);
    expect(store.run('old')).toMatchObject({ label: 'dsl', kind: 'measurement' });
    expect(store.tests('old')).toMatchObject([{ name: 'syn-mss', verdict: 'passed', target: null, targetName: null }]);
    // The new columns work, with their check.
    store.insertRun({ id: 'scan', startedAt: '2024-02-01T00:00:00Z', toolVersion: '0.2.0', kind: 'server-scan' });
    store.insertTest(testRecord({ runId: 'scan', name: 'server-tfo', verdict: 'data-accepted', target: '192.0.2.7', targetName: 'example.org', segments: [], diffs: [] }));
    expect(store.db.prepare('SELECT test, kind, target, target_name FROM verdicts ORDER BY run_id').all()).toEqual([
      { test: 'syn-mss', kind: 'measurement', target: null, target_name: null },
      { test: 'server-tfo', kind: 'server-scan', target: '192.0.2.7', target_name: 'example.org' },
    ]);
    expect(() => store.db.prepare("UPDATE runs SET kind = 'other'").run()).toThrow(/CHECK/);
    store.close();
    // Opening again changes nothing.
    const again = open(path);
    expect(again.db.prepare("SELECT value FROM meta WHERE key = 'migrated_from'").get()).toEqual({ value: '1' });
    expect(again.runs().map((r) => [r.id, r.kind])).toEqual([['old', 'measurement'], ['scan', 'server-scan']]);
  });
});
