/**
 * The database's schema: what researchers query directly, so names are a contract. One schema for
 * initiator, responder and merged databases.
 */

/**
 * Bump whenever the tables change, with a migration from the version before (MIGRATIONS): older files
 * are migrated when opened for writing and seen through TEMP views when opened read-only (upgradeViewsSql);
 * files of a newer version are refused rather than guessed at.
 *
 * 2: runs.kind ('measurement', or 'server-scan' for `mbprobe-initiator scan`), tests.target and
 *    tests.target_name (the server a scan probed: its address and the name it was resolved from).
 * 3: the hops table (`mbprobe-initiator locate`, `run --locate`: what each hop quoted of a test's probe).
 */
export const SCHEMA_VERSION = 3;

/** What kind of run a row of runs is: a measurement against a responder, or a scan of ordinary servers. */
export const RUN_KINDS = ['measurement', 'server-scan'] as const;
export type RunKind = (typeof RUN_KINDS)[number];

const RUN_KIND_COLUMN = `kind TEXT NOT NULL DEFAULT 'measurement' CHECK (kind IN (${RUN_KINDS.map((k) => `'${k}'`).join(', ')}))`;
/** The server a scan probed (NULL for measurements against a responder): its address, and the name it was resolved from (NULL when given as an address). */
const TARGET_COLUMNS = ['target TEXT', 'target_name TEXT'] as const;

/** The verdicts view: one row per test, what researchers query first (target NULL but for scans). */
const VERDICTS_SELECT = `SELECT r.id AS run_id, r.label AS label, t.name AS test, t.port AS port, t.verdict AS verdict, t.detail AS detail,
    r.kind AS kind, t.target AS target, t.target_name AS target_name
  FROM tests t JOIN runs r ON r.id = t.run_id
  ORDER BY r.started_at, r.id, t.seq, t.id`;
const VERDICTS_VIEW = `verdicts AS\n  ${VERDICTS_SELECT}`;

/**
 * Runs that are measurements: everything but the responder's own records of what it received
 * (`host_info.role = 'responder'`). Every query about paths, the table and submissions starts here.
 */
const INITIATOR_RUNS_VIEW = `initiator_runs AS
  SELECT * FROM runs WHERE coalesce(json_extract(host_info, '$.role'), '') <> 'responder'`;

/** What a row of hops is: a hop's ICMP error about a copy of the probe, the copy as the responder received it, or no answer. */
export const HOP_KINDS = ['time-exceeded', 'unreachable', 'packet-too-big', 'parameter-problem', 'other', 'responder', 'no-answer'] as const;
export type HopKind = (typeof HOP_KINDS)[number];

/**
 * Hop localisation: per test, for each TTL a copy of its probe was sent with, what came back. `sent` is
 * the copy; `packet` the ICMP error as received (NULL for the responder's row and for no answer);
 * `quote` the bytes of the copy the error quotes (the copy as the responder received it, for its
 * row), `quote_length` how many; `diff` the diff rows (shared/diff.ts) of the fields the quote shows,
 * `not_visible` the fields it does not reach. The finding is the test's detail.location.
 */
const HOPS_TABLE_SQL = `CREATE TABLE hops (
  id           INTEGER PRIMARY KEY,
  test_id      INTEGER NOT NULL REFERENCES tests(id) ON DELETE CASCADE,
  ttl          INTEGER NOT NULL CHECK (ttl BETWEEN 1 AND 255),
  kind         TEXT NOT NULL CHECK (kind IN (${HOP_KINDS.map((k) => `'${k}'`).join(', ')})),
  router       TEXT,
  at_us        INTEGER CHECK (at_us IS NULL OR typeof(at_us) = 'integer'),
  sent         BLOB NOT NULL,
  quote_length INTEGER,
  quote        BLOB,
  packet       BLOB,
  diff         TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(diff)),
  not_visible  TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(not_visible))
);
CREATE INDEX hops_test_id ON hops(test_id);`;

/**
 * JSON columns are TEXT checked with json_valid (a declared type of JSON would get NUMERIC affinity
 * and turn '5' into 5).
 */
