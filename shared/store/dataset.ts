/**
 * The Parquet dataset (`mbprobe-results export --format parquet`): its schema, a contract like the
 * database's (shared/store/schema.ts), and the reads that stream a database into it, month by month.
 *
 * A dataset is a directory: `dataset.json` (the manifest: format, version, every table's columns,
 * files and row counts), and per table one Parquet file per month of the runs' start
 * (`tests/month=2026-11/part-0.parquet`, hive-style, so DuckDB, BigQuery, Spark and pandas read the
 * month as a column). Every table has the columns of the database table of the same name, with the
 * same names and values; segments and diffs also carry their test's run_id, so a dataset's rows join
 * without going through tests and the month of any row is its run's.
 */
import type { Store } from '../store.js';

export const DATASET_FORMAT = 'mbprobe-dataset';

/**
 * Bump when a table or column changes meaning, is renamed or removed (adding a table is not a change:
 * readers look tables up by name). Readers refuse datasets of another version.
 *
 * 1: runs, tests, segments, diffs (and hops when the database has them), partitioned by month.
 */
export const DATASET_VERSION = 1;

export const MANIFEST_FILE = 'dataset.json';

/** The partition of runs whose started_at SQLite cannot read as a time. */
export const UNKNOWN_MONTH = 'unknown';

/**
 * Column types: `string` UTF-8 text (Parquet BYTE_ARRAY, STRING), `json` JSON text as stored, in a
 * string column (BYTE_ARRAY, STRING), `int32`/`int64` signed integers, `double`, `binary` raw bytes
 * (BYTE_ARRAY without annotation).
 */
export type ColumnType = 'string' | 'json' | 'int32' | 'int64' | 'double' | 'binary';

export interface DatasetColumn {
  name: string;
  type: ColumnType;
  nullable: boolean;
  description: string;
}

export interface DatasetTable {
  name: string;
  description: string;
  columns: DatasetColumn[];
}

const column = (name: string, type: ColumnType, nullable: boolean, description: string): DatasetColumn => ({ name, type, nullable, description });

/** The tables every dataset has, in the order they are written. */
export const DATASET_TABLES: readonly DatasetTable[] = [
  {
    name: 'runs',
    description: 'one row per run (the responder\'s own records only with --responder-records)',
    columns: [
      column('id', 'string', false, 'run id (a UUID for initiator runs)'),
      column('started_at', 'string', false, 'ISO 8601 time the run started, as stored (UTC, e.g. 2026-11-01T10:00:00.000Z); its month is the partition'),
      column('finished_at', 'string', true, 'ISO 8601 time the run finished; null when interrupted'),
      column('label', 'string', true, 'the volunteer\'s --label'),
      column('responder', 'string', true, 'the responder as the volunteer named it (--responder)'),
      column('tool_version', 'string', false, 'the mbprobe version that ran it'),
      column('host_info', 'json', false, 'JSON object: platform, kernel, source (the address it sent from), observedAddress (as the responder saw it), role ("responder" for the responder\'s own records), ...'),
      column('tags', 'json', false, 'JSON object of the volunteer\'s --tag KEY=VALUE'),
      column('kind', 'string', false, '"measurement" (against a responder) or "server-scan" (mbprobe-initiator scan)'),
    ],
  },
  {
    name: 'tests',
    description: 'one row per test result (a test on a port in a run)',
    columns: [
      column('id', 'int64', false, 'test id, unique within the dataset (the database\'s); segments.test_id and diffs.test_id refer to it'),
      column('run_id', 'string', false, 'runs.id'),
      column('seq', 'int64', false, 'order within the run'),
      column('name', 'string', false, 'test name (syn-mss, ...)'),
      column('port', 'int32', false, 'responder port (for scans, the server\'s port)'),
      column('started_at', 'string', false, 'ISO 8601'),
      column('finished_at', 'string', false, 'ISO 8601'),
      column('verdict', 'string', false, 'the verdict; the test\'s first verdict means no interference'),
      column('detail', 'json', true, 'JSON: the evidence behind the verdict'),
      column('target', 'string', true, 'for scans, the server\'s address'),
      column('target_name', 'string', true, 'for scans, the name the address was resolved from'),
    ],
  },
  {
    name: 'segments',
    description: 'every segment either end saw, as the whole IP packet',
    columns: [
      column('id', 'int64', false, 'segment id, unique within the dataset; diffs.sent_segment and diffs.received_segment refer to it'),
      column('run_id', 'string', false, 'runs.id of its test (not a column of the database table)'),
      column('test_id', 'int64', false, 'tests.id'),
      column('side', 'string', false, '"initiator" or "responder"'),
      column('dir', 'string', false, '"sent" or "received"'),
      column('at_us', 'int64', false, 'capture time, microseconds since the epoch, on that side\'s clock'),
      column('bytes', 'binary', false, 'the IP packet, byte for byte as captured or sent'),
    ],
  },
  {
    name: 'diffs',
    description: 'one row per field that differs between a sent segment and what it became',
    columns: [
      column('id', 'int64', false, 'diff id'),
      column('run_id', 'string', false, 'runs.id of its test (not a column of the database table)'),
      column('test_id', 'int64', false, 'tests.id'),
      column('sent_segment', 'int64', false, 'segments.id of the segment as sent'),
      column('received_segment', 'int64', false, 'segments.id of the segment as received'),
      column('layer', 'string', false, '"ip", "tcp", "option" or "payload"'),
      column('field', 'string', false, 'the field, e.g. tcp.seq, option.mss, http.header.via'),
      column('sent', 'string', true, 'its value as sent'),
      column('received', 'string', true, 'its value as received'),
      column('class', 'string', false, '"interference", "expected" (TTL, IP ID, valid checksums) or "isn-offset"'),
      column('change', 'string', true, 'what happened to it (added, removed, ...)'),
    ],
  },
];

