/**
 * The Parquet dataset (`export --format parquet`) and the DuckDB engine behind table and compare.
 *
 * The export is checked by an independent reader: DuckDB reads the files with its own Parquet reader
 * and SQL written here, and every row of every table, every blob byte for byte, must equal the SQLite
 * source. Then table and compare over the dataset must equal table and compare over the database,
 * cell for cell, on databases made of the lab's recordings, on generated ones and on the corner cases
 * of what counts as a path and which result counts.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { main as results } from '../../results/cli.js';
import { computeCompare } from '../../results/read/compare.js';
import { readCompare, readTable } from '../../results/read/results.js';
import { computeTable, type TableOptions } from '../../results/read/table.js';
import { DATASET_TABLES, DATASET_VERSION, MANIFEST_FILE, type DatasetManifest } from '../../shared/store/dataset.js';
import { Store } from '../../shared/store.js';
import { exportParquet, ROW_GROUP_ROWS } from '../../results/write/parquet.js';
import { LAB_PROFILES, labDatabase } from '../helpers/lab-database.js';
import { generateResultsDatabase } from '../helpers/synthetic.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mbprobe-dataset-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** mbprobe-results in-process: exit code, stdout, stderr. */
async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await results(argv, { stdout: (t) => void (out += t), stderr: (t) => void (err += t) });
  return { code, out, err };
}

/** An independent reader: DuckDB over the files as a researcher would open them (hive partitioning, globs). */
let duck: DuckDBInstance;
let reader: DuckDBConnection;
beforeAll(async () => {
  duck = await DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' });
  reader = await duck.connect();
});
afterAll(() => {
  reader.closeSync();
  duck.closeSync();
});
const duckRows = async (sql: string): Promise<unknown[][]> => (await reader.runAndReadAll(sql)).getRowsJS() as unknown[][];
const tableGlob = (dataset: string, table: string): string => `read_parquet('${join(dataset, table)}/*/*.parquet', hive_partitioning = true)`;

/** A value as both readers give it: integers as bigint, blobs as hex, JSON as its text. */
function normal(value: unknown): unknown {
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  return value;
}

/** Whether the database at `path` has a hops table (hop localisation's, in the schema from version 3). */
function hasHops(path: string): boolean {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'hops'").get() !== undefined;
  } finally {
    db.close();
  }
}

/** Every row of a dataset table as SQLite holds it, ordered by the table's first column and run. */
function sqliteRows(path: string, table: string, responderRecords: boolean): unknown[][] {
  const db = new Database(path, { readonly: true });
  try {
    const columns = DATASET_TABLES.find((t) => t.name === table)!.columns.map((c) => c.name);
    const runs = responderRecords ? 'SELECT id FROM runs' : "SELECT id FROM runs WHERE coalesce(json_extract(host_info, '$.role'), '') <> 'responder'";
    const month = "COALESCE(strftime('%Y-%m', r.started_at), 'unknown')";
    const sql = {
      runs: `SELECT ${columns.map((c) => `r.${c}`).join(', ')}, ${month} FROM runs r WHERE r.id IN (${runs}) ORDER BY r.id`,
      tests: `SELECT ${columns.map((c) => `t.${c}`).join(', ')}, ${month} FROM tests t JOIN runs r ON r.id = t.run_id WHERE r.id IN (${runs}) ORDER BY t.id`,
      segments: `SELECT ${columns.map((c) => (c === 'run_id' ? 'r.id' : `s.${c}`)).join(', ')}, ${month} FROM segments s JOIN tests t ON t.id = s.test_id JOIN runs r ON r.id = t.run_id WHERE r.id IN (${runs}) ORDER BY s.id`,
      diffs: `SELECT ${columns.map((c) => (c === 'run_id' ? 'r.id' : `d.${c}`)).join(', ')}, ${month} FROM diffs d JOIN tests t ON t.id = d.test_id JOIN runs r ON r.id = t.run_id WHERE r.id IN (${runs}) ORDER BY d.id`,
    }[table]!;
    return db.prepare(sql).raw(true).safeIntegers(true).all().map((row) => (row as unknown[]).map(normal));
  } finally {
    db.close();
  }
}

