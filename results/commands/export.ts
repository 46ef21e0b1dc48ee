/** `mbprobe-results export`: a run's segments from both sides in one pcapng or jsonl file, or the whole database as a Parquet dataset. */
import { Option, type Command } from 'commander';
import { UsageError, type CliIo } from '../../shared/cli.js';
import type { SegmentRow, Store } from '../../shared/store.js';
import { readExport, type ExportOptions } from '../read/export.js';
import { renderDatasetSummary, renderJsonl, renderPcapng } from '../render/export.js';
import { exportParquet } from '../write/parquet.js';
import { parsePort, readDatabase, withDatabase, writeOutput } from './options.js';

/** A run's (or one test's) segments as pcapng (see renderPcapng). Throws UsageError for an unknown run or test. */
export function exportPcapng(store: Store, runId: string | undefined, options: ExportOptions = {}): Uint8Array {
  return renderPcapng(readExport(store, runId, options), options);
}

/** The same segments as jsonl, one JSON object per segment and line, with the frame numbers of exportPcapng. */
export function exportJsonl(store: Store, runId: string | undefined, options: ExportOptions = {}): string {
  return renderJsonl(readExport(store, runId, options));
}

export function registerExportCommand(program: Command, io: CliIo): Command {
  return withDatabase(program.command('export'))
    .description('write a run\'s segments from both sides in one file: pcapng (one interface per side, each packet commented with its diff rows; opens in Wireshark) or jsonl (one JSON object per segment); or the whole database as a Parquet dataset (--format parquet --out DIR: runs, tests, segments, diffs, one file per table and month of the runs; table and compare read it, so do DuckDB and BigQuery)')
    .addOption(new Option('--format <format>', 'output format').choices(['pcapng', 'jsonl', 'parquet']).makeOptionMandatory())
    .option('--run <id>', 'run id, or a unique prefix of one (may be omitted when the database holds one run)')
    .option('--test <name>', 'only this test (default: every test of the run)')
    .option('--port <port>', 'only tests on this responder port')
    .option('--out <file>', 'output file (required for pcapng; jsonl goes to stdout without it); for parquet, the dataset\'s directory (new, or empty)')
    .option('--responder-records', 'parquet: also export the responder\'s own records of what it received (they hold the volunteers\' whole addresses; left out by default)')
    .action((db: string | undefined, opts: { format: 'pcapng' | 'jsonl' | 'parquet'; db?: string; run?: string; test?: string; port?: string; out?: string; responderRecords?: boolean }) => {
      if (opts.format === 'parquet') {
        if (opts.out === undefined) throw new UsageError('OUT_REQUIRED', '--format parquet writes a directory: give it with --out DIR, e.g. --out campaign-dataset');
        const selection = (['run', 'test', 'port'] as const).filter((o) => opts[o] !== undefined);
        if (selection.length > 0) throw new UsageError('WHOLE_DATABASE', `--format parquet exports the whole database; --${selection[0]} selects runs or tests only for pcapng and jsonl`);
        const out = opts.out;
        const manifest = readDatabase(db, opts.db, (store) => exportParquet(store, out, {
          responderRecords: opts.responderRecords,
          onMonth: (month, done, months) => io.stderr(`exported ${month} (${done}/${months})\n`),
        }));
        io.stdout(renderDatasetSummary(manifest, out));
        return;
      }
      if (opts.responderRecords) throw new UsageError('PARQUET_ONLY', '--responder-records is for --format parquet');
      if (opts.format === 'pcapng' && opts.out === undefined) {
        throw new UsageError('OUT_REQUIRED', '--format pcapng writes a binary file: give it with --out FILE, e.g. --out run.pcapng');
      }
      const options: ExportOptions = { test: opts.test, port: opts.port === undefined ? undefined : parsePort(opts.port) };
      const collected = readDatabase(db, opts.db, (store) => readExport(store, opts.run, options));
      const output = opts.format === 'pcapng' ? renderPcapng(collected, options) : renderJsonl(collected);
      if (opts.out === undefined) {
        io.stdout(output as string);
        return;
      }
      writeOutput(opts.out, output);
      const on = (side: SegmentRow['side']): number => collected.segments.filter((e) => e.segment.side === side).length;
      io.stdout(`wrote ${collected.segments.length} segments (initiator ${on('initiator')}, responder ${on('responder')}) ` +
        `of ${collected.tests.length} test(s) of run ${collected.run.id} to ${opts.out}\n`);
    });
}
