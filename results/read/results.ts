/**
 * Where table and compare read from: one mbprobe database, through SQLite and the store's queries, or
 * one or more Parquet datasets (`export --format parquet`), through DuckDB (results/read/dataset.ts).
 * The one place that knows which engine runs: both give the same counts and results that count, and
 * the same table and compare are built from them (tableFromCounts, compareFromResults), so the data
 * is identical whichever engine read it.
 */
import { existsSync } from 'node:fs';
import { UsageError } from '../../shared/cli.js';
import { compareFromResults, computeCompare, type CompareData, type CompareOptions } from './compare.js';
import { openDatabase } from './database.js';
import { DatasetReader, isDataset } from './dataset.js';
import { computeTable, tableFromCounts, type TableData, type TableOptions } from './table.js';

/** A database file, or dataset directories read as one. */
export type ResultsInput = { kind: 'database'; path: string } | { kind: 'datasets'; dirs: string[] };

/** What `paths` name: one database file, or one or more dataset directories; UsageError for anything else. */
export function resultsInput(paths: readonly string[]): ResultsInput {
  const datasets = paths.filter(isDataset);
  if (datasets.length === 0 && paths.length === 1) return { kind: 'database', path: paths[0] };
  if (datasets.length === paths.length && paths.length > 0) return { kind: 'datasets', dirs: [...new Set(paths)] };
  const file = paths.find((p) => !isDataset(p))!;
  if (!existsSync(file)) throw new UsageError('DATASET_NOT_FOUND', `no mbprobe database or dataset at ${file}: check the path`);
  throw new UsageError('ONE_DATABASE',
    `${file} is a database: give one database, or one or more datasets (directories written by export --format parquet); ` +
    'to read several databases as one, merge them first (mbprobe-results merge OUT DB...)');
}

async function withDatasets<T>(dirs: readonly string[], read: (reader: DatasetReader) => Promise<T>): Promise<T> {
  const reader = await DatasetReader.open(dirs);
  try {
    return await read(reader);
  } finally {
    reader.close();
  }
}

function withDatabase<T>(path: string, read: (store: ReturnType<typeof openDatabase>) => T): T {
  const store = openDatabase(path);
  try {
    return read(store);
  } finally {
    store.close();
  }
}

/** The paper table (read/table.ts) of a database or of datasets. */
export async function readTable(input: ResultsInput, options: TableOptions = {}): Promise<TableData> {
  if (input.kind === 'database') return withDatabase(input.path, (store) => computeTable(store, options));
  const counts = await withDatasets(input.dirs, (reader) => reader.latestCounts(options.groupBy, options.by === 'target' ? 'target' : 'path'));
  return tableFromCounts(counts, options);
}

/** compare's data (read/compare.ts) of a database or of datasets. */
export async function readCompare(input: ResultsInput, options: CompareOptions = {}): Promise<CompareData> {
  if (input.kind === 'database') return withDatabase(input.path, (store) => computeCompare(store, options));
  return compareFromResults(await withDatasets(input.dirs, (reader) => reader.latestPerUnit('run')), options);
}
