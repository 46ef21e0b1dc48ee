/** `mbprobe-results table`: the paper table (read/table.ts) in a format (render/table.ts). */
import { Option, type Command } from 'commander';
import type { CliIo } from '../../shared/cli.js';
import { openDatabase } from '../read/database.js';
import { computeTable } from '../read/table.js';
import { FORMATS, type Format } from '../render/grid.js';
import { renderTable } from '../render/table.js';
import { databasePath, parseGroupBy, withDatabase } from './options.js';

export const formatOption = (): Option => new Option('--format <format>', 'output format').choices(FORMATS).default('markdown');

export function registerTableCommand(program: Command, io: CliIo): Command {
  return withDatabase(program.command('table'))
    .description('the paper table: one row per behaviour (test and verdict), one column per port, each cell "n / N (p%)" of paths (a path is a run label, or the initiator\'s address)')
    .addOption(formatOption())
    .option('--group-by <attribute>', 'one block of port columns per value of label, or of tag:KEY (a tag given with mbprobe-initiator run --tag KEY=VALUE)')
    .action((db: string | undefined, opts: { db?: string; format: Format; groupBy?: string }) => {
      const groupBy = opts.groupBy === undefined ? undefined : parseGroupBy(opts.groupBy);
      const store = openDatabase(databasePath(db, opts.db));
      try {
        io.stdout(renderTable(computeTable(store, { groupBy }), opts.format));
      } finally {
        store.close();
      }
    });
}
