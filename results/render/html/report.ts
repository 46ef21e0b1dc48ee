/**
 * The HTML report (`mbprobe-results report`): one self-contained file, the paper table, a heatmap of
 * paths × tests and ports coloured by verdict class (results/verdicts.ts), and per test a drill-down
 * to each result's run, detail and aligned segments with their diff rows (the lines of `diffs`).
 *
 * Self-contained means no network loads and no scripts: inline CSS only, a Content-Security-Policy
 * that forbids everything else, navigation by anchors (:target highlights the section a cell links
 * to). Everything from the database (labels, addresses, tags, test names, verdicts, details, decoded
 * segments) reaches the page through the templates' escaped output (templates.ts, engine.ts).
 *
 * Heatmap cells carry machine-checkable attributes: `class="cell v-clean|v-interference|v-broken|
 * v-intercepted|v-inconclusive|v-unknown|v-none"`, `data-path`, `data-test`, `data-port`,
 * `data-verdict` (empty when the path never ran the test on that port); each row is
 * `<tr data-path=...>`.
 *
 * Bounded for big databases (read/report.ts): a visible note says what the heatmap and the
 * drill-down left out.
 */
import { basename } from 'node:path';
import { plural } from '../../../shared/cli.js';
import { NO_GROUP } from '../../grouping.js';
import type { TestEvidence } from '../../read/evidence.js';
import type { HopTableData } from '../../read/hops.js';
import type { HeatmapRow, ReportData } from '../../read/report.js';
import type { TableData } from '../../read/table.js';
import { allVerdictsOf, CLASS_DESCRIPTIONS, classifyVerdict, INCONCLUSIVE, VERDICT_CLASSES, type VerdictClass } from '../../verdicts.js';
import { alignTest, type AlignedLine } from '../aligned.js';
import { formatCell } from '../table.js';
import { templateEngine } from './engine.js';
import { STYLE_SHEET } from './style.js';
import { TEMPLATES } from './templates.js';

/** Pretty-printed details longer than this are cut (the whole detail is in the database). */
const MAX_DETAIL_CHARS = 20_000;

export interface ReportPage {
  /** The database as named in the header and in the commands the report suggests. */
  database: string;
  generatedAt: Date;
  toolVersion: string;
  /** The --max-paths the heatmap was cut at (named in its note). */
  maxPaths: number;
}

const engine = templateEngine(TEMPLATES);

/** The report as one HTML document. */
export function renderReportHtml(data: ReportData, page: ReportPage): string {
  const { compare, rows, runs } = data;
  const tests = [...new Set(compare.columns.map((c) => c.test))];
  const ports = [...new Set(compare.columns.map((c) => c.port))].sort((a, b) => a - b);
  const drilldownNote = data.results > data.embedded
    ? `Drill-down is embedded for ${data.embedded} of the ${data.results} results in the heatmap (the first ones, row by row); `
      + `the other ${plural(data.results - data.embedded, 'cell')} have no link. Each cell's tooltip names its run: see its segments and diffs with `
      + `mbprobe-results diffs ${page.database} --run RUN --test TEST --port PORT, or write the report again with a larger --max-drilldown.`
    : null;
  const span = runs.first === null ? '' : runs.first === runs.last ? `, started ${runs.first}` : `, started ${runs.first} to ${runs.last}`;
  const responder = runs.responder > 0 ? `; ${plural(runs.responder, 'responder run')} (not paths)` : '';
  const versions = runs.versions.slice(0, 8).map((v) => `${v.version} (${plural(v.runs, 'run')})`).join(', ');
  return engine.render('@document', {
    generator: `mbprobe-results ${page.toolVersion}`,
    title: basename(page.database),
    styleSheet: STYLE_SHEET,
    database: page.database,
    generatedAt: page.generatedAt.toISOString(),
    toolVersion: page.toolVersion,
    runs: runs.initiator,
    runsText: `${plural(runs.initiator, 'initiator run')}${span}${responder}`,
    paths: compare.paths.length,
    pathsText: `${compare.paths.length}${rows.length < compare.paths.length ? ` (the heatmap shows the first ${rows.length})` : ''}`,
    testsText: `${plural(tests.length, 'test')} on ${plural(ports.length, 'port')}${ports.length ? ` (${ports.join(', ')})` : ''}`,
    measuredWith: runs.versions.length === 0 ? null
      : runs.versions.length > 8 ? `${versions}, and ${runs.versions.length - 8} other versions` : versions,
    heatmap: heatmapView(data, tests, page.maxPaths, drilldownNote),
    table: tableView(data.table, data.hops),
    drilldown: drilldownView(data, tests, page.database, drilldownNote),
  });
}

function heatmapView(data: ReportData, tests: string[], maxPaths: number, drilldownNote: string | null) {
  const { compare, rows } = data;
  const withDrilldown = new Set<string>();
  for (const r of rows) r.cells.forEach((c, i) => c.anchor && withDrilldown.add(compare.columns[i].test));
  const blocks: Array<{ test: string; ports: number; anchor: string | null }> = [];
  for (const c of compare.columns) {
    const last = blocks.at(-1);
    if (last && last.test === c.test) last.ports++;
    else blocks.push({ test: c.test, ports: 1, anchor: withDrilldown.has(c.test) ? testAnchor(tests, c.test) : null });
  }
  const left = compare.paths.length - rows.length;
  return {
    legend: VERDICT_CLASSES.map((cls) => ({ cls, text: CLASS_DESCRIPTIONS[cls] })),
    pathsNote: left > 0
      ? `The heatmap shows the first ${rows.length} of the ${compare.paths.length} paths; ${plural(left, 'path is', 'paths are')} left out `
        + `(the table counts all of them). Write the report with a larger --max-paths to show more than ${maxPaths}.`
      : null,
    drilldownNote,
    blocks,
    columns: compare.columns,
    rows: rows.map((row) => ({
      id: row.id, path: row.path, kind: row.kind,
      cells: row.cells.map((cell, ci) => {
        const { test, port } = compare.columns[ci];
        const run = cell.runId === undefined ? '' : `; run ${cell.runId}`;
        return {
          cls: cell.cls, test, port, verdict: cell.verdict ?? '', anchor: cell.anchor ?? null,
          title: cell.verdict === null ? `${test} on port ${port}: not run`
            : `${test} on port ${port}: ${cell.verdict} (${CLASS_DESCRIPTIONS[cell.cls].split(' (')[0]})${run}`,
          text: cell.verdict === null ? '' : abbreviateVerdict(cell.verdict, test),
        };
      }),
    })),
    notes: compare.notes,
  };
}