async function datasetRows(dataset: string, table: string): Promise<unknown[][]> {
  const columns = DATASET_TABLES.find((t) => t.name === table)!.columns.map((c) => c.name);
  const rows = await duckRows(`SELECT ${columns.map((c) => `"${c}"`).join(', ')}, month FROM ${tableGlob(dataset, table)} ORDER BY ${table === 'runs' ? 'id' : 'id'}`);
  return rows.map((row) => row.map((v) => normal(v instanceof Object && 'bytes' in (v as object) ? (v as { bytes: Uint8Array }).bytes : v)));
}

describe('export --format parquet', () => {
  it('writes every table so that DuckDB reads back the database row for row, every packet byte for byte', async () => {
    const db = join(dir, 'lab.sqlite');
    labDatabase(db);
    const out = join(dir, 'dataset');
    const exported = await cli('export', db, '--format', 'parquet', '--out', out);
    expect(exported.code, exported.err).toBe(0);
    expect(exported.out).toMatch(/^wrote a Parquet dataset \(version 1, 3 months, 2026-09 to 2026-11\) to /);
    expect(exported.out).toContain('left out: 1 responder record(s)');

    for (const table of ['runs', 'tests', 'segments', 'diffs']) {
      const expected = sqliteRows(db, table, false);
      const actual = await datasetRows(out, table);
      expect(actual.length, table).toBe(expected.length);
      expect(actual.length, table).toBeGreaterThan(0);
      expect(actual, table).toEqual(expected);
    }
    // The packets as a whole, hashed by each reader on its side.
    const hash = (rows: unknown[][]): string => rows.reduce((h, row) => h.update(String(row[6])), createHash('sha256')).digest('hex');
    const sqliteDb = new Database(db, { readonly: true });
    const bytes = sqliteDb.prepare('SELECT sum(length(bytes)) AS n FROM segments s JOIN tests t ON t.id = s.test_id WHERE t.run_id NOT LIKE \'responder%\'').get() as { n: number };
    sqliteDb.close();
    const [[duckBytes]] = await duckRows(`SELECT sum(octet_length(bytes)) FROM ${tableGlob(out, 'segments')}`);
    expect(Number(duckBytes)).toBe(bytes.n);
    expect(hash(await datasetRows(out, 'segments'))).toBe(hash(sqliteRows(db, 'segments', false)));
  });

  it('types every column as the schema says (strings, JSON, 32- and 64-bit integers, binary) and marks the file with the dataset version', async () => {
    const db = join(dir, 'lab.sqlite');
    labDatabase(db, LAB_PROFILES.slice(0, 2));
    const out = join(dir, 'dataset');
    expect((await cli('export', db, '--format', 'parquet', '--out', out)).code).toBe(0);
    const duckType = { string: 'VARCHAR', json: 'VARCHAR', int32: 'INTEGER', int64: 'BIGINT', double: 'DOUBLE', binary: 'BLOB' };
    for (const table of DATASET_TABLES) {
      const described = await duckRows(`DESCRIBE SELECT * FROM ${tableGlob(out, table.name)}`);
      expect(described.map((r) => [r[0], r[1]])).toEqual([...table.columns.map((c) => [c.name, duckType[c.type]]), ['month', 'VARCHAR']]);
      const file = (await duckRows(`SELECT file FROM glob('${join(out, table.name)}/*/*.parquet')`))[0][0] as string;
      const schema = await duckRows(`SELECT name, repetition_type FROM parquet_schema('${file}') WHERE name <> 'duckdb_schema' AND num_children IS NULL`);
      expect(schema).toEqual(table.columns.map((c) => [c.name, c.nullable ? 'OPTIONAL' : 'REQUIRED']));
      const [[meta]] = await duckRows(`SELECT decode(value) FROM parquet_kv_metadata('${file}') WHERE decode(key) = 'mbprobe.dataset'`);
      expect(JSON.parse(meta as string)).toMatchObject({ format: 'mbprobe-dataset', version: DATASET_VERSION, table: table.name });
    }
  });

  it('partitions by the month of the run\'s start and lists every file and row in the manifest', async () => {
    const db = join(dir, 'lab.sqlite');
    labDatabase(db);
    const out = join(dir, 'dataset');
    expect((await cli('export', '--db', db, '--format', 'parquet', '--out', out)).code).toBe(0);
    const manifest = JSON.parse(readFileSync(join(out, MANIFEST_FILE), 'utf8')) as DatasetManifest;
    expect(manifest).toMatchObject({ format: 'mbprobe-dataset', version: DATASET_VERSION, responderRunsLeftOut: 1, notExported: [] });
    expect(manifest.tables.map((t) => t.name)).toEqual(['runs', 'tests', 'segments', 'diffs', ...(hasHops(db) ? ['hops'] : [])]);
    expect(readdirSync(join(out, 'tests')).sort()).toEqual(['month=2026-09', 'month=2026-10', 'month=2026-11']);
    for (const table of manifest.tables) {
      const counted = await duckRows(`SELECT month, count(*) FROM ${tableGlob(out, table.name)} GROUP BY month ORDER BY month`);
      expect(counted.map(([m, n]) => [m, Number(n)]), table.name).toEqual(table.files.filter((f) => f.rows > 0).map((f) => [f.month, f.rows]));
      expect(table.rows).toBe(table.files.reduce((s, f) => s + f.rows, 0));
      // Each row is in the month of its run.
      const [[misplaced]] = await duckRows(`SELECT count(*) FROM ${tableGlob(out, table.name)} x JOIN ${tableGlob(out, 'runs')} r ON r.id = x.${table.name === 'runs' ? 'id' : 'run_id'} WHERE strftime(r.started_at::TIMESTAMP, '%Y-%m') <> x.month`);
      expect(Number(misplaced)).toBe(0);
    }
  });

  it('exports the responder\'s own records only with --responder-records', async () => {
    const db = join(dir, 'lab.sqlite');
    labDatabase(db, LAB_PROFILES.slice(0, 3));
    const out = join(dir, 'dataset');
    expect((await cli('export', db, '--format', 'parquet', '--out', out, '--responder-records')).code).toBe(0);
    for (const table of ['runs', 'tests', 'segments']) expect(await datasetRows(out, table), table).toEqual(sqliteRows(db, table, true));
    const [[records]] = await duckRows(`SELECT count(*) FROM ${tableGlob(out, 'runs')} WHERE host_info->>'role' = 'responder'`);
    expect(Number(records)).toBe(1);
  });

  it('writes row groups of at most ROW_GROUP_ROWS rows, so a month of any size is streamed', async () => {
    const db = join(dir, 'many.sqlite');
    const store = Store.open(db);
    store.insertRun({ id: 'big', startedAt: '2026-11-01T00:00:00.000Z', toolVersion: 't' });
    store.insertTest({ runId: 'big', name: 'syn-mss', port: 80, startedAt: 'x', finishedAt: 'x', verdict: 'passed', detail: null, diffs: [],
      segments: Array.from({ length: ROW_GROUP_ROWS * 2 + 5 }, (_, i) => ({ side: 'initiator' as const, dir: 'sent' as const, atUs: i, bytes: Uint8Array.of(0x45, i & 255) })) });
    store.close();
    const out = join(dir, 'dataset');
    expect((await cli('export', db, '--format', 'parquet', '--out', out)).code).toBe(0);
    const file = join(out, 'segments/month=2026-11/part-0.parquet');
    const groups = await duckRows(`SELECT row_group_id, any_value(row_group_num_rows) FROM parquet_metadata('${file}') GROUP BY ALL ORDER BY 1`);
    expect(groups.map(([, n]) => Number(n))).toEqual([ROW_GROUP_ROWS, ROW_GROUP_ROWS, 5]);
    const [[n, last]] = await duckRows(`SELECT count(*), max(at_us) FROM ${tableGlob(out, 'segments')}`);
    expect([Number(n), Number(last)]).toEqual([ROW_GROUP_ROWS * 2 + 5, ROW_GROUP_ROWS * 2 + 4]);
  });

  it('exports a hops table with its own columns and its run\'s month when the database has one', async () => {
    const db = join(dir, 'lab.sqlite');
    labDatabase(db, LAB_PROFILES.slice(0, 2));
    const raw = new Database(db);
    // Hop localisation's table (issue 10), or, in a schema without it, one of the same core columns:
    // rows tied to a test, with blobs and a nullable column.
    raw.exec('CREATE TABLE IF NOT EXISTS hops (id INTEGER PRIMARY KEY, test_id INTEGER NOT NULL REFERENCES tests(id), ttl INTEGER NOT NULL, kind TEXT NOT NULL, router TEXT, sent BLOB NOT NULL)');
    raw.exec("INSERT INTO hops (test_id, ttl, kind, router, sent) SELECT id, 3, 'time-exceeded', CASE WHEN id % 2 = 0 THEN '198.18.0.1' END, x'4500' FROM tests");
    const hops = (raw.prepare("SELECT count(*) AS n FROM hops h JOIN tests t ON t.id = h.test_id JOIN runs r ON r.id = t.run_id WHERE coalesce(json_extract(r.host_info, '$.role'), '') <> 'responder'").get() as { n: number }).n;
    const declared = raw.prepare("SELECT name, type FROM pragma_table_info('hops')").all() as Array<{ name: string; type: string }>;
    raw.close();
    const out = join(dir, 'dataset');
    const exported = await cli('export', db, '--format', 'parquet', '--out', out);
    expect(exported.code, exported.err).toBe(0);
    expect(exported.out).toMatch(new RegExp(`hops +${hops} rows`));
    const duckType = (t: string): string => (t.includes('INT') ? 'BIGINT' : t.includes('TEXT') ? 'VARCHAR' : t.includes('BLOB') ? 'BLOB' : 'DOUBLE');
    const columns = declared.map((c) => [c.name, duckType(c.type)]);
    columns.splice(1, 0, ['run_id', 'VARCHAR']);
    const described = await duckRows(`DESCRIBE SELECT * FROM ${tableGlob(out, 'hops')}`);
    expect(described.map((r) => [r[0], r[1]])).toEqual([...columns, ['month', 'VARCHAR']]);
    const [[n, wrongRun, nulls, sent]] = await duckRows(`SELECT count(*), count(*) FILTER (WHERE h.run_id <> t.run_id OR h.month <> t.month), count(*) FILTER (WHERE router IS NULL), min(hex(sent))
      FROM ${tableGlob(out, 'hops')} h JOIN ${tableGlob(out, 'tests')} t ON t.id = h.test_id`);
    expect([Number(n), Number(wrongRun), Number(nulls) > 0, sent]).toEqual([hops, 0, true, '4500']);
  });

  it('refuses what it cannot write, and leaves no directory behind', async () => {
    const db = join(dir, 'lab.sqlite');
    labDatabase(db, LAB_PROFILES.slice(0, 1));
    const busy = join(dir, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'keep.txt'), 'x');
    expect(await cli('export', db, '--format', 'parquet', '--out', busy)).toMatchObject({ code: 2, err: expect.stringMatching(/--out .*busy is not empty/) });
    expect(await cli('export', db, '--format', 'parquet')).toMatchObject({ code: 2, err: expect.stringMatching(/--format parquet writes a directory: give it with --out DIR/) });
    expect(await cli('export', db, '--format', 'parquet', '--out', join(dir, 'x'), '--run', 'abc')).toMatchObject({ code: 2, err: expect.stringMatching(/exports the whole database; --run/) });
    expect(await cli('export', db, '--format', 'jsonl', '--responder-records')).toMatchObject({ code: 2, err: expect.stringMatching(/--responder-records is for --format parquet/) });

    // A value of a type mbprobe never stores (a fraction where seq is an integer) stops the export: nothing is left.
    const raw = new Database(db);
    raw.exec("UPDATE tests SET seq = 1.5 WHERE id = (SELECT max(id) FROM tests WHERE run_id LIKE 'lab-%')");
    raw.close();
    const out = join(dir, 'dataset');
    const refused = await cli('export', db, '--format', 'parquet', '--out', out);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/tests\.seq holds number in a row of month 2026-\d\d; the dataset's seq is a non-null int64/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('partial'))).toEqual([]);
  });

  it('writes a dataset of a database without runs that readers take as empty', () => {
    const db = join(dir, 'empty.sqlite');
    Store.open(db).close();
    const store = Store.open(db, { readonly: true });
    const manifest = exportParquet(store, join(dir, 'dataset'));
    store.close();
    expect(manifest.tables.map((t) => [t.name, t.rows, t.files.length])).toEqual([['runs', 0, 0], ['tests', 0, 0], ['segments', 0, 0], ['diffs', 0, 0], ...(hasHops(db) ? [['hops', 0, 0]] : [])]);
  });
});

