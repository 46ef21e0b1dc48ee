/**
 * Paths and the results that count, for table, compare and the report.
 *
 * A path is the run's label when it has one; for an unlabeled run it is the initiator's address:
 * `host_info.source` (the address it sent from), paired with `host_info.observedAddress` (the
 * address the responder saw) when the two differ, so that volunteers behind NATs with the same
 * private address stay apart; a run with neither is a path of its own. Responder runs
 * (`host_info.role = 'responder'`) are not paths. For every (path, test, port) the result that counts
 * is the latest conclusive one (runs ordered by started_at, then id; within a run, the one stored last); an
 * inconclusive result counts only when the path has nothing else for that test and port, because
 * inconclusive means the measurement failed, not that the path did something.
 */
import type { Store } from '../../shared/store.js';
import {
  initiatorRunPaths, RESULT_FIELD, RESULT_RECORD, resultsByRun, scanResultsByTarget, type StoredResult,
} from '../../shared/store/queries.js';
import type { GroupBy } from '../grouping.js';
import { codePointCompare, INCONCLUSIVE } from '../verdicts.js';

export type PathKind = 'label' | 'address' | 'run' | 'target';

/**
 * What the units counted are (`table --by`): paths (a run's label or address; a scan's, to each server
 * it probed), or the servers scans probed (measurements against a responder are left out).
 */
export type CountedBy = 'path' | 'target';
export const COUNTED_BY: readonly CountedBy[] = ['path', 'target'];

/** Between a scan's path key and the server it probed, in the keys of counting by path. */
const TARGET_SEPARATOR = '\u0001';

/** Is this path key a scan's path to one server (counted by path)? */
export const isScanPath = (key: string): boolean => key.includes(TARGET_SEPARATOR);

const INCONCLUSIVE_SUFFIX = `${RESULT_FIELD}${INCONCLUSIVE}`;

/** A result line as visitLatestResults gives it. */
export function parseResultLine(line: string): { name: string; port: number; verdict: string } {
  const last = line.lastIndexOf(RESULT_FIELD);
  const before = line.lastIndexOf(RESULT_FIELD, last - 1);
  return { name: line.slice(0, before), port: Number(line.slice(before + 1, last)), verdict: line.slice(last + 1) };
}

/**
 * Calls `visit` once per group value and path with the results that count (one line per test and
 * port; read them with parseResultLine): per test and port, the latest conclusive result of the
 * path's runs in that group, or its latest inconclusive one when it has nothing else. Paths with
 * the same single run's worth of results get the same array, so callers may count by identity.
 *
 * Two queries: the runs with their path and group (one row per run, newest first) and every run's
 * results as one string (shared/store/queries.ts). The merge per path is then done on one string per
 * run. Doing it all in SQL (GROUP BY path, test, port, then GROUP BY verdict) sorts every test row:
 * about 2.5 s for 1.5 million tests on a 2-core machine, against about 1.3 s here.
 */
export function visitLatestResults(
  store: Store, groupBy: GroupBy | undefined, visit: (group: string | null, path: string, lines: readonly string[]) => void, by?: CountedBy,
): void {
  const runs = initiatorRunPaths(store, groupBy);
  const results = resultsByRun(store);
  // A scan (`mbprobe-initiator scan`) probed many servers: counted by path, each server is a path of
  // its own (from the scan's vantage point to it); counted by target, each server is one unit, from
  // wherever it was scanned. Without `by`, a scan is one path like any run.
  const scans = by === undefined ? undefined : scanResultsByTarget(store);
  const byGroup = new Map<string | null, Map<string, string[]>>();
  const add = (group: string | null, path: string, lines: string): void => {
    let paths = byGroup.get(group);
    if (!paths) byGroup.set(group, (paths = new Map()));
    const list = paths.get(path);
    if (list) list.push(lines);
    else paths.set(path, [lines]);
  };
  for (const [id, path, group] of runs) {
    const perTarget = scans?.get(id);
    if (perTarget) {
      for (const [target, lines] of perTarget) add(group, by === 'target' ? `t${target}` : `${path}${TARGET_SEPARATOR}${target}`, lines);
      continue;
    }
    if (by === 'target') continue;
    const lines = results.get(id);
    if (lines !== undefined) add(group, path, lines);
  }
  // Paths measured once with the same results (most of them, on real data) share one array.
  const once = new Map<string, readonly string[]>();
  for (const [group, paths] of byGroup) {
    for (const [path, newestFirst] of paths) {
      if (newestFirst.length > 1) {
        visit(group, path, mergeRuns(newestFirst));
        continue;
      }
      let winners = once.get(newestFirst[0]);
      if (!winners) once.set(newestFirst[0], (winners = mergeRuns(newestFirst)));
      visit(group, path, winners);
    }
  }
}

