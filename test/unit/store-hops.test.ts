/**
 * Schema version 3's hops table (hop localisation): written with a test or added after its verdict,
 * read back byte for byte, checked; files of versions 1 and 2 migrated when opened for writing and read
 * through an empty hops view when opened read-only.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION, Store, type HopRecord } from '../../shared/store.js';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'mbprobe-hops-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const hop = (ttl: number, more: Partial<HopRecord> = {}): HopRecord => ({
  ttl, kind: 'time-exceeded', router: `10.0.${ttl}.1`, atUs: 1_700_000_000_000_000 + ttl, sent: Uint8Array.of(0x45, ttl), quoteLength: 2, quote: Uint8Array.of(0x45, 1),
  packet: Uint8Array.of(0x45, 0, 0, ttl), diff: [{ layer: 'ip', field: 'ttl', sent: String(ttl), received: '1', class: 'expected' }], notVisible: ['option'], ...more,
});

function withRun(store: Store): number {
  store.insertRun({ id: 'r', startedAt: '2026-01-01T00:00:00Z', toolVersion: '0.1.0' });
  return store.insertTest({ runId: 'r', name: 'syn-mss', port: 34343, startedAt: '2026-01-01T00:00:01Z', finishedAt: '2026-01-01T00:00:02Z', verdict: 'modified', detail: { option: 'mss' }, segments: [], diffs: [] });
}

describe('the hops table', () => {
  it('keeps the rows of a test, by TTL, bytes and JSON as written', () => {
    const store = Store.open(':memory:');
    const testId = withRun(store);
    const rows = [hop(2), hop(1), hop(3, { kind: 'no-answer', router: null, atUs: null, quoteLength: null, quote: null, packet: null, diff: [], notVisible: [] }), hop(4, { kind: 'responder', packet: null })];
    store.addLocation(testId, { status: 'changed', last: { ttl: 2 }, first: { ttl: 4 } }, rows);
    const read = store.hops(testId);
    expect(read.map((h) => [h.ttl, h.kind, h.router])).toEqual([[1, 'time-exceeded', '10.0.1.1'], [2, 'time-exceeded', '10.0.2.1'], [3, 'no-answer', null], [4, 'responder', '10.0.4.1']]);
    expect(read[0]).toMatchObject({ ...hop(1), testId, sent: Uint8Array.of(0x45, 1) });
    expect(read[2]).toMatchObject({ quote: null, packet: null, atUs: null });
    // The finding joins the detail the verdict was stored with.
    expect(store.test(testId)?.detail).toEqual({ option: 'mss', location: { status: 'changed', last: { ttl: 2 }, first: { ttl: 4 } } });
  });

  it('writes hops with a test (a submitted run), refuses what the schema forbids, and goes with its test', () => {
    const store = Store.open(':memory:');
    store.insertRun({ id: 'r', startedAt: '2026-01-01T00:00:00Z', toolVersion: '0.1.0' });
    const base = { runId: 'r', name: 'ip-ecn', port: 80, startedAt: '2026-01-01T00:00:01Z', finishedAt: '2026-01-01T00:00:02Z', verdict: 'bleached', detail: null, segments: [], diffs: [] };
    const id = store.insertTest({ ...base, hops: [hop(1), hop(2)] });
    expect(store.hops(id)).toHaveLength(2);
    expect(() => store.insertTest({ ...base, hops: [hop(0)] })).toThrow(/CHECK/);
    expect(() => store.insertTest({ ...base, hops: [hop(1, { kind: 'guess' as never })] })).toThrow(/CHECK/);
    expect(() => store.addLocation(999, {}, [])).toThrow(expect.objectContaining({ code: 'TEST_NOT_FOUND' }));
    store.deleteTest(id);
    expect(store.db.prepare('SELECT COUNT(*) AS n FROM hops').get()).toEqual({ n: 0 });
  });
});

describe('older files', () => {
  /** A file as schema version 2 wrote it: today's without hops. */
  function writeVersion2(path: string): void {
    const store = Store.open(path);
    withRun(store);
    store.close();
    const raw = new Database(path);
    raw.exec('DROP TABLE hops');
    raw.pragma('user_version = 2');
    raw.prepare("UPDATE meta SET value = '2' WHERE key = 'schema_version'").run();
    raw.close();
  }

  it('version 2 read-only: an empty hops view, the file untouched', () => {
    const path = join(dir, 'v2.sqlite');
    writeVersion2(path);
    const reader = Store.open(path, { readonly: true });
    const [test] = reader.tests('r');
    expect(reader.hops(test.id)).toEqual([]);
    expect(reader.db.prepare('SELECT COUNT(*) AS n FROM hops').get()).toEqual({ n: 0 });
    reader.close();
    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('user_version', { simple: true })).toBe(2);
    expect(raw.prepare("SELECT name FROM sqlite_master WHERE name = 'hops'").get()).toBeUndefined();
    raw.close();
  });

  it('version 2 for writing: migrated in place to version 3, every row kept, hops usable', () => {
    const path = join(dir, 'v2.sqlite');
    writeVersion2(path);
    const store = Store.open(path);
    expect(SCHEMA_VERSION).toBe(3);
    expect(store.db.pragma('user_version', { simple: true })).toBe(3);
    expect(store.db.prepare("SELECT key, value FROM meta WHERE key IN ('schema_version', 'migrated_from') ORDER BY key").all())
      .toEqual([{ key: 'migrated_from', value: '2' }, { key: 'schema_version', value: '3' }]);
    const [test] = store.tests('r');
    expect(test).toMatchObject({ name: 'syn-mss', verdict: 'modified' });
    store.addLocation(test.id, { status: 'dropped' }, [hop(1)]);
    expect(store.hops(test.id)).toHaveLength(1);
    store.close();
  });

  it('version 1 read-only reads an empty hops view too; for writing it is migrated through 2 to 3', () => {
    const path = join(dir, 'v1.sqlite');
    const raw = new Database(path);
    raw.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE runs (id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT, label TEXT, responder TEXT, tool_version TEXT NOT NULL,
        host_info TEXT NOT NULL DEFAULT '{}', tags TEXT NOT NULL DEFAULT '{}');
      CREATE TABLE tests (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, seq INTEGER NOT NULL, name TEXT NOT NULL,
        port INTEGER NOT NULL, started_at TEXT NOT NULL, finished_at TEXT NOT NULL, verdict TEXT NOT NULL, detail TEXT);
      CREATE TABLE segments (id INTEGER PRIMARY KEY, test_id INTEGER NOT NULL REFERENCES tests(id) ON DELETE CASCADE, side TEXT NOT NULL, dir TEXT NOT NULL, at_us INTEGER NOT NULL, bytes BLOB NOT NULL);
      CREATE TABLE diffs (id INTEGER PRIMARY KEY, test_id INTEGER NOT NULL REFERENCES tests(id) ON DELETE CASCADE, sent_segment INTEGER NOT NULL,
        received_segment INTEGER NOT NULL, layer TEXT NOT NULL, field TEXT NOT NULL, sent TEXT, received TEXT, class TEXT NOT NULL, change TEXT);
      CREATE VIEW verdicts AS SELECT r.id AS run_id, r.label AS label, t.name AS test, t.port AS port, t.verdict AS verdict, t.detail AS detail FROM tests t JOIN runs r ON r.id = t.run_id;
      INSERT INTO meta VALUES ('schema_version', '1');
      INSERT INTO runs (id, started_at, tool_version) VALUES ('old', '2024-01-01T00:00:00Z', '0.1.0');
      INSERT INTO tests (run_id, seq, name, port, started_at, finished_at, verdict) VALUES ('old', 0, 'nat', 80, 'x', 'y', 'none');
    `);
    raw.pragma('user_version = 1');
    raw.close();
    const reader = Store.open(path, { readonly: true });
    expect(reader.hops(reader.tests('old')[0].id)).toEqual([]);
    reader.close();
    const store = Store.open(path);
    expect(store.db.pragma('user_version', { simple: true })).toBe(3);
    expect(store.db.prepare("SELECT value FROM meta WHERE key = 'migrated_from'").get()).toEqual({ value: '1' });
    store.addLocation(store.tests('old')[0].id, { status: 'not-localisable', reason: 'nat' }, [hop(1)]);
    expect(store.hops(store.tests('old')[0].id)).toHaveLength(1);
    store.close();
  });
});