// ------------------------------------------------------------------------------------------------
// table and compare over datasets: the same data as over the database.

/** Exports `db` (every run the table reads) to a new dataset directory; returns it. */
function exported(db: string, name = 'dataset'): string {
  const out = join(dir, name);
  const store = Store.open(db, { readonly: true });
  try {
    exportParquet(store, out);
  } finally {
    store.close();
  }
  return out;
}

const TABLE_OPTIONS: Array<[string, TableOptions]> = [
  ['no grouping', {}],
  ['--group-by label', { groupBy: { kind: 'label' } }],
  ['--group-by tag:net', { groupBy: { kind: 'tag', key: 'net' } }],
  ['--group-by tag:profile', { groupBy: { kind: 'tag', key: 'profile' } }],
  ['--group-by tag:a/b~c', { groupBy: { kind: 'tag', key: 'a/b~c' } }],
  ['--by target', { by: 'target' }],
  ['--by target --group-by label', { by: 'target', groupBy: { kind: 'label' } }],
];

/** table and compare of `db` through SQLite and of its export through DuckDB, compared whole (every cell, every note). */
async function expectSameResults(db: string, datasets: string[] = [exported(db)]): Promise<void> {
  const store = Store.open(db, { readonly: true });
  try {
    for (const [name, options] of TABLE_OPTIONS) {
      expect(await readTable({ kind: 'datasets', dirs: datasets }, options), name).toEqual(computeTable(store, options));
    }
    for (const onlyDifferent of [false, true]) {
      expect(await readCompare({ kind: 'datasets', dirs: datasets }, { onlyDifferent }), `compare, onlyDifferent ${onlyDifferent}`).toEqual(computeCompare(store, { onlyDifferent }));
    }
  } finally {
    store.close();
  }
}

