/**
 * What the HTML report shows, read from the database: the paper table, the compare data behind the
 * heatmap, the stored test behind each heatmap cell, and the evidence of the cells that get a
 * drill-down (the first `maxDrilldown` results in heatmap order, row by row, of the first `maxPaths`
 * paths).
 */
import type { RunRow, Store } from '../../shared/store.js';
import { runCounts, testsOfRunNewestFirst, type RunCounts } from '../../shared/store/queries.js';
import type { GroupBy } from '../grouping.js';
import { classifyVerdict, type VerdictClass } from '../verdicts.js';
import { computeCompare, type CompareData } from './compare.js';
import { readEvidence, type TestEvidence } from './evidence.js';
import { describePath, latestStoredResults, resultKey, runsByPath, type PathKind } from './paths.js';
import { computeTable, type TableData } from './table.js';
import { readHopTable, type HopTableData } from './hops.js';

export const DEFAULT_MAX_PATHS = 500;
export const DEFAULT_MAX_DRILLDOWN = 2000;

export interface HeatmapCell {
  verdict: string | null;
  cls: VerdictClass;
  /** The run of the stored test behind the cell, when found. */
  runId?: string;
  /** The drill-down section's id, when embedded. */
  anchor?: string;
  /** The stored test's evidence, when embedded; null when it is gone from the database. */
  evidence?: TestEvidence | null;
}

export interface HeatmapRow {
  path: string;
  kind: PathKind;
  id: string;
  cells: HeatmapCell[];
}

export interface ReportData {
  table: TableData;
  compare: CompareData;
  /** The first maxPaths paths of compare. */
  rows: HeatmapRow[];
  runs: RunCounts;
  /** Non-empty heatmap cells. */
  results: number;
  /** Cells with a drill-down. */
  embedded: number;
  /** Where on the path each behaviour is (table --by-hop), for the table's hop column; null when no result was localised. */
  hops: HopTableData | null;
}

export function readReport(store: Store, options: { groupBy?: GroupBy; maxPaths?: number; maxDrilldown?: number }): ReportData {
  const maxPaths = options.maxPaths ?? DEFAULT_MAX_PATHS;
  const maxDrilldown = options.maxDrilldown ?? DEFAULT_MAX_DRILLDOWN;
  const table = computeTable(store, { groupBy: options.groupBy });
  const compare = computeCompare(store);
  const runIdsOf = new Map<string, string[]>();
  for (const [key, runIds] of runsByPath(store)) {
    const { kind, name } = describePath(key);
    const k = `${kind}\u0000${name}`;
    if (!runIdsOf.has(k)) runIdsOf.set(k, runIds);
  }
  const testsOfRun = testsOfRunNewestFirst(store);
  const runs = new Map<string, RunRow | undefined>();
  const runOf = (id: string): RunRow | undefined => {
    if (!runs.has(id)) runs.set(id, store.run(id));
    return runs.get(id);
  };
  let results = 0;
  let embedded = 0;
  const rows = compare.paths.slice(0, maxPaths).map((p, pi): HeatmapRow => {
    const sources = latestStoredResults(testsOfRun, runIdsOf.get(`${p.kind}\u0000${p.path}`) ?? []);
    const cells = p.verdicts.map((verdict, ci): HeatmapCell => {
      const column = compare.columns[ci];
      const cell: HeatmapCell = { verdict, cls: classifyVerdict(column.test, verdict) };
      if (verdict === null) return cell;
      results++;
      const source = sources.get(resultKey(column.test, column.port));
      // Always the same verdict (the same choice, made the same way); a mismatch would only mean no link.
      if (source && source.verdict === verdict) {
        cell.runId = source.runId;
        if (embedded < maxDrilldown) {
          cell.anchor = `r-${pi}-${ci}`;
          embedded++;
          const run = runOf(source.runId);
          const test = store.test(source.id);
          cell.evidence = run && test ? readEvidence(store, run, test) : null;
        }
      }
      return cell;
    });
    return { path: p.path, kind: p.kind, id: `p-${pi}`, cells };
  });
  const hops = readHopTable(store);
  const localised = hops.rows.some((r) => r.cells[hops.positions.indexOf('not located')].n < r.paths);
  return { table, compare, rows, runs: runCounts(store), results, embedded, hops: localised ? hops : null };
}

export interface ReportSummary {
  /** Initiator runs (the ones that define paths). */
  runs: number;
  paths: number;
  heatmapPaths: number;
  tests: number;
  ports: number;
  /** Heatmap columns (test and port). */
  columns: number;
  /** Non-empty heatmap cells. */
  results: number;
  drilldowns: number;
}

export function summarizeReport(data: ReportData): ReportSummary {
  const { compare } = data;
  return {
    runs: data.runs.initiator, paths: compare.paths.length, heatmapPaths: data.rows.length,
    tests: new Set(compare.columns.map((c) => c.test)).size, ports: new Set(compare.columns.map((c) => c.port)).size,
    columns: compare.columns.length, results: data.results, drilldowns: data.embedded,
  };
}
