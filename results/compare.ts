/**
 * `mbprobe-results compare`: one row per path, one column per test and port, the verdicts side by side.
 *
 * This module also holds what `table` (results/table.ts) shares with it: what a path is, which of a
 * path's results counts (visitLatestResults), the catalogue ordering of tests and verdicts, opening a
 * results database, and the text renderers (Markdown, CSV, LaTeX) of a grid of cells.
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
import { existsSync } from 'node:fs';
import { plural, UsageError } from '../shared/cli.js';
import { Store, StoreError } from '../shared/store.js';
import { SHARED_VERDICTS } from '../initiator/test-case.js';
import { CATALOGUE } from '../initiator/catalogue/index.js';

export const FORMATS = ['markdown', 'latex', 'csv', 'json'] as const;
export type Format = (typeof FORMATS)[number];

export const INCONCLUSIVE = 'inconclusive';

/** A run attribute to group by: the label, or one of the tags given at run time (`--tag KEY=VALUE`). */
export type GroupBy = { kind: 'label' } | { kind: 'tag'; key: string };

export function parseGroupBy(text: string): GroupBy {
  if (text === 'label') return { kind: 'label' };
  if (text.startsWith('tag:') && text.length > 4) return { kind: 'tag', key: text.slice(4) };
  throw new UsageError('BAD_GROUP_BY', `--group-by ${text}: give label or tag:KEY (e.g. tag:country)`);
}

export function formatGroupBy(groupBy: GroupBy): string {
  return groupBy.kind === 'label' ? 'label' : `tag:${groupBy.key}`;
}

