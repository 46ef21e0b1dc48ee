/** `mbprobe-results report DB --out report.html`: the HTML report (read/report.ts, render/html/report.ts). */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { parsePositiveInt, plural, TOOL_VERSION, UsageError, type CliIo } from '../../shared/cli.js';
import type { Store } from '../../shared/store.js';
import { formatGroupBy, type GroupBy } from '../grouping.js';
import { DEFAULT_MAX_DRILLDOWN, DEFAULT_MAX_PATHS, readReport, summarizeReport, type ReportSummary } from '../read/report.js';
import { renderReportHtml } from '../render/html/report.js';
import { databasePath, parseGroupBy, readDatabase, withDatabase, writeOutput } from './options.js';

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

/** The report and what it holds (for the CLI's one-line summary). */
export function buildReport(store: Store, options: ReportOptions = {}): { html: string; summary: ReportSummary } {
  const maxPaths = options.maxPaths ?? DEFAULT_MAX_PATHS;
  const data = readReport(store, { groupBy: options.groupBy, maxPaths, maxDrilldown: options.maxDrilldown });
  const html = renderReportHtml(data, {
    database: options.database ?? store.path,
    generatedAt: options.generatedAt ?? new Date(),
    toolVersion: options.toolVersion ?? TOOL_VERSION,
    maxPaths,
  });
  return { html, summary: summarizeReport(data) };
}

/** The report as one HTML document. */
export function renderReport(store: Store, options: ReportOptions = {}): string {
  return buildReport(store, options).html;
}

function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} kB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function registerReportCommand(program: Command, io: CliIo): Command {
  return withDatabase(program.command('report'))
    .description('write one self-contained HTML file (no scripts, no network loads): the paper table, a heatmap of paths × tests coloured by verdict, and per test a drill-down to the segments and diffs behind each verdict')
    .option('--out <file>', 'the HTML file to write', 'report.html')
    .option('--group-by <attribute>', 'in the table, one block of port columns per value of label, or of tag:KEY')
    .option('--max-paths <n>', 'paths shown in the heatmap (the table counts all of them)', String(DEFAULT_MAX_PATHS))
    .option('--max-drilldown <n>', 'drill-down sections embedded: the first results in heatmap order (0 for none)', String(DEFAULT_MAX_DRILLDOWN))
    .action((positional: string | undefined, opts: { db?: string; out: string; groupBy?: string; maxPaths: string; maxDrilldown: string }) => {
      const db = databasePath(positional, opts.db);
      const groupBy = opts.groupBy === undefined ? undefined : parseGroupBy(opts.groupBy);
      const maxPaths = parsePositiveInt(opts.maxPaths, '--max-paths');
      const maxDrilldown = parsePositiveInt(opts.maxDrilldown, '--max-drilldown', 0);
      if (resolve(opts.out) === resolve(db)) {
        throw new UsageError('OUT_IS_DATABASE', `--out ${opts.out} is the database itself: give another file, e.g. --out report.html`);
      }
      const report = readDatabase(db, undefined, (store) => buildReport(store, { database: db, groupBy, maxPaths, maxDrilldown }));
      writeOutput(opts.out, report.html);
      const s = report.summary;
      const shown = s.heatmapPaths < s.paths ? ` (${s.heatmapPaths} in the heatmap)` : '';
      io.stdout(`wrote ${opts.out} (${formatSize(Buffer.byteLength(report.html))}): ${plural(s.paths, 'path')}${shown}, `
        + `${plural(s.tests, 'test')} on ${plural(s.ports, 'port')}, ${plural(s.runs, 'run')}, ${plural(s.drilldowns, 'drill-down section')}`
        + `${s.drilldowns < s.results ? ` of ${s.results} results` : ''}${groupBy ? `; table grouped by ${formatGroupBy(groupBy)}` : ''}\n`);
    });
}
