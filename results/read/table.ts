/**
 * The paper table's data: one row per behaviour (a test and one of its verdicts), one column per
 * responder port; each cell counts paths: n paths whose result for the test on that port is this
 * verdict, of the N paths with a conclusive result for it there.
 *
 * What a path is and which of its results counts (its latest conclusive one) is in read/paths.ts.
 * Inconclusive results are not in N: the test's `inconclusive` row gives the number of paths whose
 * only results for it were inconclusive. Rows follow the catalogue, then each test's verdict order
 * (`allVerdicts`); only verdicts some path gave are shown.
 *
 * `groupBy` (label or tag:KEY) gives one block of port columns per value of the run attribute, side by
 * side in the same table (N is then per group and port); runs without the attribute form the group
 * `(none)`, last. A path measured under several values counts in each of their groups.
 *
 * The counting reads one row per run (its results aggregated by SQL, see visitLatestResults), never
 * one row per test.
 */
import { plural } from '../../shared/cli.js';
import type { Store } from '../../shared/store.js';
import { codePointCompare, compareTests, compareVerdicts, INCONCLUSIVE } from '../verdicts.js';
import { describeGroupBy, formatGroupBy, NO_GROUP, type GroupBy } from '../grouping.js';
import { isScanPath, parseResultLine, visitLatestResults, type CountedBy } from './paths.js';

export interface TableOptions {
  groupBy?: GroupBy;
  /** What n and N count: paths (default; a scan's path to each server is one), or the servers scans probed. */
  by?: CountedBy;
}

export interface TableCell {
  /** Paths with this verdict (in an inconclusive row: paths with only inconclusive results). */
  n: number;
  /** Paths with a conclusive result for the test on this column's port (in an inconclusive row: paths that ran it at all). */
  N: number;
  /** 100 n / N, one decimal; null when N is 0. */
  percent: number | null;
}

export interface TableRow {
  test: string;
  verdict: string;
  inconclusive: boolean;
  /** One per column. */
  cells: TableCell[];
}

export interface TableColumn {
  /** The group's value; null without --group-by, and for runs without the attribute. */
  group: string | null;
  port: number;
}

export interface TableData {
  /** 'label', 'tag:KEY', or null. */
  groupBy: string | null;
  /** Distinct paths with at least one result. */
  paths: number;
  /** The column blocks in order, with their number of paths. */
  groups: Array<{ value: string | null; paths: number }>;
  columns: TableColumn[];
  rows: TableRow[];
  notes: string[];
}

/**
 * What the table counts, from either engine (results/read/results.ts): this module's SQLite counting
 * (countLatestResults) or DuckDB's over a dataset (results/read/dataset.ts).
 */
export interface LatestCounts {
  /** Distinct units (paths, or servers) with a result, in all groups. */
  units: number;
  /** Some unit is a scan's path to one server (counting by path). */
  scanPaths: boolean;
  /** Per group value (null: no grouping, or runs without the attribute), its units. */
  groups: Map<string | null, number>;
  /** Per group, test, port and verdict, the units whose result that counts it is. */
  counts: Array<{ grp: string | null; n: number; name: string; port: number; verdict: string }>;
}

export function computeTable(store: Store, options: TableOptions = {}): TableData {
  return tableFromCounts(countLatestResults(store, options), options);
}

/** The table's counts from a database: every path's results that count (visitLatestResults), counted. */
export function countLatestResults(store: Store, options: TableOptions = {}): LatestCounts {
  // group -> the lines of a path (shared between paths with the same results) -> paths
  const pathsByLines = new Map<string | null, Map<readonly string[], number>>();
  const allPaths = new Set<string>();
  const by = options.by ?? 'path';
  visitLatestResults(store, options.groupBy, (group, path, lines) => {
    let byLines = pathsByLines.get(group);
    if (!byLines) pathsByLines.set(group, (byLines = new Map()));
    byLines.set(lines, (byLines.get(lines) ?? 0) + 1);
    allPaths.add(path);
  }, by);
  const groupPaths = new Map<string | null, number>();
  const counts: Array<{ grp: string | null; n: number; name: string; port: number; verdict: string }> = [];
  for (const [grp, byLines] of pathsByLines) {
    const lineCounts = new Map<string, number>();
    let paths = 0;
    for (const [lines, n] of byLines) {
      paths += n;
      for (const line of lines) lineCounts.set(line, (lineCounts.get(line) ?? 0) + n);
    }
    groupPaths.set(grp, paths);
    for (const [line, n] of lineCounts) counts.push({ grp, n, ...parseResultLine(line) });
  }
  return { units: allPaths.size, scanPaths: by === 'path' && [...allPaths].some(isScanPath), groups: groupPaths, counts };
}

