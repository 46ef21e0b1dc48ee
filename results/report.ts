/**
 * `mbprobe-results report DB --out report.html`: one self-contained HTML file to look at a database
 * with: the paper table (results/table.ts), a heatmap of paths × tests and ports coloured by verdict
 * (the data of `compare`, results/compare.ts), and per test a drill-down to each result's run, detail
 * and aligned segments with their diff rows (the lines of `diffs`, results/diffs.ts).
 *
 * Self-contained means no network loads and no scripts: inline CSS only, a Content-Security-Policy
 * that forbids everything else, navigation by anchors (:target highlights the section a cell links
 * to). Everything that comes from the database (labels, addresses, tags, test names, verdicts,
 * details, decoded segments) is HTML-escaped.
 *
 * Heatmap cells carry machine-checkable attributes: `class="cell v-clean|v-interference|v-broken|
 * v-inconclusive|v-unknown|v-none"`, `data-path`, `data-test`, `data-port`, `data-verdict` (empty
 * when the path never ran the test on that port); each row is `<tr data-path=...>`. v-unknown is a
 * verdict of a test outside the catalogue (e.g. from --test-file), whose verdict order the report
 * cannot know.
 *
 * Bounded for big databases: the heatmap shows the first `maxPaths` paths (the table counts all), and
 * at most `maxDrilldown` drill-down sections are embedded (the first results in heatmap order, row by
 * row); a visible note says what was left out.
 */
import { writeFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { Statement } from 'better-sqlite3';
import type { Command } from 'commander';
import { parsePositiveInt, plural, TOOL_VERSION, UsageError, type CliIo } from '../shared/cli.js';
import type { RunRow, Store, TestRow } from '../shared/store.js';
import { allVerdicts, SHARED_VERDICTS } from '../initiator/test-case.js';
import { CATALOGUE } from '../initiator/catalogue/index.js';
import {
  computeCompare, describePath, formatGroupBy, INCONCLUSIVE, LatestResults, openResults, parseGroupBy, runsByPath,
  type CompareData, type GroupBy, type PathKind,
} from './compare.js';
import { alignTest, type AlignedLine } from './diffs.js';
import { computeTable, formatCell, NO_GROUP, type TableData } from './table.js';

export const DEFAULT_MAX_PATHS = 500;
export const DEFAULT_MAX_DRILLDOWN = 2000;
/** Pretty-printed details longer than this are cut (the whole detail is in the database). */
const MAX_DETAIL_CHARS = 20_000;

// ---------------------------------------------------------------------------------------------
// Verdict classes

/** How a heatmap cell is coloured. */
export type VerdictClass = 'clean' | 'interference' | 'broken' | 'inconclusive' | 'unknown' | 'none';

/** Background colours of the verdict classes (the Chromium test looks for the rendered pixels). */
export const VERDICT_COLOURS: Record<Exclude<VerdictClass, 'none'>, string> = {
  clean: '#2b8a3e',
  interference: '#f59f00',
  broken: '#e03131',
  inconclusive: '#adb5bd',
  unknown: '#748ffc',
};

const TEXT_COLOURS: Record<Exclude<VerdictClass, 'none'>, string> = {
  clean: '#ffffff',
  interference: '#212529',
  broken: '#ffffff',
  inconclusive: '#212529',
  unknown: '#ffffff',
};

const CLASS_DESCRIPTIONS: Record<VerdictClass, string> = {
  clean: 'no interference (the test\'s first verdict)',
  interference: 'interference (another verdict of the test)',
  broken: 'dropped, reply-dropped or reset',
  inconclusive: 'inconclusive (the measurement failed)',
  unknown: 'a verdict of a test outside the catalogue (e.g. from --test-file): which of its verdicts means no interference is not known here',
  none: 'not run on this path and port',
};

const CATALOGUE_BY_NAME = new Map(CATALOGUE.map((t) => [t.name, t]));
const BROKEN = new Set<string>(SHARED_VERDICTS.filter((v) => v !== INCONCLUSIVE));

/** The class of a test's verdict: its first verdict (allVerdicts) is clean, its others interference. */
export function classifyVerdict(test: string, verdict: string | null): VerdictClass {
  if (verdict === null) return 'none';
  if (verdict === INCONCLUSIVE) return 'inconclusive';
  if (BROKEN.has(verdict)) return 'broken';
  const known = CATALOGUE_BY_NAME.get(test);
  if (!known) return 'unknown';
  return verdict === allVerdicts(known)[0] ? 'clean' : 'interference';
}

/**
 * A verdict in a few characters for a heatmap cell (the whole verdict is in the cell's title):
 * "rewritten-forward" -> "rf", "passed" -> "pas", "inconclusive" -> "?"; longer where a verdict of
 * the same (catalogue) test would look the same ("reset" and "resized" -> "rese", "resi").
 */
export function abbreviateVerdict(verdict: string, test?: string): string {
  const short = (v: string, n: number): string => {
    if (v === INCONCLUSIVE) return '?';
    const parts = v.split(/[^\p{L}\p{N}]+/u).filter(Boolean);
    if (parts.length > 1) return parts.map((p) => [...p][0]).join('').slice(0, Math.max(4, n));
    return [...v].slice(0, n).join('');
  };
  const known = test === undefined ? undefined : CATALOGUE_BY_NAME.get(test);
  const siblings = known ? allVerdicts(known).filter((v) => v !== verdict) : [];
  for (let n = 3; n < verdict.length; n++) {
    const mine = short(verdict, n);
    if (!siblings.some((v) => short(v, n) === mine)) return mine;
  }
  return short(verdict, verdict.length);
}

// ---------------------------------------------------------------------------------------------
// HTML helpers

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text or attribute value as HTML: the five special characters escaped, control characters (not allowed in HTML) replaced. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '\uFFFD');
}

