/** `mbprobe-results merge OUT IN...`: every run of the inputs into OUT, each once (write/merge.ts). */
import type { Command } from 'commander';
import { plural, type CliIo } from '../../shared/cli.js';
import { MbprobeError } from '../../shared/wire/errors.js';
import { formatMergeReport } from '../render/merge.js';
import { mergeDatabases } from '../write/merge.js';

/** Adds `merge OUT IN...` to mbprobe-results. Exit 0: all merged; 1: something refused or the merge stopped; 2: usage. */
export function registerMergeCommand(program: Command, io: CliIo): void {
  program.command('merge')
    .description('merge mbprobe databases (volunteers\' files, responders\' databases) into one: each run is copied once, ' +
      'in one transaction; a run already there is skipped, or refused when its content differs; files that are not ' +
      'mbprobe databases of this schema version are refused. Exit 0 if everything merged, 1 if anything was refused.')
    .argument('<out>', 'the database to merge into; created (with its directory) if missing')
    .argument('<inputs...>', 'databases to merge from; only read')
    .option('--json', 'print the report as JSON')
    .action((outPath: string, inPaths: string[], opts: { json?: boolean }) => {
      const report = mergeDatabases(outPath, inPaths);
      io.stdout(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatMergeReport(report));
      if (report.aborted) {
        throw new MbprobeError('MERGE_STOPPED', `merge into ${outPath} stopped: ${report.aborted.reason}`);
      }
      if (!report.complete) {
        const t = report.totals;
        throw new MbprobeError('MERGE_INCOMPLETE',
          `${plural(t.filesRefused, 'input file')} and ${plural(t.runsRefused, 'run')} refused (see the report); everything else is in ${outPath}`);
      }
    });
}
