import { Command } from 'commander';
import { processIo, runProgram, TOOL_VERSION, type CliIo } from '../shared/cli.js';
import { registerCompareCommand } from './commands/compare.js';
import { registerDiffsCommand } from './commands/diffs.js';
import { registerExportCommand } from './commands/export.js';
import { registerInspectCommand } from './commands/inspect.js';
import { registerMergeCommand } from './commands/merge.js';
import { registerReportCommand } from './commands/report.js';
import { registerTableCommand } from './commands/table.js';

export function buildProgram(io: CliIo): Command {
  const program = new Command('mbprobe-results')
    .description('Looks at what mbprobe measured: merges volunteers\' databases, compares paths, produces the tables for a paper, shows and exports the segments behind a verdict.')
    .version(TOOL_VERSION);
  registerTableCommand(program, io);
  registerCompareCommand(program, io);
  registerMergeCommand(program, io);
  registerDiffsCommand(program, io);
  registerExportCommand(program, io);
  registerReportCommand(program, io);
  registerInspectCommand(program, io);
  return program;
}

export function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  return runProgram(buildProgram(io), argv, io);
}