const attr = (name: string, value: string | number): string => ` ${name}="${escapeHtml(String(value))}"`;

export const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

function css(): string {
  const classes = (Object.keys(VERDICT_COLOURS) as Array<keyof typeof VERDICT_COLOURS>)
    .map((c) => `.v-${c} { background: ${VERDICT_COLOURS[c]}; color: ${TEXT_COLOURS[c]}; }`).join('\n');
  return `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #212529; margin: 0 1.5em 3em; }
h1 { margin: 0.6em 0 0.2em; }
h2 { margin-top: 1.6em; border-bottom: 1px solid #dee2e6; padding-bottom: 0.2em; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 0.1em 1em; margin: 0.5em 0; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; }
nav a { margin-right: 1em; }
.note { color: #495057; max-width: 70em; }
.truncated { background: #fff3bf; border-left: 4px solid #f59f00; padding: 0.4em 0.8em; color: #212529; }
.scroll { overflow-x: auto; }
table.heatmap { border-collapse: separate; border-spacing: 2px; }
table.heatmap th { font-weight: 600; }
table.heatmap th.test-h { vertical-align: bottom; padding: 0 0 0.3em; font-size: 12px; }
table.heatmap th.test-h span { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; }
table.heatmap th.test-h a { color: inherit; text-decoration: none; border-left: 1px dotted #868e96; }
table.heatmap th.path-h { text-align: left; vertical-align: bottom; }
table.heatmap th.port-h { font-size: 10px; font-weight: normal; color: #495057; }
table.heatmap th.path { text-align: left; white-space: nowrap; position: sticky; left: 0; background: #fff; padding-right: 0.6em; font-weight: normal; }
td.cell { width: 2.8em; min-width: 2.8em; height: 1.7em; padding: 0; text-align: center; font: 11px/1.7em ui-monospace, "DejaVu Sans Mono", monospace; }
td.cell a { display: block; color: inherit; text-decoration: none; }
td.cell a:hover { outline: 2px solid #1c7ed6; }
td.v-none { background: #fff; outline: 1px dotted #ced4da; outline-offset: -1px; }
${classes}
.chip { display: inline-block; width: 1em; height: 1em; vertical-align: -0.15em; margin-right: 0.4em; border-radius: 2px; }
.chip.v-none { background: #fff; outline: 1px dotted #868e96; outline-offset: -1px; }
ul.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 0.3em 1.5em; }
table.paper { border-collapse: collapse; }
table.paper th, table.paper td { padding: 0.15em 0.7em; }
table.paper thead th { border-bottom: 1px solid #495057; text-align: center; }
table.paper tbody th { text-align: left; font-weight: 600; }
table.paper td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.paper td.empty { color: #adb5bd; }
table.paper tr.first-of-test > * { border-top: 1px solid #dee2e6; }
table.paper tr.inconclusive td { color: #868e96; }
.drill { border: 1px solid #dee2e6; border-radius: 4px; padding: 0.4em 1em; margin: 0.8em 0; }
.drill:target { outline: 3px solid #1c7ed6; background: #f1f8ff; }
.drill h4 { margin: 0.3em 0; }
.drill pre { overflow-x: auto; background: #f8f9fa; padding: 0.5em; margin: 0.3em 0; font-size: 12px; }
.drill dl { display: grid; grid-template-columns: max-content auto; gap: 0 1em; margin: 0.3em 0; }
.drill dt { color: #495057; }
.drill dd { margin: 0; }
.verdict { padding: 0 0.35em; border-radius: 3px; }
.l-direction { font-weight: 700; }
.l-note { color: #868e96; }
.l-row { color: #495057; }
.d-interference { color: #c92a2a; font-weight: 700; }
.d-isn-offset { color: #5f3dc4; }
.back { font-size: 12px; }
`;
}

