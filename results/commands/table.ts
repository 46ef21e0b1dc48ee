/** `mbprobe-results table`: the paper table (read/table.ts, of a database or datasets: read/results.ts) in a format (render/table.ts). */
import { Option, type Command } from 'commander';
import type { CliIo } from '../../shared/cli.js';
import { COUNTED_BY, type CountedBy } from '../read/paths.js';
import { readTable } from '../read/results.js';
import { FORMATS, type Format } from '../render/grid.js';
import { renderTable } from '../render/table.js';
import { readHopTable } from '../read/hops.js';
import { renderHopTable } from '../render/hops.js';
import { UsageError } from '../../shared/cli.js';
import { parseGroupBy, readDatabase, resultsInputOf, withResultsInput } from './options.js';

export const formatOption = (): Option => new Option('--format <format>', 'output format').choices(FORMATS).default('markdown');

export function registerTableCommand(program: Command, io: CliIo): Command {
  return withResultsInput(program.command('table'))
    .description('the paper table: one row per behaviour (test and verdict), one column per port, each cell "n / N (p%)" of paths (a path is a run label, or the initiator\'s address)')
    .addOption(formatOption())
    .option('--group-by <attribute>', 'one block of port columns per value of label, or of tag:KEY (a tag given with mbprobe-initiator run --tag KEY=VALUE)')
    .addOption(new Option('--by <unit>', 'what the cells count: paths (a run label or initiator address; a scan\'s path to each server is one), or the servers scans probed (target)').choices(COUNTED_BY).default('path'))
    .option('--by-hop', 'where on the path each interference is (localised by mbprobe-initiator run --locate): columns first hop, access network, core, last hop; a database only')
    .action(async (inputs: string[], opts: { db?: string; format: Format; groupBy?: string; by: CountedBy; byHop?: boolean }) => {
      if (opts.byHop) {
        const input = resultsInputOf(inputs, opts.db);
        if (input.kind !== 'database') throw new UsageError('ONE_DATABASE', '--by-hop reads a database (its hop findings are in tests.detail): give the database, or merge first');
        if (opts.groupBy !== undefined || opts.by !== 'path') throw new UsageError('BAD_GROUP_BY', '--by-hop counts paths, without --group-by or --by target');
        io.stdout(readDatabase(input.path, undefined, (store) => renderHopTable(readHopTable(store), opts.format)));
        return;
      }
      const groupBy = opts.groupBy === undefined ? undefined : parseGroupBy(opts.groupBy);
      io.stdout(renderTable(await readTable(resultsInputOf(inputs, opts.db), { groupBy, by: opts.by }), opts.format));
    });
}
