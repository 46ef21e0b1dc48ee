/**
 * The data of `compare`: one row per path, one column per test and port, each cell the path's result
 * that counts (read/paths.ts).
 */
import { plural } from '../../shared/cli.js';
import type { Store } from '../../shared/store.js';
import { compareTests, INCONCLUSIVE } from '../verdicts.js';
import { comparePathKeys, describePath, parseResultLine, resultKey, visitLatestResults, type PathKind } from './paths.js';

export interface CompareOptions {
  /** Keep only the columns where at least two paths have different conclusive verdicts. */
  onlyDifferent?: boolean;
}

export interface CompareColumn {
  test: string;
  port: number;
}

export interface ComparePath {
  /** The label, the initiator's address, or 'run <id>'. */
  path: string;
  kind: PathKind;
  /** One per column; null when the path has no result for that test and port. */
  verdicts: Array<string | null>;
}

export interface CompareData {
  onlyDifferent: boolean;
  columns: CompareColumn[];
  paths: ComparePath[];
  notes: string[];
}

/** A path's result that counts for a test on a port, from either engine (results/read/results.ts). */
export interface PathResult {
  /** The path's key (results/read/paths.ts). */
  path: string;
  name: string;
  port: number;
  verdict: string;
}

export function computeCompare(store: Store, options: CompareOptions = {}): CompareData {
  const rows: PathResult[] = [];
  visitLatestResults(store, undefined, (_group, path, lines) => {
    for (const line of lines) rows.push({ path, ...parseResultLine(line) });
  });
  return compareFromResults(rows, options);
}

/** compare's data from every path's results that count (either engine's). */
export function compareFromResults(rows: readonly PathResult[], options: CompareOptions = {}): CompareData {
  const columns = new Map<string, CompareColumn>();
  const byPath = new Map<string, Map<string, string>>();
  for (const r of rows) {
    const key = resultKey(r.name, r.port);
    if (!columns.has(key)) columns.set(key, { test: r.name, port: r.port });
    let verdicts = byPath.get(r.path);
    if (!verdicts) byPath.set(r.path, (verdicts = new Map()));
    verdicts.set(key, r.verdict);
  }
  const pathKeys = [...byPath.keys()].sort(comparePathKeys);
  let ordered = [...columns.values()].sort((a, b) => compareTests(a.test, b.test) || a.port - b.port);
  const onlyDifferent = options.onlyDifferent ?? false;
  if (onlyDifferent) {
    ordered = ordered.filter((c) => {
      const key = resultKey(c.test, c.port);
      const seen = new Set<string>();
      for (const p of pathKeys) {
        const v = byPath.get(p)!.get(key);
        if (v !== undefined && v !== INCONCLUSIVE) seen.add(v);
      }
      return seen.size > 1;
    });
  }
  const paths = pathKeys.map((key) => {
    const verdicts = byPath.get(key)!;
    return { ...describePath(key), verdicts: ordered.map((c) => verdicts.get(resultKey(c.test, c.port)) ?? null) };
  }).map(({ name, kind, verdicts }) => ({ path: name, kind, verdicts }));
  const notes = [
    `${plural(paths.length, 'path')}: a path is a run label, or for unlabeled runs the initiator's address; each cell is the path's latest conclusive verdict for the test on that port (inconclusive only if it has nothing else; no verdict if it never ran it).`,
  ];
  if (onlyDifferent) notes.push('Only the columns where paths disagree (inconclusive and missing results are not disagreements).');
  return { onlyDifferent, columns: ordered, paths, notes };
}