/**
 * What decides a path and the result that counts, at its edges: ties in started_at, two results for a
 * test in one run, empty labels and addresses, host_info values that are not strings, the responder's
 * records (and a role that is not one), tags that are missing, null, not strings or not an object, a
 * tag key with / and ~, runs without tests, a start time that is not a time and one with an offset
 * into another month, tests outside the catalogue, scans with and without servers.
 */
function cornerCases(path: string): void {
  const store = Store.open(path);
  const run = (id: string, startedAt: string, extra: { label?: string | null; hostInfo?: unknown; tags?: unknown; kind?: 'measurement' | 'server-scan' }, tests: Array<[string, number, string, string?]>): void => {
    store.insertRun({ id, startedAt, toolVersion: 't', label: extra.label, kind: extra.kind, hostInfo: {}, tags: {} });
    store.db.prepare('UPDATE runs SET host_info = ?, tags = ? WHERE id = ?').run(JSON.stringify(extra.hostInfo ?? {}), JSON.stringify(extra.tags ?? {}), id);
    for (const [name, port, verdict, target] of tests) {
      store.insertTest({ runId: id, name, port, startedAt, finishedAt: startedAt, verdict, detail: { id }, segments: [], diffs: [], target: target ?? null });
    }
  };
  // One labeled path: ties in started_at (then the higher id wins), two results for syn-mss:80 in one run (the later counts).
  run('tie-a', '2026-11-02T00:00:00.000Z', { label: 'home' }, [['syn-mss', 80, 'passed'], ['syn-baseline', 80, 'ok']]);
  run('tie-b', '2026-11-02T00:00:00.000Z', { label: 'home' }, [['syn-mss', 80, 'modified'], ['syn-mss', 80, 'removed'], ['syn-baseline', 80, 'inconclusive']]);
  run('older', '2026-11-01T00:00:00.000Z', { label: 'home', tags: { net: 'wifi' } }, [['syn-wscale', 443, 'inconclusive'], ['syn-sackperm', 443, 'passed']]);
  // Addresses: empty label, empty source, one of the two, non-strings, nothing at all.
  run('empty-label', '2026-11-03T00:00:00.000Z', { label: '', hostInfo: { source: '10.0.0.1', observedAddress: '' }, tags: { net: 'fixed' } }, [['syn-mss', 80, 'passed']]);
  run('observed-only', '2026-11-04T00:00:00.000Z', { hostInfo: { observedAddress: '203.0.113.5' }, tags: { net: 3 } }, [['syn-mss', 80, 'removed']]);
  run('bool-source', '2026-11-05T00:00:00.000Z', { hostInfo: { source: true, observedAddress: 7 }, tags: { net: true } }, [['syn-mss', 443, 'passed']]);
  run('null-source', '2026-11-06T00:00:00.000Z', { hostInfo: { source: null, observedAddress: null }, tags: { net: null, 'a/b~c': 'slashed' } }, [['syn-mss', 443, 'removed']]);
  run('no-address-1', '2026-11-07T00:00:00.000Z', { tags: ['net'] }, [['syn-mss', 443, 'inconclusive']]);
  run('no-address-2', '2026-11-07T00:00:00.000Z', { tags: 'net' }, [['my-probe', 9999, 'odd']]);
  run('role-number', '2026-11-08T00:00:00.000Z', { hostInfo: { role: 5, source: '10.0.0.9' } }, [['syn-mss', 80, 'passed']]);
  run('responder-own', '2026-11-08T00:00:00.000Z', { hostInfo: { role: 'responder' } }, [['syn-mss', 80, 'recorded']]);
  run('no-tests', '2026-11-09T00:00:00.000Z', { label: 'idle' }, []);
  run('not-a-time', 'yesterday', { label: 'clockless' }, [['syn-mss', 80, 'passed']]);
  run('offset', '2026-11-30T23:30:00.000-02:00', { label: 'west' }, [['syn-mss', 80, 'passed']]);
  // Scans: per server (counted by path and by target), and one whose tests name no server.
  run('scan-1', '2026-11-10T00:00:00.000Z', { label: 'campus', kind: 'server-scan', tags: { net: 'fixed' } },
    [['server-tfo', 443, 'data-accepted', '192.0.2.1'], ['server-tfo', 443, 'not-supported', '192.0.2.2'], ['server-tfo', 443, 'unreachable', '192.0.2.3'], ['server-ecn', 443, 'inconclusive', '192.0.2.3']]);
  run('scan-2', '2026-11-11T00:00:00.000Z', { label: 'home', kind: 'server-scan' }, [['server-tfo', 443, 'syn-data-broken', '192.0.2.1'], ['server-tfo', 443, 'not-supported', '192.0.2.2']]);
  run('scan-untargeted', '2026-11-12T00:00:00.000Z', { label: 'lab', kind: 'server-scan' }, [['server-tfo', 443, 'not-supported']]);
  // Test ids past 2^31 (a database that has seen billions of tests): the engine's ordering key no longer
  // fits a BIGINT, and the later of two results in one run must still count.
  run('big-ids', '2026-11-13T00:00:00.000Z', { label: 'big' }, []);
  const insert = store.db.prepare("INSERT INTO tests (id, run_id, seq, name, port, started_at, finished_at, verdict) VALUES (?, 'big-ids', ?, 'syn-mss', 80, 'x', 'x', ?)");
  insert.run(2 ** 31 + 7, 0, 'removed');
  insert.run(2 ** 33, 1, 'modified');
  insert.run(2 ** 31 + 9, 2, 'inconclusive');
  store.close();
}

