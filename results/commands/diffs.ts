/** `mbprobe-results diffs`: one test's segments on both sides, aligned, with every diff row. */
import type { Command } from 'commander';
import type { CliIo } from '../../shared/cli.js';
import type { Store } from '../../shared/store.js';
import { readEvidence } from '../read/evidence.js';
import { resolveRun, testsOfRun } from '../read/runs.js';
import { renderDiffs as renderAligned, type DiffsOptions } from '../render/aligned.js';
import { parsePort, readDatabase, withDatabase } from './options.js';

/**
 * What `diffs` prints for `test` of run `runId` (a unique prefix is enough): with several ports and no
 * `options.port`, every port's test, one after another. Throws UsageError for an unknown run or test.
 */
export function renderDiffs(store: Store, runId: string | undefined, test: string, options: DiffsOptions = {}): string {
  const run = resolveRun(store, runId);
  return renderAligned(testsOfRun(store, run, test, options.port).map((t) => readEvidence(store, run, t)), options);
}

export function registerDiffsCommand(program: Command, io: CliIo): Command {
  return withDatabase(program.command('diffs'))
    .description('show one test\'s segments on both sides, aligned, each followed by what the other side received of it and every field-level diff row: how to check a surprising verdict')
    .option('--run <id>', 'run id, or a unique prefix of one (may be omitted when the database holds one run)')
    .requiredOption('--test <name>', 'test name, e.g. syn-mss')
    .option('--port <port>', 'only the test on this responder port (default: every port the test ran on)')
    .option('--interference-only', 'hide rows of class expected (TTL, IP ID, valid checksums)')
    .action((db: string | undefined, opts: { db?: string; run?: string; test: string; port?: string; interferenceOnly?: boolean }) => {
      const port = opts.port === undefined ? undefined : parsePort(opts.port);
      const options = { port, interferenceOnly: opts.interferenceOnly ?? false };
      io.stdout(`${readDatabase(db, opts.db, (store) => renderDiffs(store, opts.run, opts.test, options))}\n`);
    });
}
