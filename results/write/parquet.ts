/**
 * `mbprobe-results export --format parquet`: a database as a Parquet dataset (shared/store/dataset.ts
 * says what is in it), written with hyparquet-writer.
 *
 * Streamed: each month of runs is read table by table through one SQLite statement (rows as they are
 * stored, integers as BigInt), buffered up to one row group (ROW_GROUP_ROWS rows or ROW_GROUP_BYTES of
 * values, whichever comes first), encoded and appended to that month's file, so memory holds one row
 * group of one table whatever the size of the database. The dataset is written into a sibling
 * directory and renamed into place once its manifest is written: an interrupted export leaves no
 * directory that looks like a dataset.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileWriter, ParquetWriter, type SchemaElement } from 'hyparquet-writer';
import { TOOL_VERSION, UsageError } from '../../shared/cli.js';
import { SCHEMA_VERSION, StoreError, type Store } from '../../shared/store.js';
import {
  DATASET_FORMAT, DATASET_VERSION, endExport, MANIFEST_FILE, planExport,
  type ColumnType, type DatasetColumn, type DatasetFile, type DatasetManifest, type DatasetTable,
} from '../../shared/store/dataset.js';

/** Rows per row group at most: DuckDB reads row groups in parallel; 50,000 keeps the export near 400 MiB of memory (100,000: near 600). */
export const ROW_GROUP_ROWS = 50_000;
/** Bytes of strings and blobs per row group at most (segments carry whole packets). */
export const ROW_GROUP_BYTES = 16 * 1024 * 1024;

export interface ParquetExportOptions {
  /** Also export the responder's own records (host_info.role = 'responder': whole volunteer addresses). */
  responderRecords?: boolean;
  /** Called after each month with what was written so far. */
  onMonth?: (month: string, done: number, months: number) => void;
}