/** The table of hop localisation (issue 10), exported with its own columns when a database has it. */
export const HOPS_TABLE = 'hops';

/** How a table of the dataset is read from the database, month by month (raw rows in column order, integers as BigInt). */
export interface ExportSource {
  table: DatasetTable;
  rows(month: string): IterableIterator<unknown[]>;
}

export interface ExportPlan {
  /** Months of the exported runs' start, in order, each with its number of runs. */
  months: Array<{ month: string; runs: number }>;
  /** The responder's own records (host_info.role = 'responder') not exported. */
  responderRunsLeftOut: number;
  sources: ExportSource[];
  /** Tables of the database that are not exported, with the reason. */
  notExported: Array<{ table: string; reason: string }>;
}

/** SQLite's month of a run's start; runs whose start it cannot read are in UNKNOWN_MONTH. */
const MONTH_OF_START = `COALESCE(strftime('%Y-%m', started_at), '${UNKNOWN_MONTH}')`;

/**
 * Prepares the export of `store` (opened read-only): the runs to export with their month go into a
 * TEMP table indexed by month (in a temporary file, not in memory: a database may be larger than
 * memory), so each month's rows are read through the indexes in run order without sorting.
 */
export function planExport(store: Store, options: { responderRecords?: boolean } = {}): ExportPlan {
  const db = store.db;
  db.pragma('temp_store = FILE');
  db.pragma('cache_size = -65536'); // 64 MiB of pages: the joins by run and test revisit index pages
  db.exec(`
DROP TABLE IF EXISTS temp.export_runs;
CREATE TEMP TABLE export_runs (month TEXT NOT NULL, started_at TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (month, started_at, id)) WITHOUT ROWID;`);
  db.prepare(`INSERT INTO temp.export_runs SELECT ${MONTH_OF_START}, started_at, id FROM ${options.responderRecords ? 'runs' : 'initiator_runs'}`).run();
  const months = db.prepare<[], { month: string; runs: number }>('SELECT month, COUNT(*) AS runs FROM temp.export_runs GROUP BY month ORDER BY month').all();
  const all = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM runs').get()!.n;
  const exported = months.reduce((sum, m) => sum + m.runs, 0);

  const reader = (sql: string) => {
    const statement = db.prepare<[string], unknown[]>(sql).raw(true).safeIntegers(true);
    return (month: string) => statement.iterate(month);
  };
  const columnsOf = (name: string) => DATASET_TABLES.find((t) => t.name === name)!.columns.map((c) => c.name);
  // Each month's runs in (started_at, id) order, then their tests, segments and diffs in id order:
  // the order of the indexes walked, so SQLite sorts nothing.
  const sources: ExportSource[] = [
    { table: DATASET_TABLES[0], rows: reader(`SELECT ${columnsOf('runs').map((c) => `r.${c}`).join(', ')}
      FROM temp.export_runs e JOIN runs r ON r.id = e.id WHERE e.month = ? ORDER BY e.started_at, e.id`) },
    { table: DATASET_TABLES[1], rows: reader(`SELECT ${columnsOf('tests').map((c) => `t.${c}`).join(', ')}
      FROM temp.export_runs e JOIN tests t ON t.run_id = e.id WHERE e.month = ? ORDER BY e.started_at, e.id, t.id`) },
    { table: DATASET_TABLES[2], rows: reader(`SELECT ${columnsOf('segments').map((c) => (c === 'run_id' ? 'e.id' : `s.${c}`)).join(', ')}
      FROM temp.export_runs e JOIN tests t ON t.run_id = e.id JOIN segments s ON s.test_id = t.id
      WHERE e.month = ? ORDER BY e.started_at, e.id, t.id, s.id`) },
    { table: DATASET_TABLES[3], rows: reader(`SELECT ${columnsOf('diffs').map((c) => (c === 'run_id' ? 'e.id' : `d.${c}`)).join(', ')}
      FROM temp.export_runs e JOIN tests t ON t.run_id = e.id JOIN diffs d ON d.test_id = t.id
      WHERE e.month = ? ORDER BY e.started_at, e.id, t.id, d.id`) },
  ];
  const notExported: ExportPlan['notExported'] = [];
  const hops = hopsSource(store, reader);
  if (typeof hops === 'string') notExported.push({ table: HOPS_TABLE, reason: hops });
  else if (hops) sources.push(hops);
  return { months, responderRunsLeftOut: all - exported, sources, notExported };
}