/** The table from the counts of either engine. */
export function tableFromCounts(latest: LatestCounts, options: TableOptions = {}): TableData {
  const { groups: groupPaths, counts } = latest;
  const totalPaths = latest.units;
  const by = options.by ?? 'path';

  const groups = [...groupPaths]
    .map(([value, paths]) => ({ value, paths }))
    .sort((a, b) => (a.value === null ? 1 : 0) - (b.value === null ? 1 : 0) || codePointCompare(a.value ?? '', b.value ?? ''));
  const ports = [...new Set(counts.map((c) => c.port))].sort((a, b) => a - b);
  const columns = groups.flatMap((g) => ports.map((port) => ({ group: g.value, port })));
  const columnIndex = new Map(columns.map((c, i) => [`${c.group ?? ''}\u0000${c.group === null}\u0000${c.port}`, i]));
  const indexOf = (grp: string | null, port: number): number => columnIndex.get(`${grp ?? ''}\u0000${grp === null}\u0000${port}`)!;

  // test -> verdict -> n per column
  const byTest = new Map<string, Map<string, number[]>>();
  for (const c of counts) {
    let verdicts = byTest.get(c.name);
    if (!verdicts) byTest.set(c.name, (verdicts = new Map()));
    let cells = verdicts.get(c.verdict);
    if (!cells) verdicts.set(c.verdict, (cells = columns.map(() => 0)));
    cells[indexOf(c.grp, c.port)] += c.n;
  }

  const rows: TableRow[] = [];
  for (const test of [...byTest.keys()].sort(compareTests)) {
    const verdicts = byTest.get(test)!;
    const zero = columns.map(() => 0);
    const inconclusive = verdicts.get(INCONCLUSIVE) ?? zero;
    const conclusive = columns.map((_, i) => [...verdicts].reduce((sum, [v, cells]) => sum + (v === INCONCLUSIVE ? 0 : cells[i]), 0));
    const cell = (n: number, N: number): TableCell => ({ n, N, percent: N === 0 ? null : Math.round((1000 * n) / N) / 10 });
    for (const verdict of [...verdicts.keys()].sort(compareVerdicts(test))) {
      const ns = verdicts.get(verdict)!;
      const isInconclusive = verdict === INCONCLUSIVE;
      rows.push({
        test,
        verdict,
        inconclusive: isInconclusive,
        cells: ns.map((n, i) => cell(n, isInconclusive ? conclusive[i] + inconclusive[i] : conclusive[i])),
      });
    }
  }

  const grouped = options.groupBy ? `, in one block of columns per ${describeGroupBy(options.groupBy)} (runs without it: ${NO_GROUP})` : '';
  const unit = by === 'target' ? 'server' : 'path';
  const notes = [
    `Each cell: n / N (p%) of ${unit}s. N counts the ${unit}s with a conclusive result for the test on that port; a ${unit}'s result is its latest conclusive one.`,
    `Inconclusive results (the measurement failed) are not in N: the inconclusive rows give the number of ${unit}s whose only results were inconclusive.`,
    by === 'target'
      ? `A server is an address a scan (mbprobe-initiator scan) probed, wherever it was scanned from; measurements against a responder are not counted. ${plural(totalPaths, 'server')}; columns are the servers' ports${grouped}.`
      : `A path is a run label, or for unlabeled runs the initiator's address. ${plural(totalPaths, 'path')}; columns are responder ports${grouped}.`,
    ...(latest.scanPaths
      ? ['A scan\'s path to each server it probed is a path of its own, and its columns are the servers\' ports; --by target counts the servers instead.'] : []),
  ];
  return { groupBy: options.groupBy ? formatGroupBy(options.groupBy) : null, paths: totalPaths, groups, columns, rows, notes };
}