/** Writes `store` as a dataset into `outDir` (which must not exist, or be empty); returns its manifest. */
export function exportParquet(store: Store, outDir: string, options: ParquetExportOptions = {}): DatasetManifest {
  checkOutput(outDir);
  const partial = join(dirname(outDir), `.${basename(outDir)}.partial-${process.pid}`);
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  try {
    const plan = planExport(store, { responderRecords: options.responderRecords });
    const tables = plan.sources.map((s) => ({ ...s.table, rows: 0, files: [] as DatasetFile[] }));
    plan.months.forEach(({ month }, index) => {
      plan.sources.forEach((source, i) => {
        const path = `${source.table.name}/month=${month}/part-0.parquet`;
        const file = join(partial, path);
        mkdirSync(dirname(file), { recursive: true });
        const rows = writeTableFile(file, source.table, month, source.rows(month));
        tables[i].rows += rows;
        tables[i].files.push({ path, month, rows, bytes: statSync(file).size });
      });
      options.onMonth?.(month, index + 1, plan.months.length);
    });
    const manifest: DatasetManifest = {
      format: DATASET_FORMAT,
      version: DATASET_VERSION,
      createdBy: `mbprobe-results ${TOOL_VERSION}`,
      exportedAt: new Date().toISOString(),
      source: { database: basename(store.path), schemaVersion: SCHEMA_VERSION },
      partitioning: 'month=YYYY-MM directories: the month (UTC) of the started_at of the row\'s run; month=unknown for a start time that is not a time',
      responderRunsLeftOut: plan.responderRunsLeftOut,
      notExported: plan.notExported,
      tables,
    };
    writeFileSync(join(partial, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    if (existsSync(outDir)) rmdirSync(outDir); // checked empty above
    renameSync(partial, outDir);
    return manifest;
  } catch (error) {
    rmSync(partial, { recursive: true, force: true });
    throw error;
  } finally {
    endExport(store);
  }
}

function checkOutput(outDir: string): void {
  if (!existsSync(outDir)) return;
  if (!statSync(outDir).isDirectory()) throw new UsageError('OUT_EXISTS', `--out ${outDir} is a file: give a directory that does not exist yet`);
  if (readdirSync(outDir).length > 0) throw new UsageError('OUT_EXISTS', `--out ${outDir} is not empty: give a new directory (a dataset is written whole)`);
}

/**
 * JSON columns are strings holding the JSON text as stored: hyparquet-writer serialises the values of
 * a column annotated JSON itself (JSON.stringify), which would not keep the text byte for byte, and
 * DuckDB reads the JSON annotation only together with that converted type.
 */
const PARQUET_TYPES: Record<ColumnType, Omit<SchemaElement, 'name' | 'repetition_type'>> = {
  string: { type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' } },
  json: { type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' } },
  int32: { type: 'INT32' },
  int64: { type: 'INT64' },
  double: { type: 'DOUBLE' },
  binary: { type: 'BYTE_ARRAY' },
};

/** The Parquet schema of a table: one flat column per dataset column, REQUIRED unless nullable. */
export function parquetSchema(table: DatasetTable): SchemaElement[] {
  return [
    { name: 'root', num_children: table.columns.length },
    ...table.columns.map((c): SchemaElement => ({ name: c.name, ...PARQUET_TYPES[c.type], repetition_type: c.nullable ? 'OPTIONAL' : 'REQUIRED' })),
  ];
}

/** A stored value as the writer takes it for the column's type (and its size, for the row group's budget); throws on a value of another type. */
function converter(table: string, column: DatasetColumn): (value: unknown, month: string) => { value: unknown; bytes: number } {
  const wrong = (value: unknown, month: string): never => {
    const what = value === null ? 'null' : value instanceof Uint8Array ? 'a blob' : typeof value;
    throw new StoreError('UNEXPORTABLE_VALUE',
      `${table}.${column.name} holds ${what} in a row of month ${month}; the dataset's ${column.name} is ${column.nullable ? '' : 'a non-null '}${column.type}. ` +
      'The database holds what mbprobe never writes there: fix or remove that row, then export again.');
  };
  const nullable = (convert: (value: unknown, month: string) => { value: unknown; bytes: number }) =>
    (value: unknown, month: string) => (value === null ? (column.nullable ? { value: null, bytes: 0 } : wrong(value, month)) : convert(value, month));
  switch (column.type) {
    case 'string':
    case 'json':
      return nullable((v, m) => (typeof v === 'string' ? { value: v, bytes: v.length } : wrong(v, m)));
    case 'int32':
      return nullable((v, m) => (typeof v === 'bigint' && v >= -(2n ** 31n) && v < 2n ** 31n ? { value: Number(v), bytes: 4 } : wrong(v, m)));
    case 'int64':
      return nullable((v, m) => (typeof v === 'bigint' ? { value: v, bytes: 8 } : wrong(v, m)));
    case 'double':
      return nullable((v, m) => (typeof v === 'number' || typeof v === 'bigint' ? { value: Number(v), bytes: 8 } : wrong(v, m)));
    case 'binary':
      return nullable((v, m) => (v instanceof Uint8Array ? { value: v, bytes: v.byteLength } : wrong(v, m)));
  }
}

/** Writes one table's rows of one month as one Parquet file (a file with no row group when there are none); returns the number of rows. */
function writeTableFile(path: string, table: DatasetTable, month: string, rows: IterableIterator<unknown[]>): number {
  const writer = new ParquetWriter({
    writer: fileWriter(path),
    schema: parquetSchema(table),
    codec: 'SNAPPY',
    createdBy: `mbprobe-results ${TOOL_VERSION} (hyparquet-writer)`,
    kvMetadata: [{ key: 'mbprobe.dataset', value: JSON.stringify({ format: DATASET_FORMAT, version: DATASET_VERSION, table: table.name, month }) }],
  });
  const converters = table.columns.map((c) => converter(table.name, c));
  let columns: unknown[][] = table.columns.map(() => []);
  let buffered = 0;
  let bytes = 0;
  let total = 0;
  const flush = (): void => {
    if (buffered === 0) return;
    // write() returns a promise only for writers with an asynchronous flush; fileWriter's is synchronous.
    void writer.write({ columnData: table.columns.map((c, i) => ({ name: c.name, data: columns[i] as never })), rowGroupSize: buffered });
    columns = table.columns.map(() => []);
    buffered = 0;
    bytes = 0;
  };
  for (const row of rows) {
    for (let i = 0; i < converters.length; i++) {
      const converted = converters[i](row[i], month);
      columns[i].push(converted.value);
      bytes += converted.bytes;
    }
    buffered++;
    total++;
    if (buffered >= ROW_GROUP_ROWS || bytes >= ROW_GROUP_BYTES) flush();
  }
  flush();
  void writer.finish();
  return total;
}