describe('table and compare over a dataset (DuckDB) equal them over the database (SQLite)', () => {
  it('on the lab\'s recorded runs: every table and compare, cell for cell', async () => {
    const db = join(dir, 'lab.sqlite');
    labDatabase(db);
    await expectSameResults(db);
  });

  it('at the edges of what a path is and which result counts', async () => {
    const db = join(dir, 'corners.sqlite');
    cornerCases(db);
    await expectSameResults(db);
    // The corner cases are really there: a path of its own for runs without address, months for odd start times.
    const table = await readTable({ kind: 'datasets', dirs: [join(dir, 'dataset')] }, {});
    expect(table.notes.join(' ')).toMatch(/\d+ paths/);
    expect(readdirSync(join(dir, 'dataset', 'runs')).sort()).toEqual(['month=2026-11', 'month=2026-12', 'month=unknown']);
  });

  it.each([[1500, 300, 7], [4000, 200, 11]])('on generated databases (%i runs over %i paths, seed %i)', async (runs, paths, seed) => {
    const db = join(dir, 'generated.sqlite');
    generateResultsDatabase(db, runs, { paths, seed });
    await expectSameResults(db);
  });

  it('on an empty database', async () => {
    const db = join(dir, 'empty.sqlite');
    Store.open(db).close();
    await expectSameResults(db);
  });
});

