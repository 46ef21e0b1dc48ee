/** `mbprobe-results compare`: every path's verdicts side by side (read/compare.ts, render/compare.ts). */
import type { Command } from 'commander';
import type { CliIo } from '../../shared/cli.js';
import { computeCompare } from '../read/compare.js';
import { renderCompare } from '../render/compare.js';
import type { Format } from '../render/grid.js';
import { readDatabase, withDatabase } from './options.js';
import { formatOption } from './table.js';

export function registerCompareCommand(program: Command, io: CliIo): Command {
  return withDatabase(program.command('compare'))
    .description('the verdicts of every path side by side: one row per path, one column per test and port')
    .addOption(formatOption())
    .option('--only-different', 'only the columns where paths disagree (inconclusive and missing results are not disagreements)')
    .action((db: string | undefined, opts: { db?: string; format: Format; onlyDifferent?: boolean }) => {
      const data = readDatabase(db, opts.db, (store) => computeCompare(store, { onlyDifferent: opts.onlyDifferent ?? false }));
      io.stdout(renderCompare(data, opts.format));
    });
}