/** Drops what planExport made (the connection may go on being used). */
export function endExport(store: Store): void {
  store.db.exec('DROP TABLE IF EXISTS temp.export_runs');
}

/**
 * The hops table, when the database has one: its own columns (types from their declared SQLite types),
 * plus run_id when it has none, partitioned by its run's month through its run_id or its test_id.
 * Undefined without the table; a reason when it cannot be tied to a run.
 */
function hopsSource(store: Store, reader: (sql: string) => (month: string) => IterableIterator<unknown[]>): ExportSource | string | undefined {
  // A table of the file itself: an older file opened read-only may show a TEMP view of that name, with no rows and no types.
  const info = store.db.prepare<[], { name: string; type: string; notnull: number; pk: number }>(`SELECT name, type, "notnull", pk FROM pragma_table_info('${HOPS_TABLE}', 'main')`).all();
  if (info.length === 0) return undefined;
  const has = (name: string): boolean => info.some((c) => c.name === name);
  const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`;
  const columns = info.map((c) => column(c.name, typeOfDeclared(c.type), c.notnull === 0 && c.pk === 0, `hops.${c.name} (${c.type || 'no declared type'})`));
  const own = info.map((c) => `h.${quote(c.name)}`);
  let from: string;
  if (has('run_id')) {
    from = `temp.export_runs e JOIN ${HOPS_TABLE} h ON h.run_id = e.id WHERE e.month = ? ORDER BY e.started_at, e.id, h.rowid`;
  } else if (has('test_id')) {
    columns.splice(1, 0, column('run_id', 'string', false, 'runs.id of its test (not a column of the database table)'));
    own.splice(1, 0, 'e.id');
    from = `temp.export_runs e JOIN tests t ON t.run_id = e.id JOIN ${HOPS_TABLE} h ON h.test_id = t.id WHERE e.month = ? ORDER BY e.started_at, e.id, t.id, h.rowid`;
  } else {
    return 'it has neither run_id nor test_id, so its rows belong to no run and no month';
  }
  return { table: { name: HOPS_TABLE, description: 'hop localisation: the database\'s hops table as it is', columns }, rows: reader(`SELECT ${own.join(', ')} FROM ${from}`) };
}

/** A column type from an SQLite declared type, by SQLite's own affinity rules. */
function typeOfDeclared(declared: string): ColumnType {
  const t = declared.toUpperCase();
  if (t.includes('INT')) return 'int64';
  if (t.includes('CHAR') || t.includes('CLOB') || t.includes('TEXT')) return 'string';
  if (t === '' || t.includes('BLOB')) return 'binary';
  return 'double';
}

/** A file of a table: its path relative to the dataset directory, its month and rows. */
export interface DatasetFile {
  path: string;
  month: string;
  rows: number;
  bytes: number;
}

/** dataset.json: what a dataset holds, written last (a directory without it is not a dataset). */
export interface DatasetManifest {
  format: typeof DATASET_FORMAT;
  version: number;
  createdBy: string;
  exportedAt: string;
  /** The database it was exported from: its file name and schema version. */
  source: { database: string; schemaVersion: number };
  /** How rows are partitioned: by the month (UTC, YYYY-MM) of their run's started_at. */
  partitioning: string;
  responderRunsLeftOut: number;
  notExported: Array<{ table: string; reason: string }>;
  tables: Array<DatasetTable & { rows: number; files: DatasetFile[] }>;
}
