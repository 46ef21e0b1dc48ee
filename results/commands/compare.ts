/** `mbprobe-results compare`: every path's verdicts side by side (read/compare.ts, of a database or datasets: read/results.ts; render/compare.ts). */
import type { Command } from 'commander';
import type { CliIo } from '../../shared/cli.js';
import { readCompare } from '../read/results.js';
import { renderCompare } from '../render/compare.js';
import type { Format } from '../render/grid.js';
import { resultsInputOf, withResultsInput } from './options.js';
import { formatOption } from './table.js';

export function registerCompareCommand(program: Command, io: CliIo): Command {
  return withResultsInput(program.command('compare'))
    .description('the verdicts of every path side by side: one row per path, one column per test and port')
    .addOption(formatOption())
    .option('--only-different', 'only the columns where paths disagree (inconclusive and missing results are not disagreements)')
    .action(async (inputs: string[], opts: { db?: string; format: Format; onlyDifferent?: boolean }) => {
      const data = await readCompare(resultsInputOf(inputs, opts.db), { onlyDifferent: opts.onlyDifferent ?? false });
      io.stdout(renderCompare(data, opts.format));
    });
}
