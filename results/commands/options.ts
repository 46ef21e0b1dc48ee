/** What the results commands' command lines share: the database argument, ports, grouping, output files. */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parsePortList, UsageError } from '../../shared/cli.js';
import { DEFAULT_DB_PATH, type Store } from '../../shared/store.js';
import type { GroupBy } from '../grouping.js';
import { openDatabase } from '../read/database.js';
import { resultsInput, type ResultsInput } from '../read/results.js';

/**
 * Every command that reads one database takes it the same way: as its first argument, or with
 * `--db FILE` (the same; giving both, different, is a usage error); without either, the initiator's
 * default database.
 */
export function withDatabase(command: Command): Command {
  return command
    .argument('[db]', `an mbprobe database: an initiator's, a responder's, or several merged (default: ${DEFAULT_DB_PATH}, the initiator's)`)
    .option('--db <path>', 'the database, as an option (the same as giving it as the first argument)');
}

/** The database a command named (see withDatabase). */
export function databasePath(positional: string | undefined, option: string | undefined): string {
  if (positional !== undefined && option !== undefined && positional !== option) {
    throw new UsageError('TWO_DATABASES', `two databases given, ${positional} and --db ${option}: give one`);
  }
  return positional ?? option ?? DEFAULT_DB_PATH;
}

/**
 * table and compare also read Parquet datasets (`export --format parquet`): their first arguments are
 * one database, or one or more dataset directories read as one; `--db` is the same as one argument.
 */
export function withResultsInput(command: Command): Command {
  return command
    .argument('[input...]', `an mbprobe database (default: ${DEFAULT_DB_PATH}, the initiator's), or one or more Parquet datasets (directories written by export --format parquet), read as one`)
    .option('--db <path>', 'the database or dataset, as an option (the same as giving it as the first argument)');
}

/** What a command of withResultsInput named. */
export function resultsInputOf(positionals: readonly string[], option: string | undefined): ResultsInput {
  if (positionals.length <= 1) return resultsInput([databasePath(positionals[0], option)]);
  if (option !== undefined && !positionals.includes(option)) {
    throw new UsageError('TWO_DATABASES', `${positionals.join(', ')} and --db ${option} given: give the inputs as arguments, or one with --db`);
  }
  return resultsInput(positionals);
}

/** Opens the database a command named (read-only), reads it with `read`, and closes it. */
export function readDatabase<T>(positional: string | undefined, option: string | undefined, read: (store: Store) => T): T {
  const store = openDatabase(databasePath(positional, option));
  try {
    return read(store);
  } finally {
    store.close();
  }
}

export function parsePort(text: string, option = '--port'): number {
  const ports = parsePortList(text, option);
  if (ports.length !== 1) throw new UsageError('BAD_PORT', `${option}: give one port, e.g. ${option} 34343`);
  return ports[0];
}

export function parseGroupBy(text: string): GroupBy {
  if (text === 'label') return { kind: 'label' };
  if (text.startsWith('tag:') && text.length > 4) return { kind: 'tag', key: text.slice(4) };
  throw new UsageError('BAD_GROUP_BY', `--group-by ${text}: give label or tag:KEY (e.g. tag:country)`);
}

/** Writes a command's output file; a file that cannot be written is a usage error naming it. */
export function writeOutput(path: string, content: string | Uint8Array): void {
  try {
    writeFileSync(path, content);
  } catch (error) {
    throw new UsageError('CANNOT_WRITE', `cannot write ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}
