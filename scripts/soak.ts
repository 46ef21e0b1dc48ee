/**
 * Repetition runs over a lossy, delayed, reordering lab path: does any verdict claim interference
 * that the path's profile does not cause? Runs the real responder and initiator `--runs` times across
 * one lab of `--profile` with the WAN emulator (`--wan`), and counts, per test and port, the verdicts
 * that differ from the profile's expected table (lab/expectations.ts): a verdict of interference
 * the profile does not cause is a false claim (exit 1); inconclusive is allowed and counted.
 * Run through `scripts/soak` (as root). Too slow for CI: run it before resolving, report its figures.
 */
import { Command } from 'commander';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createLab, formatWanSpec, measureAcrossLab, parseWanSpec, PROFILES, removeStaleLabs } from '../lab/index.js';
import { accepts, expectedVerdict } from '../lab/expectations.js';

interface Tally {
  test: string;
  port: number;
  expected: string;
  /** verdict -> how many runs gave it */
  seen: Map<string, number>;
}

async function main(argv: string[]): Promise<number> {
  const program = new Command('scripts/soak')
    .description('Runs the full catalogue N times across one lab path with the WAN emulator and counts every verdict that differs from what the profile causes.')
    .option('--profile <name>', `lab profile (${Object.keys(PROFILES).join(', ')})`, 'clean')
    .option('--wan <spec>', 'WAN emulator on the initiator\'s link (lab/wan.ts)', 'delay=20ms,jitter=30ms,loss=10%')
    .option('--runs <n>', 'runs in a row', '10')
    .option('--tests <list>', 'test cases', 'all')
    .option('--ports <list>', 'responder ports', '34343,80,443')
    .option('--family <4|6>', 'IP version of the path', '4')
    .option('--concurrency <n>', 'the initiator\'s --concurrency (default: its own)')
    .option('--out <dir>', 'where the databases go', 'results/soak')
    .parse(argv, { from: 'user' });
  const o = program.opts<{ profile: string; wan: string; runs: string; tests: string; ports: string; family: string; concurrency?: string; out: string }>();
  if (!PROFILES[o.profile]) {
    process.stderr.write(`scripts/soak: unknown profile ${o.profile}\n`);
    return 2;
  }
  const runs = Number(o.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    process.stderr.write(`scripts/soak: --runs must be a positive integer, got ${o.runs}\n`);
    return 2;
  }
  let wan;
  try {
    wan = parseWanSpec(o.wan);
  } catch (e) {
    process.stderr.write(`scripts/soak: ${(e as Error).message}\n`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('scripts/soak: the lab needs root: run it with sudo\n');
    return 2;
  }
  mkdirSync(resolve(o.out), { recursive: true });
  const workDir = mkdtempSync(join(resolve(o.out), `${o.profile}-`));
  await removeStaleLabs();
  const lab = await createLab({ profile: o.profile, wan });
  const tallies = new Map<string, Tally>();
  let falseClaims = 0;
  let inconclusive = 0;
  let total = 0;
  const started = Date.now();
  try {
    process.stderr.write(`soak: ${runs} runs of ${o.profile} with ${formatWanSpec(wan)} (lab ${lab.id}, databases in ${workDir})\n`);
    for (let r = 1; r <= runs; r++) {
      const runStarted = Date.now();
      const m = await measureAcrossLab(lab, {
        workDir, tests: o.tests, ...(o.concurrency ? { concurrency: Number(o.concurrency) } : {}), family: Number(o.family) === 6 ? 6 : 4,
        initiatorArgs: ['--ports', o.ports],
      });
      let runFalse = 0;
      for (const v of m.verdicts) {
        total++;
        const expected = expectedVerdict(o.profile, v.test, v.port);
        const key = `${v.test}:${v.port}`;
        const t = tallies.get(key) ?? { test: v.test, port: v.port, expected, seen: new Map() };
        t.seen.set(v.verdict, (t.seen.get(v.verdict) ?? 0) + 1);
        tallies.set(key, t);
        if (v.verdict === 'inconclusive') inconclusive++;
        else if (!accepts(expected, v.verdict)) {
          runFalse++;
          process.stderr.write(`  run ${r}: ${key} ${v.verdict} (expected ${expected}) ${JSON.stringify(v.detail).slice(0, 400)}\n`);
        }
      }
      falseClaims += runFalse;
      process.stderr.write(`run ${r}/${runs}: ${m.verdicts.length} verdicts, ${runFalse} unexpected, ${m.verdicts.filter((v) => v.verdict === 'inconclusive').length} inconclusive, ${((Date.now() - runStarted) / 1000).toFixed(1)} s\n`);
    }
  } finally {
    await lab.destroy();
  }
  const rows = [...tallies.values()].filter((t) => [...t.seen.keys()].some((v) => !accepts(t.expected, v)));
  process.stdout.write(`${o.profile} with ${formatWanSpec(wan)}: ${runs} runs, ${total} verdicts, ${falseClaims} unexpected, ${inconclusive} inconclusive (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  for (const t of rows) process.stdout.write(`  ${`${t.test}:${t.port}`.padEnd(30)} expected ${t.expected.padEnd(14)} ${[...t.seen].map(([v, n]) => `${v} ${n}`).join(', ')}\n`);
  return falseClaims === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`scripts/soak: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
