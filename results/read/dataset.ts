/**
 * Parquet datasets (`export --format parquet`) read with DuckDB: the second engine behind table and
 * compare (results/read/results.ts picks one). Every query is a named query of
 * shared/store/dataset-queries.ts; this module opens the datasets, checks what they are, runs the
 * queries and turns their rows into the same data the SQLite path gives.
 *
 * DuckDB runs in memory, with a temporary directory of its own to spill to (a dataset may be larger
 * than memory), and never loads or installs an extension: Parquet and JSON are built into the npm
 * package's binary, and this machine reaches no extension repository anyway.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { UsageError } from '../../shared/cli.js';
import { DATASET_FORMAT, DATASET_VERSION, MANIFEST_FILE, type DatasetManifest } from '../../shared/store/dataset.js';
import {
  DATASET_MACROS, duplicateRunsSql, keyBoundsSql, latestCountsSql, latestPerUnitSql, scanRunsSql, type DatasetQueryFiles, type LatestOptions, type UnitMode,
} from '../../shared/store/dataset-queries.js';
import type { GroupBy } from '../grouping.js';
import type { PathResult } from './compare.js';
import type { LatestCounts } from './table.js';

/** Whether `path` is a dataset directory (it holds a manifest); a database is a file. */
export function isDataset(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

/** A dataset's manifest, checked: a directory without one, or of another format or version, is a usage error naming it. */
export function readManifest(dir: string): DatasetManifest {
  const path = join(dir, MANIFEST_FILE);
  if (!existsSync(path)) {
    throw new UsageError('NOT_A_DATASET', `${dir} is a directory without ${MANIFEST_FILE}: not an mbprobe dataset (or an export that did not finish); write one with mbprobe-results export --format parquet --out ${dir}`);
  }
  let manifest: DatasetManifest;
  try {
    manifest = JSON.parse(readFileSync(path, 'utf8')) as DatasetManifest;
  } catch (error) {
    throw new UsageError('NOT_A_DATASET', `${path} is not JSON (${(error as Error).message}): not an mbprobe dataset manifest`);
  }
  if (manifest.format !== DATASET_FORMAT) throw new UsageError('NOT_A_DATASET', `${path} is not an mbprobe dataset manifest (format ${JSON.stringify(manifest.format)})`);
  if (manifest.version !== DATASET_VERSION) {
    throw new UsageError('DATASET_VERSION_MISMATCH', `${dir} is an mbprobe dataset of version ${manifest.version}; this build reads version ${DATASET_VERSION}. Export the database again with this build.`);
  }
  return manifest;
}

/** One dataset, or several read as one (their runs must not overlap), queried with DuckDB. */
export class DatasetReader {
  private constructor(
    readonly dirs: readonly string[],
    private readonly files: DatasetQueryFiles & Record<string, readonly string[]>,
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
    private readonly spill: string,
  ) {}

  /** Opens the datasets at `dirs`: manifests checked, and runs found in more than one refused. */
  static async open(dirs: readonly string[]): Promise<DatasetReader> {
    const manifests = dirs.map(readManifest);
    const files: Record<string, string[]> = {};
    manifests.forEach((manifest, i) => {
      for (const table of manifest.tables) (files[table.name] ??= []).push(...table.files.map((f) => join(dirs[i], f.path)));
    });
    files.runs ??= [];
    files.tests ??= [];
    const spill = mkdtempSync(join(tmpdir(), 'mbprobe-duckdb-'));
    let instance: DuckDBInstance | undefined;
    try {
      // Loaded here, not with the module: the engine's binary takes a few hundred milliseconds to load,
      // which every other command (and table over a database) need not pay.
      const { DuckDBInstance } = await import('@duckdb/node-api');
      instance = await DuckDBInstance.create(':memory:', {
        autoinstall_known_extensions: 'false',
        autoload_known_extensions: 'false',
        allow_community_extensions: 'false',
        temp_directory: spill,
        preserve_insertion_order: 'false', // every result is sorted in JavaScript; unordered is faster
      });
      const connection = await instance.connect();
      await connection.run(DATASET_MACROS);
      const reader = new DatasetReader(dirs, files as DatasetQueryFiles & Record<string, string[]>, instance, connection, spill);
      if (dirs.length > 1) await reader.refuseOverlap();
      return reader;
    } catch (error) {
      instance?.closeSync();
      rmSync(spill, { recursive: true, force: true });
      throw error;
    }
  }

  private async rows(sql: string): Promise<unknown[][]> {
    return (await this.connection.runAndReadAll(sql)).getRowsJS() as unknown[][];
  }

  private get empty(): boolean {
    return this.files.runs.length === 0;
  }

  /** Several datasets count a run once only if it is in one of them: the same run in two would be counted twice. */
  private async refuseOverlap(): Promise<void> {
    if (this.empty) return;
    const duplicates = await this.rows(duplicateRunsSql(this.files, 3));
    if (duplicates.length === 0) return;
    const [id, files] = duplicates[0] as [string, string[]];
    const owners = this.dirs.filter((d) => files.some((f) => f.startsWith(join(d, '/'))));
    throw new UsageError('DATASETS_OVERLAP',
      `run ${id}${duplicates.length > 1 ? ' (and others)' : ''} is in more than one dataset (${owners.join(', ')}): ` +
      'merge their databases (mbprobe-results merge OUT DB...), which keeps each run once, and export the merged file');
  }

  /** What the latest-result queries need to know of the data: whether there are scans, and whether the ordering key fits a BIGINT. */
  private async latestOptions(mode: UnitMode): Promise<Omit<LatestOptions, 'group'>> {
    const [[scans]] = await this.rows(scanRunsSql(this.files));
    const [[min, max, runs]] = await this.rows(keyBoundsSql(this.files));
    const fits = (n: unknown): boolean => n === null || (BigInt(n as bigint) >= 0n && BigInt(n as bigint) < 2n ** 31n);
    return { mode, hasScans: Number(scans) > 0, narrowKey: fits(min) && fits(max) && fits(runs) };
  }

  /** The table's counts (latestCountsSql), units as `mode` says. */
  async latestCounts(groupBy: GroupBy | undefined, mode: UnitMode): Promise<LatestCounts> {
    const result: LatestCounts = { units: 0, scanPaths: false, groups: new Map(), counts: [] };
    if (this.empty) return result;
    const options = await this.latestOptions(mode);
    if (mode === 'target' && !options.hasScans) return result; // servers are what scans probed: none
    const rows = await this.rows(latestCountsSql(this.files, { ...options, group: groupBy }));
    for (const [kind, grp, name, port, verdict, n] of rows as Array<[string, string | null, string, number, string, bigint]>) {
      if (kind === 'total') result.units = Number(n);
      else if (kind === 'scan paths') result.scanPaths = mode === 'path' && Number(n) > 0;
      else if (kind === 'group') result.groups.set(grp, Number(n));
      else result.counts.push({ grp, n: Number(n), name, port, verdict });
    }
    return result;
  }

  /** The result that counts per unit (its key as results/read/paths.ts spells it), test and port. */
  async latestPerUnit(mode: UnitMode): Promise<PathResult[]> {
    if (this.empty) return [];
    const options = await this.latestOptions(mode);
    if (mode === 'target' && !options.hasScans) return [];
    const rows = await this.rows(latestPerUnitSql(this.files, options));
    return (rows as Array<[string, string, number, string]>).map(([path, name, port, verdict]) => ({ path, name, port, verdict }));
  }

  close(): void {
    this.connection.closeSync();
    this.instance.closeSync();
    rmSync(this.spill, { recursive: true, force: true });
  }
}
