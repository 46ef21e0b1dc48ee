/**
 * Named queries over the schema (shared/store/schema.ts) for the programs that read a database as a
 * whole: the results commands and the initiator's submission. Each returns typed rows; what the rows
 * mean for a path, a table or a report is decided by the caller (results/read/).
 */
import type { Store } from '../store.js';

/** Separators of the per-run result strings of resultsByRun (control characters no test name, port or verdict contains). */
export const RESULT_FIELD = '\x1f';
export const RESULT_RECORD = '\x1e';

/** A run attribute to group runs by: the label, or one of the tags given at run time (`--tag KEY=VALUE`). */
export type RunGroup = { kind: 'label' } | { kind: 'tag'; key: string };

/**
 * Initiator runs newest first (started_at, then id), each `[id, path key, group value]`. The path key
 * is 'l' + label, 'a' + source + ' ' + observed address (host_info.source and .observedAddress, each
 * standing in for the other when missing), or 'r' + run id when the run has neither.
 */
export function initiatorRunPaths(store: Store, group?: RunGroup): Array<[id: string, path: string, group: string | null]> {
  const grp = group === undefined ? 'NULL'
    : group.kind === 'label' ? "NULLIF(label, '')"
    : "(SELECT CAST(value AS TEXT) FROM json_each(initiator_runs.tags) WHERE key = ? AND type <> 'null')";
  const sql = `
SELECT id,
  CASE
    WHEN label IS NOT NULL AND label <> '' THEN 'l' || label
    WHEN src IS NOT NULL OR obs IS NOT NULL THEN 'a' || COALESCE(src, obs) || ' ' || COALESCE(obs, src)
    ELSE 'r' || id
  END AS path,
  grp
FROM (
  SELECT id, label, started_at, ${grp} AS grp,
    NULLIF(CAST(json_extract(host_info, '$.source') AS TEXT), '') AS src,
    NULLIF(CAST(json_extract(host_info, '$.observedAddress') AS TEXT), '') AS obs
  FROM initiator_runs
)
ORDER BY started_at DESC, id DESC`;
  const params = group?.kind === 'tag' ? [group.key] : [];
  return store.db.prepare<string[], [string, string, string | null]>(sql).raw().all(...params);
}

/**
 * Every run's results as one string: `name FIELD port FIELD verdict` records joined by RECORD, in the
 * order they were stored. GROUP BY run_id follows the tests_run_id index, so nothing is sorted: the
 * cheapest way to read every test of a big database (one row per run, not per test).
 */
export function resultsByRun(store: Store): Map<string, string> {
  return new Map(store.db.prepare<[], [string, string]>(
    `SELECT run_id, group_concat(name || '${RESULT_FIELD}' || port || '${RESULT_FIELD}' || verdict, '${RESULT_RECORD}') FROM tests GROUP BY run_id`,
  ).raw().all());
}

/**
 * The results of scan runs (runs.kind 'server-scan') per scanned server: run id -> target address ->
 * `name FIELD port FIELD verdict` records joined by RECORD, as resultsByRun gives a run's.
 */
export function scanResultsByTarget(store: Store): Map<string, Map<string, string>> {
  const byRun = new Map<string, Map<string, string>>();
  const rows = store.db.prepare<[], [string, string, string]>(
    `SELECT t.run_id, t.target, group_concat(t.name || '${RESULT_FIELD}' || t.port || '${RESULT_FIELD}' || t.verdict, '${RESULT_RECORD}')
     FROM tests t JOIN runs r ON r.id = t.run_id WHERE r.kind = 'server-scan' AND t.target IS NOT NULL GROUP BY t.run_id, t.target`,
  ).raw().all();
  for (const [runId, target, lines] of rows) {
    let targets = byRun.get(runId);
    if (!targets) byRun.set(runId, (targets = new Map()));
    targets.set(target, lines);
  }
  return byRun;
}

export interface StoredResult {
  id: number;
  name: string;
  port: number;
  verdict: string;
}

/** A run's tests, the one stored last first; prepared once, called per run. */
export function testsOfRunNewestFirst(store: Store): (runId: string) => StoredResult[] {
  const statement = store.db.prepare<[string], StoredResult>('SELECT id, name, port, verdict FROM tests WHERE run_id = ? ORDER BY id DESC');
  return (runId) => statement.all(runId);
}

export interface RunCounts {
  /** Runs that are measurements (initiator_runs). */
  initiator: number;
  /** The responder's own records. */
  responder: number;
  /** Earliest and latest started_at of the initiator runs; null without any. */
  first: string | null;
  last: string | null;
  /** Initiator runs per tool version, most runs first. */
  versions: Array<{ version: string; runs: number }>;
}

export function runCounts(store: Store): RunCounts {
  const { initiator, first, last } = store.db.prepare<[], { initiator: number; first: string | null; last: string | null }>(
    'SELECT COUNT(*) AS initiator, MIN(started_at) AS first, MAX(started_at) AS last FROM initiator_runs').get()!;
  const { all } = store.db.prepare<[], { all: number }>('SELECT COUNT(*) AS "all" FROM runs').get()!;
  const versions = store.db.prepare<[], { version: string; runs: number }>(
    'SELECT tool_version AS version, COUNT(*) AS runs FROM initiator_runs GROUP BY tool_version ORDER BY runs DESC, version').all();
  return { initiator, responder: all - initiator, first, last, versions };
}

/** The latest finished initiator run (the responder's records are not runs to submit). */
export function latestFinishedRun(store: Store): string | undefined {
  return store.db.prepare<[], { id: string }>(
    'SELECT id FROM initiator_runs WHERE finished_at IS NOT NULL ORDER BY finished_at DESC, id DESC LIMIT 1').get()?.id;
}

/** A test's hop localisation finding (tests.detail.location, `mbprobe-initiator locate`), as far as counting where it is needs. */
export interface StoredLocation {
  status: string;
  reason: string | null;
  /** The last hop still showing the probe as sent (changed, dropped); null when none did. */
  lastTtl: number | null;
  /** The first hop showing it changed, or that never saw it; whether that is the responder. */
  firstTtl: number | null;
  firstIsResponder: boolean;
  /** proxy: the hop that answers for the responder. */
  proxyHop: number | null;
  /** The responder's hop (the path's length plus one), when known. */
  responderHop: number | null;
  summary: string | null;
}

/** Every localised test's finding, by tests.id (one row per localised test, none for the others). */
export function locationsOfTests(store: Store): Map<number, StoredLocation> {
  const rows = store.db.prepare<[], [number, string, string | null, number | null, number | null, number | null, number | null, number | null, string | null]>(`
SELECT id, json_extract(detail, '$.location.status'), json_extract(detail, '$.location.reason'), json_extract(detail, '$.location.last.ttl'),
  json_extract(detail, '$.location.first.ttl'), json_extract(detail, '$.location.first.responder'), json_extract(detail, '$.location.proxy.hop'),
  json_extract(detail, '$.location.responderHop'), json_extract(detail, '$.location.summary')
FROM tests WHERE json_extract(detail, '$.location.status') IS NOT NULL`).raw().all();
  return new Map(rows.map(([id, status, reason, lastTtl, firstTtl, firstIsResponder, proxyHop, responderHop, summary]) => [
    id, { status, reason, lastTtl, firstTtl, firstIsResponder: firstIsResponder === 1, proxyHop, responderHop, summary },
  ]));
}