export const SCHEMA_SQL = `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE runs (
  id           TEXT PRIMARY KEY,
  started_at   TEXT NOT NULL,
  finished_at  TEXT,
  label        TEXT,
  responder    TEXT,
  tool_version TEXT NOT NULL,
  host_info    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(host_info)),
  tags         TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(tags)),
  ${RUN_KIND_COLUMN}
);

CREATE TABLE tests (
  id          INTEGER PRIMARY KEY,
  run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  seq         INTEGER NOT NULL,
  name        TEXT NOT NULL,
  port        INTEGER NOT NULL CHECK (port BETWEEN 0 AND 65535),
  started_at  TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  verdict     TEXT NOT NULL,
  detail      TEXT CHECK (detail IS NULL OR json_valid(detail)),
  ${TARGET_COLUMNS.join(',\n  ')}
);
CREATE INDEX tests_run_id ON tests(run_id);
CREATE INDEX tests_name_port ON tests(name, port);

CREATE TABLE segments (
  id      INTEGER PRIMARY KEY,
  test_id INTEGER NOT NULL REFERENCES tests(id) ON DELETE CASCADE,
  side    TEXT NOT NULL CHECK (side IN ('initiator', 'responder')),
  dir     TEXT NOT NULL CHECK (dir IN ('sent', 'received')),
  at_us   INTEGER NOT NULL CHECK (typeof(at_us) = 'integer'),
  bytes   BLOB NOT NULL
);
CREATE INDEX segments_test_id ON segments(test_id);

CREATE TABLE diffs (
  id               INTEGER PRIMARY KEY,
  test_id          INTEGER NOT NULL REFERENCES tests(id) ON DELETE CASCADE,
  sent_segment     INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
  received_segment INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
  layer            TEXT NOT NULL CHECK (layer IN ('ip', 'tcp', 'option', 'payload')),
  field            TEXT NOT NULL,
  sent             TEXT,
  received         TEXT,
  class            TEXT NOT NULL CHECK (class IN ('interference', 'expected', 'isn-offset')),
  change           TEXT
);
CREATE INDEX diffs_test_id ON diffs(test_id);
-- Without these, every cascaded segment delete scans all of diffs.
CREATE INDEX diffs_sent_segment ON diffs(sent_segment);
CREATE INDEX diffs_received_segment ON diffs(received_segment);

${HOPS_TABLE_SQL}

CREATE VIEW ${VERDICTS_VIEW};

CREATE VIEW ${INITIATOR_RUNS_VIEW};
`;

/**
 * Every migration, by the version it starts from: SQL that turns a file of that version into one of
 * the next, run in one transaction with the version bump. Columns are added (ALTER TABLE ... ADD
 * COLUMN rewrites nothing, so a migration takes milliseconds whatever the file's size) and views
 * recreated; existing rows keep their meaning through the new columns' defaults.
 */
export const MIGRATIONS: Readonly<Record<number, string>> = {
  1: `
ALTER TABLE runs ADD COLUMN ${RUN_KIND_COLUMN};
${TARGET_COLUMNS.map((c) => `ALTER TABLE tests ADD COLUMN ${c};`).join('\n')}
DROP VIEW IF EXISTS verdicts;
CREATE VIEW ${VERDICTS_VIEW};
`,
  2: HOPS_TABLE_SQL,
};

/**
 * For a file of an older version opened read-only (it cannot be migrated): TEMP views of the same
 * names as its tables and views, with the columns added since filled with their defaults, so every
 * query of this build reads it as it would a migrated file. TEMP objects come first in SQLite's name
 * lookup, so `runs` means the view on this connection; the file is untouched.
 */
export function upgradeViewsSql(version: number): string {
  if (version >= SCHEMA_VERSION) return '';
  // Versions 1 and 2 have no hops: an empty view of its columns.
  const hops = `CREATE TEMP VIEW hops AS SELECT ${['id', 'test_id', 'ttl', 'kind', 'router', 'at_us', 'sent', 'quote_length', 'quote', 'packet'].map((c) => `NULL AS ${c}`).join(', ')}, '[]' AS diff, '[]' AS not_visible WHERE 0;`;
  if (version === 2) return hops;
  // Version 1 also lacks runs.kind and the tests' target columns.
  return `
CREATE TEMP VIEW runs AS SELECT *, 'measurement' AS kind FROM main.runs;
CREATE TEMP VIEW tests AS SELECT *, NULL AS target, NULL AS target_name FROM main.tests;
CREATE TEMP VIEW ${VERDICTS_VIEW};
CREATE TEMP VIEW ${INITIATOR_RUNS_VIEW};
${hops}
`;
}

/**
 * The views added to schema version 1 after files of it were written (a view holds no data, so the
 * version stays): created in the file when it is opened for writing, and as a TEMP view (this
 * connection only) when it is opened read-only, so every query can rely on them.
 */
export function addedViewsSql(readonly: boolean): string {
  return `CREATE ${readonly ? 'TEMP ' : ''}VIEW IF NOT EXISTS ${INITIATOR_RUNS_VIEW};`;
}

/** Copied columns in table order (without the row's own id and its parent's), for statements that copy rows as they are. */
export const RUN_COLUMNS = ['id', 'started_at', 'finished_at', 'label', 'responder', 'tool_version', 'host_info', 'tags', 'kind'] as const;
export const TEST_COLUMNS = ['seq', 'name', 'port', 'started_at', 'finished_at', 'verdict', 'detail', 'target', 'target_name'] as const;
export const SEGMENT_COLUMNS = ['side', 'dir', 'at_us', 'bytes'] as const;
export const DIFF_COLUMNS = ['layer', 'field', 'sent', 'received', 'class', 'change'] as const;
export const HOP_COLUMNS = ['ttl', 'kind', 'router', 'at_us', 'sent', 'quote_length', 'quote', 'packet', 'diff', 'not_visible'] as const;