/** Opens a results database read-only; a missing or unreadable file is a usage error naming it. */
export function openResults(path: string): Store {
  if (!existsSync(path)) throw new UsageError('DATABASE_NOT_FOUND', `no mbprobe database at ${path}: check the path`);
  try {
    return Store.open(path, { readonly: true });
  } catch (error) {
    if (error instanceof StoreError) throw new UsageError(error.code, error.message);
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Paths and the results that count

export type PathKind = 'label' | 'address' | 'run';

/** Separators of the per-run result strings (control characters no test name, port or verdict contains). */
const FIELD = '\x1f';
const RECORD = '\x1e';
const INCONCLUSIVE_SUFFIX = `${FIELD}${INCONCLUSIVE}`;

/**
 * Initiator runs newest first: `[id, path key, group value]`. Path keys are 'l' + label,
 * 'a' + source + ' ' + observed address, or 'r' + run id (see describePath).
 */
function runPathsSql(groupBy?: GroupBy): { sql: string; params: string[] } {
  const grp = groupBy === undefined ? 'NULL'
    : groupBy.kind === 'label' ? "NULLIF(label, '')"
    : "(SELECT CAST(value AS TEXT) FROM json_each(runs.tags) WHERE key = ? AND type <> 'null')";
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
    NULLIF(CAST(json_extract(host_info, '$.observedAddress') AS TEXT), '') AS obs,
    json_extract(host_info, '$.role') AS role
  FROM runs
)
WHERE role IS NULL OR role <> 'responder'
ORDER BY started_at DESC, id DESC`;
  return { sql, params: groupBy?.kind === 'tag' ? [groupBy.key] : [] };
}

/** A result line as visitLatestResults gives it. */
export function parseResultLine(line: string): { name: string; port: number; verdict: string } {
  const last = line.lastIndexOf(FIELD);
  const before = line.lastIndexOf(FIELD, last - 1);
  return { name: line.slice(0, before), port: Number(line.slice(before + 1, last)), verdict: line.slice(last + 1) };
}

/**
 * Calls `visit` once per group value and path with the results that count (one line per test and
 * port; read them with parseResultLine): per test and port, the latest conclusive result of the
 * path's runs in that group, or its latest inconclusive one when it has nothing else. Paths with
 * the same single run's worth of results get the same array, so callers may count by identity.
 *
 * Two queries: the runs with their path and group (one row per run, newest first) and every run's
 * results as one string (GROUP BY run_id follows the tests_run_id index, so nothing is sorted, and
 * within a run the results come in the order they were stored). The merge per path is then done on
 * one string per run. Doing it all in SQL (GROUP BY path, test, port, then GROUP BY verdict) sorts
 * every test row: about 2.5 s for 1.5 million tests on a 2-core machine, against about 1.3 s here.
 */
export function visitLatestResults(
  store: Store, groupBy: GroupBy | undefined, visit: (group: string | null, path: string, lines: readonly string[]) => void,
): void {
  const { sql, params } = runPathsSql(groupBy);
  const runs = store.db.prepare<string[], [string, string, string | null]>(sql).raw().all(...params);
  const results = new Map(store.db.prepare<[], [string, string]>(
    `SELECT run_id, group_concat(name || '${FIELD}' || port || '${FIELD}' || verdict, '${RECORD}') FROM tests GROUP BY run_id`).raw().all());
  const byGroup = new Map<string | null, Map<string, string[]>>();
  for (const [id, path, group] of runs) {
    const lines = results.get(id);
    if (lines === undefined) continue;
    let paths = byGroup.get(group);
    if (!paths) byGroup.set(group, (paths = new Map()));
    const list = paths.get(path);
    if (list) list.push(lines);
    else paths.set(path, [lines]);
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
  const { sql, params } = runPathsSql(undefined);
  const byPath = new Map<string, string[]>();
  for (const [id, path] of store.db.prepare<string[], [string, string, string | null]>(sql).raw().all(...params)) {
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

/** The lines that count of one path's runs (newest first, each its lines joined by RECORD). */
function mergeRuns(newestFirst: readonly string[]): string[] {
  const latest = new LatestResults<string>();
  for (const joined of newestFirst) {
    const lines = joined.split(RECORD);
    for (let i = lines.length - 1; i >= 0; i--) {
      const line = lines[i];
      latest.offer(line.slice(0, line.lastIndexOf(FIELD)), line.endsWith(INCONCLUSIVE_SUFFIX), line);
    }
  }
  return latest.items();
}

/** What a path key stands for and how to name it. */
export function describePath(key: string): { kind: PathKind; name: string } {
  const rest = key.slice(1);
  if (key.startsWith('l')) return { kind: 'label', name: rest };
  if (key.startsWith('a')) {
    const [source, observed] = rest.split(' ');
    return { kind: 'address', name: source === observed ? source : `${source} (seen as ${observed})` };
  }
  return { kind: 'run', name: `run ${rest}` };
}

const PATH_KIND_ORDER: Record<PathKind, number> = { label: 0, address: 1, run: 2 };

export function comparePathKeys(a: string, b: string): number {
  const ka = describePath(a).kind;
  const kb = describePath(b).kind;
  return PATH_KIND_ORDER[ka] - PATH_KIND_ORDER[kb] || codePointCompare(a, b);
}

export function codePointCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Catalogue order

const CATALOGUE_INDEX = new Map(CATALOGUE.map((t, i) => [t.name, i]));

/** Catalogue tests in catalogue order, then any other test (e.g. from --test-file) by name. */
export function compareTests(a: string, b: string): number {
  const ia = CATALOGUE_INDEX.get(a) ?? Number.MAX_SAFE_INTEGER;
  const ib = CATALOGUE_INDEX.get(b) ?? Number.MAX_SAFE_INTEGER;
  return ia - ib || codePointCompare(a, b);
}

/** A test's own verdicts in its order, then verdicts it does not declare by name, then the shared ones in order. */
export function compareVerdicts(test: string): (a: string, b: string) => number {
  const own = CATALOGUE[CATALOGUE_INDEX.get(test) ?? -1]?.verdicts ?? [];
  const rank = (v: string): number => {
    const shared = (SHARED_VERDICTS as readonly string[]).indexOf(v);
    if (shared >= 0) return 2000 + shared;
    const i = own.indexOf(v);
    return i >= 0 ? i : 1000;
  };
  return (a, b) => rank(a) - rank(b) || codePointCompare(a, b);
}

// ---------------------------------------------------------------------------------------------
// Rendering a grid of text cells

/** A table as text: stub columns on the left, data columns in blocks (a title over several columns). */
export interface Grid {
  stub: string[];
  blocks: Array<{ title: string | null; columns: string[] }>;
  /** In LaTeX, spanned over all data columns when no block has a title (e.g. 'Port'). */
  columnCaption?: string;
  align: 'l' | 'r';
  /** null: nothing to show (rendered '-' in Markdown, '--' in LaTeX, empty in CSV). */
  rows: Array<{ stub: string[]; cells: Array<string | null> }>;
  notes: string[];
}

/** Escapes LaTeX's special characters; the ones without a text command in OT1 go through math mode, so no extra font is needed. */
export function latexEscape(text: string): string {
  return text.replace(/[\\{}&%$#_^~<>|]/g, (c) => {
    switch (c) {
      case '\\': return '$\\backslash$';
      case '^': return '\\^{}';
      case '~': return '\\~{}';
      case '<': case '>': case '|': return `$${c}$`;
      default: return `\\${c}`;
    }
  });
}

export function markdownEscape(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

export function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

const headerCells = (grid: Grid): string[] =>
  grid.blocks.flatMap((b) => b.columns.map((c) => (b.title === null ? c : `${b.title}:${c}`)));

export function renderMarkdown(grid: Grid): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  const header = [...grid.stub, ...headerCells(grid)].map(markdownEscape);
  const rule = [...grid.stub.map(() => '---'), ...headerCells(grid).map(() => (grid.align === 'r' ? '--:' : '---'))];
  const rows = grid.rows.map((r) => line([...r.stub, ...r.cells.map((c) => c ?? '-')].map(markdownEscape)));
  const notes = grid.notes.length ? `\n${grid.notes.join('\n')}\n` : '';
  return `${[line(header), line(rule), ...rows].join('\n')}\n${notes}`;
}

export function renderCsv(grid: Grid): string {
  const line = (cells: string[]): string => cells.map(csvField).join(',');
  return [line([...grid.stub, ...headerCells(grid)]), ...grid.rows.map((r) => line([...r.stub, ...r.cells.map((c) => c ?? '')]))]
    .map((l) => `${l}\n`).join('');
}

/**
 * A booktabs tabular, ready for `\input` inside the caller's table float (needs `\usepackage{booktabs}`).
 * The notes come first as comments, to be used in the caption. With several stub columns the first
 * is shown only where it changes, and \addlinespace separates its runs.
 */
export function renderLatex(grid: Grid): string {
  const stubCount = grid.stub.length;
  const dataCount = grid.blocks.reduce((n, b) => n + b.columns.length, 0);
  const row = (cells: string[]): string => `${cells.join(' & ')} \\\\`;
  const out: string[] = [
    '% Generated by mbprobe-results; needs \\usepackage{booktabs}.',
    ...grid.notes.map((n) => `% ${n}`),
    `\\begin{tabular}{${'l'.repeat(stubCount)}${grid.align.repeat(dataCount)}}`,
    '\\toprule',
  ];
  const empties = grid.stub.map(() => '');
  if (dataCount > 0 && grid.blocks.some((b) => b.title !== null)) {
    let at = stubCount + 1;
    const spans: string[] = [];
    const rules: string[] = [];
    for (const b of grid.blocks) {
      if (b.columns.length === 0) continue;
      spans.push(`\\multicolumn{${b.columns.length}}{c}{${latexEscape(b.title ?? '')}}`);
      rules.push(`\\cmidrule(lr){${at}-${at + b.columns.length - 1}}`);
      at += b.columns.length;
    }
    out.push(row([...empties, ...spans]), rules.join(' '));
  } else if (dataCount > 0 && grid.columnCaption !== undefined) {
    out.push(row([...empties, `\\multicolumn{${dataCount}}{c}{${latexEscape(grid.columnCaption)}}`]),
      `\\cmidrule(lr){${stubCount + 1}-${stubCount + dataCount}}`);
  }
  out.push(row([...grid.stub, ...grid.blocks.flatMap((b) => b.columns)].map(latexEscape)), '\\midrule');
  let previous: string | undefined;
  for (const r of grid.rows) {
    const stub = r.stub.map(latexEscape);
    if (stubCount > 1) {
      if (previous !== undefined && r.stub[0] !== previous) out.push('\\addlinespace');
      if (r.stub[0] === previous) stub[0] = '';
      previous = r.stub[0];
    }
    out.push(row([...stub, ...r.cells.map((c) => (c === null ? '--' : latexEscape(c)))]));
  }
  out.push('\\bottomrule', '\\end{tabular}');
  return `${out.join('\n')}\n`;
}

export function renderGrid(grid: Grid, format: Exclude<Format, 'json'>): string {
  switch (format) {
    case 'markdown': return renderMarkdown(grid);
    case 'csv': return renderCsv(grid);
    case 'latex': return renderLatex(grid);
  }
}

// ---------------------------------------------------------------------------------------------
// compare

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

export function computeCompare(store: Store, options: CompareOptions = {}): CompareData {
  const rows: Array<{ path: string; name: string; port: number; verdict: string }> = [];
  visitLatestResults(store, undefined, (_group, path, lines) => {
    for (const line of lines) rows.push({ path, ...parseResultLine(line) });
  });
  const columnKey = (name: string, port: number): string => `${name}\u0000${port}`;
  const columns = new Map<string, CompareColumn>();
  const byPath = new Map<string, Map<string, string>>();
  for (const r of rows) {
    const key = columnKey(r.name, r.port);
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
      const key = columnKey(c.test, c.port);
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
    return { ...describePath(key), verdicts: ordered.map((c) => verdicts.get(columnKey(c.test, c.port)) ?? null) };
  }).map(({ name, kind, verdicts }) => ({ path: name, kind, verdicts }));
  const notes = [
    `${plural(paths.length, 'path')}: a path is a run label, or for unlabeled runs the initiator's address; each cell is the path's latest conclusive verdict for the test on that port (inconclusive only if it has nothing else; no verdict if it never ran it).`,
  ];
  if (onlyDifferent) notes.push('Only the columns where paths disagree (inconclusive and missing results are not disagreements).');
  return { onlyDifferent, columns: ordered, paths, notes };
}

export function compareGrid(data: CompareData): Grid {
  const blocks: Grid['blocks'] = [];
  for (const c of data.columns) {
    const last = blocks.at(-1);
    if (last && last.title === c.test) last.columns.push(String(c.port));
    else blocks.push({ title: c.test, columns: [String(c.port)] });
  }
  return { stub: ['Path'], blocks, align: 'l', rows: data.paths.map((p) => ({ stub: [p.path], cells: p.verdicts })), notes: data.notes };
}

export function renderCompare(data: CompareData, format: Format): string {
  return format === 'json' ? `${JSON.stringify(data, null, 2)}\n` : renderGrid(compareGrid(data), format);
}