/**
 * Every initiator run's id by path key (see describePath), newest first: the order in which
 * visitLatestResults merges a path's runs. For finding the stored test behind a result that counts.
 */
export function runsByPath(store: Store): Map<string, string[]> {
  const byPath = new Map<string, string[]>();
  for (const [id, path] of initiatorRunPaths(store)) {
    const list = byPath.get(path);
    if (list) list.push(id);
    else byPath.set(path, [id]);
  }
  return byPath;
}

/**
 * Which of a path's results counts, per test and port: offered its results newest first (runs newest
 * first, within a run the one stored last first), it keeps the first conclusive one, or the first
 * inconclusive one while there is nothing else. The table, compare and the report's links all choose
 * with it.
 */
export class LatestResults<T> {
  private readonly winners = new Map<string, { item: T; inconclusive: boolean }>();

  offer(key: string, inconclusive: boolean, item: T): void {
    const previous = this.winners.get(key);
    if (previous === undefined || (previous.inconclusive && !inconclusive)) this.winners.set(key, { item, inconclusive });
  }

  get(key: string): T | undefined {
    return this.winners.get(key)?.item;
  }

  items(): T[] {
    return [...this.winners.values()].map((w) => w.item);
  }
}

/** The lines that count of one path's runs (newest first, each its lines joined by RESULT_RECORD). */
function mergeRuns(newestFirst: readonly string[]): string[] {
  const latest = new LatestResults<string>();
  for (const joined of newestFirst) {
    const lines = joined.split(RESULT_RECORD);
    for (let i = lines.length - 1; i >= 0; i--) {
      const line = lines[i];
      latest.offer(line.slice(0, line.lastIndexOf(RESULT_FIELD)), line.endsWith(INCONCLUSIVE_SUFFIX), line);
    }
  }
  return latest.items();
}

/** The key of a test on a port, for the maps of results per path. */
export const resultKey = (test: string, port: number): string => `${test}\u0000${port}`;

/**
 * The stored test that counts for each test and port (resultKey) of a path whose runs are `runIds`
 * (newest first), chosen by the same LatestResults as visitLatestResults.
 */
export function latestStoredResults(testsOfRun: (runId: string) => StoredResult[], runIds: readonly string[]): LatestResults<StoredResult & { runId: string }> {
  const latest = new LatestResults<StoredResult & { runId: string }>();
  for (const runId of runIds) {
    for (const t of testsOfRun(runId)) latest.offer(resultKey(t.name, t.port), t.verdict === INCONCLUSIVE, { ...t, runId });
  }
  return latest;
}

/** What a path key stands for and how to name it. */
export function describePath(key: string): { kind: PathKind; name: string } {
  if (key.startsWith('t')) return { kind: 'target', name: key.slice(1) };
  const toTarget = key.indexOf(TARGET_SEPARATOR);
  if (toTarget >= 0) {
    const from = describePath(key.slice(0, toTarget));
    return { kind: from.kind, name: `${from.name} → ${key.slice(toTarget + 1)}` };
  }
  const rest = key.slice(1);
  if (key.startsWith('l')) return { kind: 'label', name: rest };
  if (key.startsWith('a')) {
    const [source, observed] = rest.split(' ');
    return { kind: 'address', name: source === observed ? source : `${source} (seen as ${observed})` };
  }
  return { kind: 'run', name: `run ${rest}` };
}

const PATH_KIND_ORDER: Record<PathKind, number> = { label: 0, address: 1, run: 2, target: 3 };

export function comparePathKeys(a: string, b: string): number {
  const ka = describePath(a).kind;
  const kb = describePath(b).kind;
  return PATH_KIND_ORDER[ka] - PATH_KIND_ORDER[kb] || codePointCompare(a, b);
}
