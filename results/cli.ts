import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { processIo, runProgram, TOOL_VERSION, UsageError, type CliIo } from '../shared/cli.js';
import { registerDiffsCommand } from './diffs.js';
import { registerExportCommand } from './export.js';
import { formatInspection, inspectPcapng } from './inspect.js';
import { registerMergeCommand } from './merge.js';
import { registerReportCommand } from './report.js';
import { registerTableCommands } from './table.js';

export function buildProgram(io: CliIo): Command {
  const program = new Command('mbprobe-results')
    .description('Looks at what mbprobe measured: merges volunteers\' databases, compares paths, produces the tables for a paper, shows and exports the segments behind a verdict.')
    .version(TOOL_VERSION);
  registerTableCommands(program, io);
  registerMergeCommand(program, io);
  registerDiffsCommand(program, io);
  registerExportCommand(program, io);
  registerReportCommand(program, io);
  program.command('inspect')
    .description('decode every packet of a pcapng capture (raw IP or Ethernet) as one tcpdump-like line, with decode issues and packet comments')
    .argument('<file>', 'a pcapng file, e.g. one exported by mbprobe or captured with dumpcap')
    .action((file: string) => {
      let bytes: Uint8Array;
      try {
        bytes = readFileSync(file);
      } catch (error) {
        throw new UsageError('FILE_NOT_FOUND', `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
      }
      io.stdout(`${formatInspection(inspectPcapng(bytes))}\n`);
    });
  return program;
}

export function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  return runProgram(buildProgram(io), argv, io);
}