describe('mbprobe-results table / compare DATASET...', () => {
  it('prints over a dataset what it prints over the database, in every format', async () => {
    const db = join(dir, 'lab.sqlite');
    labDatabase(db);
    const dataset = exported(db);
    for (const format of ['markdown', 'csv', 'latex', 'json']) {
      for (const argv of [['table', '--format', format], ['table', '--format', format, '--group-by', 'tag:net'], ['compare', '--format', format], ['compare', '--format', format, '--only-different']]) {
        const fromDb = await cli(argv[0], db, ...argv.slice(1));
        const fromDataset = await cli(argv[0], dataset, ...argv.slice(1));
        expect(fromDataset.code, fromDataset.err).toBe(0);
        expect(fromDataset.out, argv.join(' ')).toBe(fromDb.out);
      }
    }
    expect((await cli('table', '--db', dataset)).out).toBe((await cli('table', db)).out);
  });

  it('merges several responders\' databases, exports the merge, and gives its table; or reads their datasets as one', async () => {
    // Three responders, each with the runs of some paths; a volunteer's own database holds one of those runs again.
    const thirds = [0, 1, 2].map((k) => LAB_PROFILES.filter((_, i) => i % 3 === k));
    const responders = thirds.map((profiles, k) => {
      const db = join(dir, `responder-${k}.sqlite`);
      labDatabase(db, profiles);
      return db;
    });
    const volunteer = join(dir, 'volunteer.sqlite');
    labDatabase(volunteer, thirds[1].slice(0, 1), false);
    const merged = join(dir, 'campaign.sqlite');
    const merge = await cli('merge', merged, ...responders, volunteer);
    expect(merge.code, merge.err + merge.out).toBe(0);

    const campaign = exported(merged, 'campaign');
    const [fromMerged, fromCampaign] = [await cli('table', merged, '--format', 'json'), await cli('table', campaign, '--format', 'json')];
    expect(fromCampaign.out).toBe(fromMerged.out);
    expect((JSON.parse(fromMerged.out) as { paths: number }).paths).toBeGreaterThan(10);

    // Each responder exported on its own: the three datasets read together give the merged table.
    const datasets = responders.map((db, k) => exported(db, `responder-${k}`));
    expect((await cli('table', ...datasets, '--format', 'json')).out).toBe(fromMerged.out);
    expect((await cli('compare', ...datasets, '--format', 'csv')).out).toBe((await cli('compare', merged, '--format', 'csv')).out);
    await expectSameResults(merged, datasets);

    // The volunteer's run is also in responder-1's dataset: read together, it would count twice.
    const overlapping = await cli('table', datasets[1], exported(volunteer, 'volunteer'));
    expect(overlapping.code).toBe(2);
    expect(overlapping.err).toMatch(/run lab-\S+ is in more than one dataset \(.*responder-1, .*volunteer\): merge their databases/);
  });

  it.each([
    [['table', 'DATASET', 'DB'], /lab.sqlite is a database: give one database, or one or more datasets .* merge them first/],
    [['table', 'DB', 'DB2'], /is a database: give one database, or one or more datasets/],
    [['compare', 'DATASET', '/nonexistent/x'], /no mbprobe database or dataset at \/nonexistent\/x: check the path/],
    [['table', 'EMPTY_DIR'], /is a directory without dataset\.json: not an mbprobe dataset/],
    [['table', 'OLD_DATASET'], /is an mbprobe dataset of version 0; this build reads version 1\. Export the database again/],
    [['table', 'DATASET', 'DATASET2', '--db', 'DB'], /and --db .* given: give the inputs as arguments, or one with --db/],
  ])('%j is a usage error (exit 2) that says what to do', async (argv, message) => {
    const db = join(dir, 'lab.sqlite');
    labDatabase(db, LAB_PROFILES.slice(0, 1));
    const dataset = exported(db);
    const empty = join(dir, 'empty-dir');
    mkdirSync(empty);
    const old = join(dir, 'old');
    mkdirSync(old);
    writeFileSync(join(old, MANIFEST_FILE), JSON.stringify({ ...JSON.parse(readFileSync(join(dataset, MANIFEST_FILE), 'utf8')), version: 0 }));
    const names: Record<string, string> = { DATASET: dataset, DATASET2: dataset, DB: db, DB2: db, EMPTY_DIR: empty, OLD_DATASET: old };
    const result = await cli(...argv.map((a) => names[a] ?? a));
    expect(result.code).toBe(2);
    expect(result.err).toMatch(message);
  });
});

