/** `mbprobe-results inspect FILE`: every packet of a pcapng capture as a tcpdump-like line. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { UsageError, type CliIo } from '../../shared/cli.js';
import { inspectPcapng } from '../read/inspect.js';
import { formatInspection } from '../render/inspect.js';

export function registerInspectCommand(program: Command, io: CliIo): Command {
  return program.command('inspect')
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
}
