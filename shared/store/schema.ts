/**
 * The database's schema: what researchers query directly, so names are a contract. One schema for
 * initiator, responder and merged databases.
 */

/** Bump whenever the tables change; files with another version are refused rather than guessed at. */
export const SCHEMA_VERSION = 1;

/**
 * Runs that are measurements: everything but the responder's own records of what it received
 * (`host_info.role = 'responder'`). Every query about paths, the table and submissions starts here.
 */
const INITIATOR_RUNS_VIEW = `initiator_runs AS
  SELECT * FROM runs WHERE coalesce(json_extract(host_info, '$.role'), '') <> 'responder'`;

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
  tags         TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(tags))
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
  detail      TEXT CHECK (detail IS NULL OR json_valid(detail))
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

CREATE VIEW verdicts AS
  SELECT r.id AS run_id, r.label AS label, t.name AS test, t.port AS port, t.verdict AS verdict, t.detail AS detail
  FROM tests t JOIN runs r ON r.id = t.run_id
  ORDER BY r.started_at, r.id, t.seq, t.id;

CREATE VIEW ${INITIATOR_RUNS_VIEW};
`;

/**
 * The views added to schema version 1 after files of it were written (a view holds no data, so the
 * version stays): created in the file when it is opened for writing, and as a TEMP view (this
 * connection only) when it is opened read-only, so every query can rely on them.
 */
export function addedViewsSql(readonly: boolean): string {
  return `CREATE ${readonly ? 'TEMP ' : ''}VIEW IF NOT EXISTS ${INITIATOR_RUNS_VIEW};`;
}

/** Copied columns in table order (without the row's own id and its parent's), for statements that copy rows as they are. */
export const RUN_COLUMNS = ['id', 'started_at', 'finished_at', 'label', 'responder', 'tool_version', 'host_info', 'tags'] as const;
export const TEST_COLUMNS = ['seq', 'name', 'port', 'started_at', 'finished_at', 'verdict', 'detail'] as const;
export const SEGMENT_COLUMNS = ['side', 'dir', 'at_us', 'bytes'] as const;
export const DIFF_COLUMNS = ['layer', 'field', 'sent', 'received', 'class', 'change'] as const;
