/**
 * `npm run bench`, results at scale (issue 13): generated databases of 100,000 and 10,000,000 test
 * results; `mbprobe-results table` over each through SQLite (the database) and through DuckDB (its
 * Parquet export), in the same run, each a process of its own: wall time (Node's start-up included)
 * and peak resident memory (ru_maxrss, DuckDB's native memory included), and whether both print the
 * same table (goal: 10,000,000 results in under 5 s). Then the export itself on databases with
 * segments at two sizes: its peak memory should not grow with the database (it streams one row group
 * at a time). Generated files are removed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statfsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../lab/index.js';
import { generateResultsDatabase } from '../test/helpers/synthetic.js';

/** Tests per generated run: 5 tests on 3 ports, 5% missing. */
const TESTS_PER_RUN = 5 * 3 * 0.95;
/** What the 10-million database and its dataset take on disk, with room to spare (measured: 1.6 GB and 0.12 GB). */
const BYTES_NEEDED_10M = 4 * 1024 ** 3;

interface Measured {
  seconds: number;
  maxRssMiB: number;
  stdout: string;
  code: number;
}

/**
 * mbprobe-results ARGV in a process of its own (the built CLI, as a researcher runs it), reporting
 * its peak resident memory: the wrapper prints ru_maxrss once main() returns.
 */
function results(argv: readonly string[]): Measured {
  const cli = join(projectRoot(), 'dist/results/cli.js');
  const wrapper = `const { main } = await import(${JSON.stringify(cli)});
let out = '';
let err = '';
const code = await main(process.argv.slice(1), { stdout: (t) => void (out += t), stderr: (t) => void (err += t) });
process.stdout.write(JSON.stringify({ code, out, err, maxRss: process.resourceUsage().maxRSS }));`;
  const started = process.hrtime.bigint();
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', wrapper, ...argv], { maxBuffer: 1024 ** 3, encoding: 'utf8' });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (child.status !== 0) throw new Error(`mbprobe-results ${argv.join(' ')} failed: ${child.stderr}`);
  const { code, out, err, maxRss } = JSON.parse(child.stdout) as { code: number; out: string; err: string; maxRss: number };
  if (code !== 0) throw new Error(`mbprobe-results ${argv.join(' ')} exited ${code}: ${err}`);
  return { seconds, maxRssMiB: maxRss / 1024, stdout: out, code };
}

const mib = (bytes: number): string => `${(bytes / 1024 ** 2).toFixed(0)} MiB`;
const sizeOf = (path: string): number => (statSync(path).isDirectory()
  ? readdirSync(path, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).reduce((sum, e) => sum + statSync(join(e.parentPath, e.name)).size, 0)
  : statSync(path).size);
const line = (label: string, m: Measured, extra = ''): string =>
  `    ${label.padEnd(44)} ${m.seconds.toFixed(2).padStart(7)} s  peak ${m.maxRssMiB.toFixed(0).padStart(5)} MiB${extra}`;

async function tableAtScale(dir: string, tests: number): Promise<void> {
  const db = join(dir, `results-${tests}.sqlite`);
  const dataset = join(dir, `dataset-${tests}`);
  const runs = Math.round(tests / TESTS_PER_RUN);
  let started = process.hrtime.bigint();
  generateResultsDatabase(db, runs);
  const generated = Number(process.hrtime.bigint() - started) / 1e9;
  const exported = results(['export', db, '--format', 'parquet', '--out', dataset]);
  const rows = /tests +(\d+) rows/.exec(exported.stdout)?.[1] ?? '?';
  console.log(`  ${Number(rows).toLocaleString('en')} test results in ${runs.toLocaleString('en')} runs over up to ${Math.round(runs / 3).toLocaleString('en')} paths; ` +
    `database ${mib(sizeOf(db))}, generated in ${generated.toFixed(1)} s; Parquet dataset ${mib(sizeOf(dataset))}`);
  console.log(line('export --format parquet', exported));
  for (const extra of [[], ['--group-by', 'tag:net']]) {
    const viaSqlite = results(['table', db, '--format', 'latex', ...extra]);
    const viaDuckdb = results(['table', dataset, '--format', 'latex', ...extra]);
    const label = ['table', ...extra].join(' ');
    console.log(line(`${label}, SQLite`, viaSqlite));
    console.log(line(`${label}, DuckDB over Parquet`, viaDuckdb,
      `  (${(viaSqlite.seconds / viaDuckdb.seconds).toFixed(1)}x; same table: ${viaSqlite.stdout === viaDuckdb.stdout ? 'yes' : 'NO'})`));
  }
  started = process.hrtime.bigint();
  rmSync(db, { force: true });
  rmSync(`${db}-wal`, { force: true });
  rmSync(`${db}-shm`, { force: true });
  rmSync(dataset, { recursive: true, force: true });
}

/** The export's peak memory on two databases with segments, the second four times the first. */
function exportMemory(dir: string): void {
  console.log('  export --format parquet of databases with segments (6 per test, 40 to 1,500 bytes) and 2 diff rows per test:');
  for (const runs of [5_000, 20_000]) {
    const db = join(dir, `segments-${runs}.sqlite`);
    const dataset = join(dir, `segments-${runs}`);
    generateResultsDatabase(db, runs, { segments: 6, diffs: 2 });
    const exported = results(['export', db, '--format', 'parquet', '--out', dataset]);
    const segments = /segments +(\d+) rows/.exec(exported.stdout)?.[1] ?? '?';
    console.log(line(`database ${mib(sizeOf(db))}, ${Number(segments).toLocaleString('en')} segments`, exported, `  dataset ${mib(sizeOf(dataset))}`));
    rmSync(db, { force: true });
    rmSync(dataset, { recursive: true, force: true });
  }
}

export async function resultsAtScale(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mbprobe-bench-scale-'));
  try {
    const { bavail, bsize } = statfsSync(dir);
    const sizes = bavail * bsize >= BYTES_NEEDED_10M ? [100_000, 10_000_000] : [100_000];
    console.log(`results at scale: table through SQLite and through DuckDB over the Parquet export, each a process of its own (wall time with start-up, peak RSS); ${mib(bavail * bsize)} free in ${tmpdir()}`);
    if (sizes.length === 1) console.log(`  10,000,000 results skipped: they need ${mib(BYTES_NEEDED_10M)} free`);
    for (const tests of sizes) await tableAtScale(dir, tests);
    exportMemory(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