// ---------------------------------------------------------------------------------------------
// The data

export interface ReportOptions {
  /** The database as named in the header (default: the store's path). */
  database?: string;
  /** The table's column blocks (the heatmap is per path anyway). */
  groupBy?: GroupBy;
  /** Paths shown in the heatmap; default 500. */
  maxPaths?: number;
  /** Drill-down sections embedded; default 2000. */
  maxDrilldown?: number;
  /** Default: now. */
  generatedAt?: Date;
  /** Default: this build's version. */
  toolVersion?: string;
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

/** The stored test behind a heatmap cell. */
interface CellSource {
  testId: number;
  runId: string;
  verdict: string;
}

interface HeatmapCell {
  verdict: string | null;
  cls: VerdictClass;
  source?: CellSource;
  /** The drill-down section's id, when embedded. */
  anchor?: string;
}

interface HeatmapRow {
  path: string;
  kind: PathKind;
  id: string;
  cells: HeatmapCell[];
}

const columnKey = (test: string, port: number): string => `${test}\u0000${port}`;

/** A run's tests, the one stored last first (the order visitLatestResults reads a run's results backwards in). */
type TestsOfRun = Statement<[string], { id: number; name: string; port: number; verdict: string }>;

/**
 * The stored test that counts for each test and port of a path whose runs are `runIds` (newest first),
 * chosen by the same LatestResults as the compare data the heatmap shows.
 */
function latestTests(statement: TestsOfRun, runIds: readonly string[]): LatestResults<CellSource> {
  const latest = new LatestResults<CellSource>();
  for (const runId of runIds) {
    for (const t of statement.all(runId)) latest.offer(columnKey(t.name, t.port), t.verdict === INCONCLUSIVE, { testId: t.id, runId, verdict: t.verdict });
  }
  return latest;
}

function heatmapRows(store: Store, compare: CompareData, maxPaths: number, maxDrilldown: number): { rows: HeatmapRow[]; results: number; embedded: number } {
  const keys = new Map<string, string[]>();
  for (const [key, runIds] of runsByPath(store)) {
    const { kind, name } = describePath(key);
    const k = `${kind}\u0000${name}`;
    if (!keys.has(k)) keys.set(k, runIds);
  }
  const testsOfRun: TestsOfRun = store.db.prepare('SELECT id, name, port, verdict FROM tests WHERE run_id = ? ORDER BY id DESC');
  let results = 0;
  let embedded = 0;
  const rows = compare.paths.slice(0, maxPaths).map((p, pi): HeatmapRow => {
    const sources = latestTests(testsOfRun, keys.get(`${p.kind}\u0000${p.path}`) ?? []);
    const cells = p.verdicts.map((verdict, ci): HeatmapCell => {
      const column = compare.columns[ci];
      const cell: HeatmapCell = { verdict, cls: classifyVerdict(column.test, verdict) };
      if (verdict === null) return cell;
      results++;
      const source = sources.get(columnKey(column.test, column.port));
      // Always the same verdict (the same choice, made the same way); a mismatch would only mean no link.
      if (source && source.verdict === verdict) {
        cell.source = source;
        if (embedded < maxDrilldown) {
          cell.anchor = `r-${pi}-${ci}`;
          embedded++;
        }
      }
      return cell;
    });
    return { path: p.path, kind: p.kind, id: `p-${pi}`, cells };
  });
  return { rows, results, embedded };
}

// ---------------------------------------------------------------------------------------------
// Rendering

/** The report and what it holds (for the CLI's one-line summary). */
export function buildReport(store: Store, options: ReportOptions = {}): { html: string; summary: ReportSummary } {
  const maxPaths = options.maxPaths ?? DEFAULT_MAX_PATHS;
  const maxDrilldown = options.maxDrilldown ?? DEFAULT_MAX_DRILLDOWN;
  const database = options.database ?? store.path;
  const generatedAt = options.generatedAt ?? new Date();
  const toolVersion = options.toolVersion ?? TOOL_VERSION;

  const table = computeTable(store, { groupBy: options.groupBy });
  const compare = computeCompare(store);
  const { rows, results, embedded } = heatmapRows(store, compare, maxPaths, maxDrilldown);
  const tests = [...new Set(compare.columns.map((c) => c.test))];
  const ports = [...new Set(compare.columns.map((c) => c.port))].sort((a, b) => a - b);
  const runStats = runStatistics(store);

  const summary: ReportSummary = {
    runs: runStats.initiator, paths: compare.paths.length, heatmapPaths: rows.length, tests: tests.length, ports: ports.length,
    columns: compare.columns.length, results, drilldowns: embedded,
  };

  const drilldownNote = results > embedded
    ? `Drill-down is embedded for ${embedded} of the ${results} results in the heatmap (the first ones, row by row); `
      + `the other ${plural(results - embedded, 'cell')} have no link. Each cell's tooltip names its run: see its segments and diffs with `
      + `mbprobe-results diffs --db ${database} --run RUN --test TEST --port PORT, or write the report again with a larger --max-drilldown.`
    : null;

  const out: string[] = [];
  out.push(
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${CSP}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<meta name="generator"${attr('content', `mbprobe-results ${toolVersion}`)}>`,
    `<title>mbprobe report: ${escapeHtml(basename(database))}</title>`,
    `<style>${css()}</style>`,
    '</head>',
    '<body>',
    '<header>',
    '<h1>mbprobe report</h1>',
    '<dl class="meta">',
    `<dt>Database</dt><dd><code id="database">${escapeHtml(database)}</code></dd>`,
    `<dt>Generated</dt><dd><time id="generated"${attr('datetime', generatedAt.toISOString())}>${escapeHtml(generatedAt.toISOString())}</time> by mbprobe-results ${escapeHtml(toolVersion)}</dd>`,
    `<dt>Runs</dt><dd id="runs"${attr('data-runs', runStats.initiator)}>${escapeHtml(describeRuns(runStats))}</dd>`,
    `<dt>Paths</dt><dd id="paths"${attr('data-paths', compare.paths.length)}>${compare.paths.length}${rows.length < compare.paths.length ? ` (the heatmap shows the first ${rows.length})` : ''}</dd>`,
    `<dt>Tests</dt><dd>${escapeHtml(`${plural(tests.length, 'test')} on ${plural(ports.length, 'port')}${ports.length ? ` (${ports.join(', ')})` : ''}`)}</dd>`,
  );
  if (runStats.versions.length > 0) out.push(`<dt>Measured with</dt><dd>${escapeHtml(describeVersions(runStats.versions))}</dd>`);
  out.push('</dl>', '<nav><a href="#heatmap">Heatmap</a><a href="#table">Table</a><a href="#drilldown">Drill-down</a></nav>', '</header>');

  out.push(...heatmapHtml(compare, rows, tests, maxPaths, drilldownNote));
  out.push(...tableHtml(table));
  out.push(...drilldownHtml(store, compare, rows, tests, database, drilldownNote));

  out.push(
    '<footer><p class="note">Written by mbprobe-results report. Self-contained: no scripts and no network loads; everything is in this file.</p></footer>',
    '</body>',
    '</html>',
    '',
  );
  return { html: out.join('\n'), summary };
}

/** The report as one HTML document. */
export function renderReport(store: Store, options: ReportOptions = {}): string {
  return buildReport(store, options).html;
}

interface RunStatistics {
  initiator: number;
  responder: number;
  first: string | null;
  last: string | null;
  versions: Array<{ version: string; runs: number }>;
}

function runStatistics(store: Store): RunStatistics {
  const counts = store.db.prepare<[], { initiator: number; responder: number; first: string | null; last: string | null }>(`
SELECT COALESCE(SUM(role IS NULL OR role <> 'responder'), 0) AS initiator, COALESCE(SUM(role = 'responder'), 0) AS responder,
  MIN(CASE WHEN role IS NULL OR role <> 'responder' THEN started_at END) AS first,
  MAX(CASE WHEN role IS NULL OR role <> 'responder' THEN started_at END) AS last
FROM (SELECT started_at, json_extract(host_info, '$.role') AS role FROM runs)`).get()!;
  const versions = store.db.prepare<[], { version: string; runs: number }>(
    `SELECT tool_version AS version, COUNT(*) AS runs FROM runs WHERE coalesce(json_extract(host_info, '$.role'), '') <> 'responder'
     GROUP BY tool_version ORDER BY runs DESC, version`).all();
  return { ...counts, versions };
}

function describeRuns(stats: RunStatistics): string {
  const span = stats.first === null ? '' : stats.first === stats.last ? `, started ${stats.first}` : `, started ${stats.first} to ${stats.last}`;
  const responder = stats.responder > 0 ? `; ${plural(stats.responder, 'responder run')} (not paths)` : '';
  return `${plural(stats.initiator, 'initiator run')}${span}${responder}`;
}

function describeVersions(versions: RunStatistics['versions']): string {
  const shown = versions.slice(0, 8).map((v) => `${v.version} (${plural(v.runs, 'run')})`);
  return versions.length > 8 ? `${shown.join(', ')}, and ${versions.length - 8} other versions` : shown.join(', ');
}

function legendHtml(): string {
  const items = (['clean', 'interference', 'broken', 'inconclusive', 'unknown', 'none'] as const)
    .map((c) => `<li><span class="chip v-${c}"></span>${escapeHtml(CLASS_DESCRIPTIONS[c])}</li>`);
  return `<ul class="legend" id="legend">${items.join('')}</ul>`;
}

function heatmapHtml(compare: CompareData, rows: HeatmapRow[], tests: string[], maxPaths: number, drilldownNote: string | null): string[] {
  const out = ['<section id="heatmap">', '<h2>Heatmap: paths × tests</h2>'];
  out.push('<p class="note">One row per path, one column per test and responder port; each cell is the path\'s latest conclusive verdict (its abbreviation; the whole verdict in its tooltip) and links to its drill-down.</p>');
  out.push(legendHtml());
  if (compare.paths.length > rows.length) {
    out.push(`<p class="note truncated" id="heatmap-truncated">The heatmap shows the first ${rows.length} of the ${compare.paths.length} paths; `
      + `${plural(compare.paths.length - rows.length, 'path is', 'paths are')} left out (the table counts all of them). Write the report with a larger --max-paths to show more than ${maxPaths}.</p>`);
  }
  if (drilldownNote !== null) out.push(`<p class="note truncated">${escapeHtml(drilldownNote)}</p>`);
  if (compare.columns.length === 0) {
    out.push('<p class="empty">No results in this database.</p>', '</section>');
    return out;
  }
  const testIndex = new Map(tests.map((t, i) => [t, i]));
  const withDrilldown = new Set<string>();
  for (const r of rows) r.cells.forEach((c, i) => c.anchor && withDrilldown.add(compare.columns[i].test));

  out.push('<div class="scroll">', '<table class="heatmap">', '<thead>');
  const blocks: Array<{ test: string; ports: number }> = [];
  for (const c of compare.columns) {
    const last = blocks.at(-1);
    if (last && last.test === c.test) last.ports++;
    else blocks.push({ test: c.test, ports: 1 });
  }
  const testHeader = (test: string): string => {
    const name = escapeHtml(test);
    return withDrilldown.has(test) ? `<a href="#t-${testIndex.get(test)}">${name}</a>` : name;
  };
  out.push(`<tr><th rowspan="2" class="path-h">Path</th>${blocks.map((b) => `<th class="test-h"${attr('colspan', b.ports)}${attr('data-test', b.test)}><span>${testHeader(b.test)}</span></th>`).join('')}</tr>`);
  out.push(`<tr>${compare.columns.map((c) => `<th class="port-h"${attr('data-test', c.test)}${attr('data-port', c.port)}>${c.port}</th>`).join('')}</tr>`);
  out.push('</thead>', '<tbody>');
  for (const row of rows) {
    const cells = row.cells.map((cell, ci) => {
      const { test, port } = compare.columns[ci];
      const attrs = `${attr('class', `cell v-${cell.cls}`)}${attr('data-path', row.path)}${attr('data-test', test)}${attr('data-port', port)}${attr('data-verdict', cell.verdict ?? '')}`;
      if (cell.verdict === null) return `<td${attrs}${attr('title', `${test} on port ${port}: not run`)}></td>`;
      const run = cell.source ? `; run ${cell.source.runId}` : '';
      const title = `${test} on port ${port}: ${cell.verdict} (${CLASS_DESCRIPTIONS[cell.cls].split(' (')[0]})${run}`;
      const text = escapeHtml(abbreviateVerdict(cell.verdict, test));
      return `<td${attrs}${attr('title', title)}>${cell.anchor ? `<a href="#${cell.anchor}">${text}</a>` : text}</td>`;
    });
    out.push(`<tr${attr('id', row.id)}${attr('data-path', row.path)}${attr('data-path-kind', row.kind)}><th class="path" scope="row">${escapeHtml(row.path)}</th>${cells.join('')}</tr>`);
  }
  out.push('</tbody>', '</table>', '</div>');
  for (const note of compare.notes) out.push(`<p class="note">${escapeHtml(note)}</p>`);
  out.push('</section>');
  return out;
}

function tableHtml(data: TableData): string[] {
  const out = ['<section id="table">', '<h2>Table: behaviours × ports</h2>'];
  if (data.rows.length === 0) {
    out.push('<p class="empty">No results in this database.</p>', '</section>');
    return out;
  }
  const ports = [...new Set(data.columns.map((c) => c.port))];
  out.push('<div class="scroll">', '<table class="paper">', '<thead>');
  const top = data.groupBy === null
    ? `<th${attr('colspan', ports.length)}>Port</th>`
    : data.groups.map((g) => `<th${attr('colspan', ports.length)}${attr('data-group', g.value ?? NO_GROUP)}>${escapeHtml(g.value ?? NO_GROUP)} <span class="note">(${plural(g.paths, 'path')})</span></th>`).join('');
  out.push(`<tr><th rowspan="2">Test</th><th rowspan="2">Verdict</th>${top}</tr>`);
  out.push(`<tr>${data.columns.map((c) => `<th>${c.port}</th>`).join('')}</tr>`);
  out.push('</thead>', '<tbody>');
  let previous: string | undefined;
  for (const row of data.rows) {
    const first = row.test !== previous;
    previous = row.test;
    const cls = classifyVerdict(row.test, row.verdict);
    const classes = [first ? 'first-of-test' : '', row.inconclusive ? 'inconclusive' : ''].filter(Boolean).join(' ');
    const cells = row.cells.map((cell, i) => {
      const column = data.columns[i];
      const text = formatCell(cell, row.inconclusive);
      const group = data.groupBy === null ? '' : attr('data-group', column.group ?? NO_GROUP);
      return `<td${attr('class', text === null ? 'n empty' : 'n')}${attr('data-test', row.test)}${attr('data-verdict', row.verdict)}${group}${attr('data-port', column.port)}`
        + `${attr('data-n', cell.n)}${attr('data-total', cell.N)}>${text === null ? '–' : escapeHtml(text)}</td>`;
    });
    out.push(`<tr${classes ? attr('class', classes) : ''}><th scope="row">${first ? escapeHtml(row.test) : ''}</th>`
      + `<td><span${attr('class', `chip v-${cls}`)}></span>${escapeHtml(row.verdict)}</td>${cells.join('')}</tr>`);
  }
  out.push('</tbody>', '</table>', '</div>');
  if (data.groupBy !== null) out.push(`<p class="note">Grouped by ${escapeHtml(data.groupBy)}.</p>`);
  for (const note of data.notes) out.push(`<p class="note">${escapeHtml(note)}</p>`);
  out.push('</section>');
  return out;
}

function drilldownHtml(store: Store, compare: CompareData, rows: HeatmapRow[], tests: string[], database: string, drilldownNote: string | null): string[] {
  const out = ['<section id="drilldown">', '<h2>Drill-down</h2>'];
  out.push('<p class="note">Per test, the stored result behind each heatmap cell: its run, verdict and detail, and both sides\' segments aligned '
    + '(each segment one side sent, then what the other side received of it, then the field-level diff rows; interference rows in red). '
    + 'The same as mbprobe-results diffs prints.</p>');
  if (drilldownNote !== null) out.push(`<p class="note truncated" id="drilldown-truncated">${escapeHtml(drilldownNote)}</p>`);

  // Per test (in column order), its sections: path by path, each path's ports in order.
  const byTest = new Map<string, Array<{ row: HeatmapRow; ci: number; cell: HeatmapCell }>>();
  for (const row of rows) {
    row.cells.forEach((cell, ci) => {
      if (!cell.anchor) return;
      const test = compare.columns[ci].test;
      const list = byTest.get(test) ?? [];
      byTest.set(test, list);
      list.push({ row, ci, cell });
    });
  }
  if (byTest.size === 0) {
    out.push('<p class="empty">No drill-down sections embedded.</p>', '</section>');
    return out;
  }
  out.push(`<p>Tests: ${tests.filter((t) => byTest.has(t)).map((t) => `<a href="#t-${tests.indexOf(t)}">${escapeHtml(t)}</a> (${byTest.get(t)!.length})`).join(' · ')}</p>`);

  const testRow = store.db.prepare<[number], Omit<TestRow, 'detail'> & { detail: string | null }>(
    'SELECT id, run_id AS runId, seq, name, port, started_at AS startedAt, finished_at AS finishedAt, verdict, detail FROM tests WHERE id = ?');
  const runs = new Map<string, RunRow | undefined>();
  const runOf = (id: string): RunRow | undefined => {
    if (!runs.has(id)) runs.set(id, store.run(id));
    return runs.get(id);
  };
  tests.forEach((test, ti) => {
    const sections = byTest.get(test);
    if (!sections) return;
    out.push(`<div class="test"${attr('id', `t-${ti}`)}${attr('data-test', test)}>`, `<h3>${escapeHtml(test)}</h3>`);
    for (const { row, ci, cell } of sections) {
      const { port } = compare.columns[ci];
      const stored = testRow.get(cell.source!.testId);
      const run = runOf(cell.source!.runId);
      out.push(`<section class="drill"${attr('id', cell.anchor!)}${attr('data-path', row.path)}${attr('data-test', test)}${attr('data-port', port)}${attr('data-verdict', cell.verdict ?? '')}>`);
      out.push(`<h4>${escapeHtml(row.path)} · ${escapeHtml(test)} on port ${port}: <span${attr('class', `verdict v-${cell.cls}`)}>${escapeHtml(cell.verdict ?? '')}</span></h4>`);
      if (!stored || !run) {
        out.push('<p class="note">The stored test is gone from the database.</p>', '</section>');
        continue;
      }
      const test_: TestRow = { ...stored, detail: stored.detail === null ? null : JSON.parse(stored.detail) };
      out.push('<dl>',
        `<dt>Run</dt><dd><code>${escapeHtml(run.id)}</code>${run.label ? ` (label ${escapeHtml(run.label)})` : ''}, started ${escapeHtml(run.startedAt)}, measured with ${escapeHtml(run.toolVersion)}</dd>`,
        `<dt>Test</dt><dd>#${test_.seq} of the run, ${escapeHtml(test_.startedAt)} to ${escapeHtml(test_.finishedAt)}</dd>`,
        `<dt>Verdict</dt><dd>${escapeHtml(test_.verdict)} (${escapeHtml(CLASS_DESCRIPTIONS[cell.cls])})</dd>`,
        `<dt>Same in text</dt><dd><code>${escapeHtml(`mbprobe-results diffs --db ${database} --run ${run.id} --test ${test} --port ${port}`)}</code></dd>`,
        '</dl>');
      if (test_.detail === null || test_.detail === undefined) {
        out.push('<p class="note">No detail.</p>');
      } else {
        let json = JSON.stringify(test_.detail, null, 2);
        if (json.length > MAX_DETAIL_CHARS) json = `${json.slice(0, MAX_DETAIL_CHARS)}\n… (${json.length - MAX_DETAIL_CHARS} more characters: see the database)`;
        out.push(`<details open><summary>Detail</summary><pre class="detail">${escapeHtml(json)}</pre></details>`);
      }
      const lines = alignTest(store, run, test_).filter((l) => l.kind !== 'title' && l.kind !== 'detail');
      out.push(`<pre class="segments">${lines.map(lineHtml).join('\n')}</pre>`);
      out.push(`<p class="back"><a${attr('href', `#${row.id}`)}>↑ back to ${escapeHtml(row.path)} in the heatmap</a></p>`, '</section>');
    }
    out.push('</div>');
  });
  out.push('</section>');
  return out;
}