describe('DuckDB as installed from npm', () => {
  it('reads Parquet and JSON with what its binary has built in: no extension is downloaded or loaded from disk', async () => {
    const home = mkdtempSync(join(tmpdir(), 'mbprobe-duckdb-home-'));
    const instance = await DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false', autoload_known_extensions: 'false', home_directory: home });
    const connection = await instance.connect();
    try {
      const extensions = (await connection.runAndReadAll("SELECT extension_name, install_mode FROM duckdb_extensions() WHERE extension_name IN ('parquet', 'json')")).getRowsJS();
      expect(extensions.sort()).toEqual([['json', 'STATICALLY_LINKED'], ['parquet', 'STATICALLY_LINKED']]);
      const db = join(dir, 'lab.sqlite');
      labDatabase(db, LAB_PROFILES.slice(0, 1));
      const dataset = exported(db);
      const [[runs, source]] = await (await connection.runAndReadAll(`SELECT count(*), max(json_extract_string(host_info, '$.source')) FROM ${tableGlob(dataset, 'runs')}`)).getRowsJS();
      expect([Number(runs), source]).toEqual([2, '198.18.0.2']);
      expect(readdirSync(home)).toEqual([]); // nothing installed under DuckDB's home (~/.duckdb/extensions)
    } finally {
      connection.closeSync();
      instance.closeSync();
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('README: the paper table as one SQL query', () => {
  it('gives, run by DuckDB over the exported files, the counts table gives', async () => {
    const db = join(dir, 'lab.sqlite');
    labDatabase(db);
    const dataset = exported(db, 'campaign-dataset');
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const sqlBlocks = [...readme.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]);
    const setup = sqlBlocks.find((b) => b.includes('CREATE VIEW runs AS'))!;
    const query = readme.slice(readme.indexOf('<!-- paper-table-sql')).match(/```sql\n([\s\S]*?)```/)![1];
    const connection = await duck.connect();
    try {
      for (const statement of setup.replaceAll('campaign-dataset', dataset).split(';').filter((t) => t.trim() !== '')) await connection.run(statement);
      const rows = (await connection.runAndReadAll(query)).getRowObjectsJS() as Array<{ test: string; port: number; verdict: string; n: bigint; paths: bigint; percent: number }>;
      const store = Store.open(db, { readonly: true });
      const table = computeTable(store, {});
      store.close();
      const expected = table.rows.flatMap((r) => r.cells.map((c, i) => ({ test: r.test, port: table.columns[i].port, verdict: r.verdict, ...c })).filter((c) => c.n > 0));
      const key = (r: { test: string; port: number; verdict: string }): string => `${r.test} ${r.port} ${r.verdict}`;
      expect(rows.map((r) => `${key(r)} ${r.n}/${r.paths}`).sort()).toEqual(expected.map((c) => `${key(c)} ${c.n}/${c.N}`).sort());
      for (const r of rows) expect(r.percent).toBeCloseTo(expected.find((c) => key(c) === key(r))!.percent!, 1);
      expect(rows.length).toBeGreaterThan(50);
    } finally {
      connection.closeSync();
    }
  });
});
