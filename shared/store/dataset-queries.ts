/**
 * Named queries over Parquet datasets (shared/store/dataset.ts), for DuckDB: what the results
 * commands ask of a dataset, giving exactly what the SQLite queries and results/read/paths.ts give
 * on the same data (test/unit/results-dataset.test.ts compares them cell for cell).
 *
 * The latest-result rule of results/read/paths.ts, in SQL: per unit (a path; for scans per server),
 * test and port, the result that counts is the conclusive one of the newest run (runs ordered by
 * started_at, then id; within a run the test stored last, the highest tests.id), or the newest
 * inconclusive one when the unit has nothing else. One hash aggregation over the tests picks it: the
 * maximum of a key that packs (conclusive, run rank, test id) into one HUGEINT.
 */
import type { RunGroup } from './queries.js';

/** A string as an SQL literal (DuckDB: standard SQL, no backslash escapes). */
export const sqlString = (text: string): string => `'${text.replaceAll("'", "''")}'`;

const fileList = (files: readonly string[]): string => `[${files.map(sqlString).join(', ')}]`;

/**
 * Macros every dataset query uses, created once per connection. json_text(v) is SQLite's
 * `CAST(json_extract(...) AS TEXT)` of a JSON value: a string as itself, true/false as 1/0, null as
 * NULL, an integer in decimal, anything else (objects, arrays, non-integers) as its JSON text.
 */
export const DATASET_MACROS = `
CREATE OR REPLACE TEMP MACRO json_text(v) AS
  CASE json_type(v) WHEN 'VARCHAR' THEN v ->> '$' WHEN 'BOOLEAN' THEN CASE WHEN v::VARCHAR = 'true' THEN '1' ELSE '0' END
    WHEN 'NULL' THEN NULL ELSE v::VARCHAR END;`;

/**
 * What the units are. `run`: each run's path (compare: a scan is one path like any run). `path`: a
 * scan's path to each server it probed is a unit of its own (path key + U+0001 + target), other runs'
 * paths as they are (the table's default). `target`: the servers scans probed, wherever from
 * ('t' + target); measurements against a responder are left out.
 */
export type UnitMode = 'run' | 'path' | 'target';

export interface DatasetQueryFiles {
  runs: readonly string[];
  tests: readonly string[];
}

const TARGET_SEPARATOR = '\u0001';

/**
 * Initiator runs (the responder's own records left out, as initiator_runs does) with their path key
 * (initiatorRunPaths in shared/store/queries.ts: label, else source and observed address, else the
 * run id), group value and rank (1 = oldest by started_at, then id).
 */
function runsCte(files: DatasetQueryFiles, group: RunGroup | undefined): string {
  const grp = group === undefined ? 'NULL::VARCHAR'
    : group.kind === 'label' ? "NULLIF(label, '')"
    // A JSON pointer: the key as it is, '~' and '/' escaped.
    : `CASE WHEN json_type(tags) = 'OBJECT' THEN json_text(json_extract(tags, ${sqlString(`/${group.key.replaceAll('~', '~0').replaceAll('/', '~1')}`)})) END`;
  return `runs AS MATERIALIZED (
  SELECT id, kind, grp, row_number() OVER (ORDER BY started_at, id) AS rank,
    CASE
      WHEN label IS NOT NULL AND label <> '' THEN 'l' || label
      WHEN src IS NOT NULL OR obs IS NOT NULL THEN 'a' || COALESCE(src, obs) || ' ' || COALESCE(obs, src)
      ELSE 'r' || id
    END AS path
  FROM (
    SELECT id, kind, started_at, label, ${grp} AS grp,
      json_text(h[1]) AS role, NULLIF(json_text(h[2]), '') AS src, NULLIF(json_text(h[3]), '') AS obs
    FROM (SELECT *, json_extract(host_info, ['$.role', '$.source', '$.observedAddress']) AS h FROM read_parquet(${fileList(files.runs)}))
  )
  WHERE COALESCE(role, '') <> 'responder'
)`;
}

/** How the latest-result queries are built for a given read. */
export interface LatestOptions {
  mode: UnitMode;
  group?: RunGroup;
  /** Some run is a scan (scanRunsSql): only then are units per server looked for. */
  hasScans: boolean;
  /**
   * Test ids and run ranks fit in 31 bits (testIdBoundsSql, the number of runs): the ordering key is then
   * a BIGINT (conclusive, rank, id); otherwise a HUGEINT of the same three, twice as slow to build.
   */
  narrowKey: boolean;
}

/**
 * The results that count: `latest`, one row per (pid, tgt, name, port), materialized (read more than
 * once). `pid` numbers the pairs (group value, path) in `gpaths` (the path '' when counting servers), `tgt` is the
 * server of a scan's unit, NULL otherwise (a column only when there are scans).
 */