function lineHtml(line: AlignedLine): string {
  if (line.kind === 'blank') return '';
  const cls = line.kind === 'row' ? `l-row d-${line.diffClass}` : `l-${line.kind}`;
  return `<span${attr('class', cls)}>${escapeHtml(line.text)}</span>`;
}

// ---------------------------------------------------------------------------------------------
// CLI

function parseCount(text: string, option: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError('BAD_NUMBER', `${option}: "${text}" is not a whole number (0 or more)`);
  return Number(text);
}

function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} kB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** Adds `report` to mbprobe-results. */
export function registerReportCommand(program: Command, io: CliIo): Command {
  return program.command('report')
    .description('write one self-contained HTML file (no scripts, no network loads): the paper table, a heatmap of paths × tests coloured by verdict, and per test a drill-down to the segments and diffs behind each verdict')
    .argument('<db>', 'an mbprobe database (an initiator\'s, or several merged)')
    .option('--out <file>', 'the HTML file to write', 'report.html')
    .option('--group-by <attribute>', 'in the table, one block of port columns per value of label, or of tag:KEY')
    .option('--max-paths <n>', 'paths shown in the heatmap (the table counts all of them)', String(DEFAULT_MAX_PATHS))
    .option('--max-drilldown <n>', 'drill-down sections embedded: the first results in heatmap order (0 for none)', String(DEFAULT_MAX_DRILLDOWN))
    .action((db: string, opts: { out: string; groupBy?: string; maxPaths: string; maxDrilldown: string }) => {
      const groupBy = opts.groupBy === undefined ? undefined : parseGroupBy(opts.groupBy);
      const maxPaths = parsePositiveInt(opts.maxPaths, '--max-paths');
      const maxDrilldown = parseCount(opts.maxDrilldown, '--max-drilldown');
      if (resolve(opts.out) === resolve(db)) {
        throw new UsageError('OUT_IS_DATABASE', `--out ${opts.out} is the database itself: give another file, e.g. --out report.html`);
      }
      const store = openResults(db);
      let report: ReturnType<typeof buildReport>;
      try {
        report = buildReport(store, { database: db, groupBy, maxPaths, maxDrilldown });
      } finally {
        store.close();
      }
      try {
        writeFileSync(opts.out, report.html);
      } catch (error) {
        throw new UsageError('CANNOT_WRITE', `cannot write ${opts.out}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
      }
      const s = report.summary;
      const shown = s.heatmapPaths < s.paths ? ` (${s.heatmapPaths} in the heatmap)` : '';
      io.stdout(`wrote ${opts.out} (${formatSize(Buffer.byteLength(report.html))}): ${plural(s.paths, 'path')}${shown}, `
        + `${plural(s.tests, 'test')} on ${plural(s.ports, 'port')}, ${plural(s.runs, 'run')}, ${plural(s.drilldowns, 'drill-down section')}`
        + `${s.drilldowns < s.results ? ` of ${s.results} results` : ''}${groupBy ? `; table grouped by ${formatGroupBy(groupBy)}` : ''}\n`);
    });
}