/** The hop column's text for a behaviour: where its localised results are, "first hop 2 · core 1", "" when none. */
function whereText(hops: HopTableData, test: string, verdict: string): string {
  const row = hops.rows.find((r) => r.test === test && r.verdict === verdict);
  if (!row) return '';
  return row.cells.map((c, i) => (c.n === 0 ? '' : `${hops.positions[i]} ${c.n}`)).filter(Boolean).join(' · ');
}

function tableView(data: TableData, hops: HopTableData | null) {
  const ports = [...new Set(data.columns.map((c) => c.port))];
  let previous: string | undefined;
  return {
    // Where on the path (run --locate): a column beside the ports, counted over paths, only when some result was localised.
    where: hops === null ? null : { note: hops.notes[1] },
    ports: ports.length,
    groups: data.groupBy === null ? null : data.groups.map((g) => ({ name: g.value ?? NO_GROUP, paths: plural(g.paths, 'path') })),
    columnPorts: data.columns.map((c) => c.port),
    rows: data.rows.map((row) => {
      const first = row.test !== previous;
      previous = row.test;
      return {
        classes: [first ? 'first-of-test' : '', row.inconclusive ? 'inconclusive' : ''].filter(Boolean).join(' '),
        test: first ? row.test : '',
        cls: classifyVerdict(row.test, row.verdict),
        verdict: row.verdict,
        where: hops === null ? null : whereText(hops, row.test, row.verdict),
        cells: row.cells.map((cell, i) => {
          const column = data.columns[i];
          const text = formatCell(cell, row.inconclusive);
          return {
            cls: text === null ? 'n empty' : 'n', test: row.test, verdict: row.verdict,
            group: data.groupBy === null ? null : column.group ?? NO_GROUP, port: column.port, n: cell.n, total: cell.N, text: text ?? '–',
          };
        }),
      };
    }),
    groupedBy: data.groupBy,
    notes: data.notes,
  };
}

function drilldownView(data: ReportData, tests: string[], database: string, note: string | null) {
  // Per test (in column order), its sections: path by path, each path's ports in order.
  const byTest = new Map<string, Array<ReturnType<typeof sectionView>>>();
  for (const row of data.rows) {
    row.cells.forEach((cell, ci) => {
      if (!cell.anchor) return;
      const { test, port } = data.compare.columns[ci];
      const list = byTest.get(test) ?? [];
      byTest.set(test, list);
      list.push(sectionView(row, cell.anchor, test, port, cell.verdict ?? '', cell.cls, cell.evidence ?? null, database));
    });
  }
  return {
    note,
    tests: tests.filter((t) => byTest.has(t)).map((name) => ({ name, anchor: testAnchor(tests, name), sections: byTest.get(name)! })),
  };
}

function sectionView(row: HeatmapRow, anchor: string, test: string, port: number, verdict: string, cls: VerdictClass, evidence: TestEvidence | null, database: string) {
  const common = { anchor, path: row.path, test, port, verdict, cls, back: row.id };
  if (evidence === null) return { ...common, stored: null };
  const { run, test: stored } = evidence;
  let detail: string | null = null;
  if (stored.detail !== null && stored.detail !== undefined) {
    detail = JSON.stringify(stored.detail, null, 2);
    if (detail.length > MAX_DETAIL_CHARS) detail = `${detail.slice(0, MAX_DETAIL_CHARS)}\n… (${detail.length - MAX_DETAIL_CHARS} more characters: see the database)`;
  }
  const location = (stored.detail as { location?: { summary?: unknown } } | null)?.location?.summary;
  return {
    ...common,
    stored: {
      where: typeof location === 'string' ? location : null,
      run: run.id, label: run.label || null, runStartedAt: run.startedAt, toolVersion: run.toolVersion,
      seq: stored.seq, startedAt: stored.startedAt, finishedAt: stored.finishedAt, verdict: stored.verdict, meaning: CLASS_DESCRIPTIONS[cls],
      command: `mbprobe-results diffs ${database} --run ${run.id} --test ${test} --port ${port}`,
      detail,
      lines: alignTest(evidence).filter((l) => l.kind !== 'title' && l.kind !== 'detail').map(lineView),
    },
  };
}

/** A line of the aligned segments with its class (null: a blank line). */
function lineView(line: AlignedLine): { cls: string | null; text: string } {
  if (line.kind === 'blank') return { cls: null, text: '' };
  return { cls: line.kind === 'row' ? `l-row d-${line.diffClass}` : `l-${line.kind}`, text: line.text };
}

const testAnchor = (tests: readonly string[], test: string): string => `t-${tests.indexOf(test)}`;

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
  const siblings = test === undefined ? [] : allVerdictsOf(test).filter((v) => v !== verdict);
  for (let n = 3; n < verdict.length; n++) {
    const mine = short(verdict, n);
    if (!siblings.some((v) => short(v, n) === mine)) return mine;
  }
  return short(verdict, verdict.length);
}