function latestCte(files: DatasetQueryFiles, options: LatestOptions): string {
  const { mode, hasScans } = options;
  // Scan runs with results per server: their units are per target (modes path and target).
  const scansByTarget = hasScans && mode !== 'run';
  const targeted = scansByTarget
    ? `targeted AS (SELECT DISTINCT t.run_id FROM read_parquet(${fileList(files.tests)}) t JOIN runs r ON r.id = t.run_id WHERE r.kind = 'server-scan' AND t.target IS NOT NULL),`
    : '';
  const tgt = scansByTarget ? 'CASE WHEN g.run_id IS NOT NULL THEN t.target END' : 'NULL::VARCHAR';
  const join = scansByTarget ? 'LEFT JOIN targeted g ON g.run_id = t.run_id' : '';
  const where = !scansByTarget ? '' : mode === 'target' ? 'WHERE g.run_id IS NOT NULL AND t.target IS NOT NULL' : 'WHERE g.run_id IS NULL OR t.target IS NOT NULL';
  const key = options.narrowKey
    ? '((t.verdict <> \'inconclusive\')::BIGINT << 62) | (r.rank << 31) | t.id'
    : '((t.verdict <> \'inconclusive\')::HUGEINT << 112) | (r.rank::HUGEINT << 64) | (t.id::HUGEINT + 9223372036854775808::HUGEINT)';
  return `${runsCte(files, options.group)},
gpaths AS MATERIALIZED (SELECT grp, path, row_number() OVER () AS pid FROM (SELECT DISTINCT grp, ${mode === 'target' ? "'' AS path" : 'path'} FROM runs)),
ranked AS (SELECT r.id, p.pid, r.rank FROM runs r JOIN gpaths p ON p.grp IS NOT DISTINCT FROM r.grp AND p.path = ${mode === 'target' ? "''" : 'r.path'}),
${targeted}
latest AS MATERIALIZED (
  SELECT r.pid, ${scansByTarget ? `${tgt} AS tgt` : 'NULL::VARCHAR AS tgt'}, t.name, t.port, arg_max(t.verdict, ${key}) AS verdict
  FROM read_parquet(${fileList(files.tests)}) t JOIN ranked r ON r.id = t.run_id ${join}
  ${where}
  GROUP BY r.pid, ${scansByTarget ? 'tgt, ' : ''}t.name, t.port
)`;
}

/**
 * The paper table's counts (results/read/table.ts): rows `[kind, grp, name, port, verdict, n]` where
 * kind 'cell' gives the units whose result for (name, port) in group grp is verdict, 'group' the
 * units of a group (name, port, verdict NULL), 'total' the distinct units in all, 'scan paths' the
 * units that are a scan's path to one server.
 */
export function latestCountsSql(files: DatasetQueryFiles, options: LatestOptions): string {
  return `WITH ${latestCte(files, options)},
units AS MATERIALIZED (SELECT g.grp, g.path, u.tgt FROM (SELECT DISTINCT pid, tgt FROM latest) u JOIN gpaths g ON g.pid = u.pid)
SELECT 'cell' AS kind, g.grp, l.name, l.port, l.verdict, count(*) AS n FROM latest l JOIN gpaths g ON g.pid = l.pid GROUP BY g.grp, l.name, l.port, l.verdict
UNION ALL
SELECT 'group', grp, NULL, NULL, NULL, count(*) FROM units GROUP BY grp
UNION ALL
SELECT 'total', NULL, NULL, NULL, NULL, count(*) FROM (SELECT DISTINCT path, tgt FROM units)
UNION ALL
SELECT 'scan paths', NULL, NULL, NULL, NULL, count(*) FROM (SELECT DISTINCT path, tgt FROM units WHERE tgt IS NOT NULL)`;
}

/** The result that counts per unit, test and port, no grouping (compare): rows `[unit, name, port, verdict]`. */
export function latestPerUnitSql(files: DatasetQueryFiles, options: Omit<LatestOptions, 'group'>): string {
  const unit = options.mode === 'target'
    ? "'t' || l.tgt"
    : `p.path || CASE WHEN l.tgt IS NULL THEN '' ELSE ${sqlString(TARGET_SEPARATOR)} || l.tgt END`;
  return `WITH ${latestCte(files, options)}
SELECT ${unit} AS unit, l.name, l.port, l.verdict FROM latest l JOIN gpaths p ON p.pid = l.pid`;
}

/** The smallest and largest test id, and the number of runs: `[min, max, runs]` (whether LatestOptions.narrowKey holds). */
export function keyBoundsSql(files: DatasetQueryFiles): string {
  return `SELECT (SELECT min(id) FROM read_parquet(${fileList(files.tests)})), (SELECT max(id) FROM read_parquet(${fileList(files.tests)})),
  (SELECT count(*) FROM read_parquet(${fileList(files.runs)}))`;
}

/** Whether any run is a scan: `[n]`. Without scans, a scan's per-server units need not be looked for. */
export function scanRunsSql(files: DatasetQueryFiles): string {
  return `SELECT count(*) FROM read_parquet(${fileList(files.runs)}) WHERE kind = 'server-scan'`;
}

/** Run ids found in more than one of the datasets' runs files: `[id, files]`, at most `limit`. */
export function duplicateRunsSql(files: DatasetQueryFiles, limit: number): string {
  return `SELECT id, list(DISTINCT filename ORDER BY filename) AS files FROM read_parquet(${fileList(files.runs)}, filename = true)
GROUP BY id HAVING count(*) > 1 ORDER BY id LIMIT ${Math.trunc(limit)}`;
}
