/**
 * The main job on its embedded default: build the lab (initiator — middlebox — responder network
 * namespaces), run the real mbprobe-responder and mbprobe-initiator across a clean path and across
 * middlebox paths, each volunteer submitting its run to the responder (`run --submit`) into one
 * collected database, and print the verdicts side by side and the paper table of the collected
 * database (`mbprobe-results table`). Run through `scripts/demo` (as root).
 */
import { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import PQueue from 'p-queue';
import { createLab, parseWanSpec, PROFILES, removeStaleLabs } from '../lab/index.js';
import { measureAcrossLab, type LabMeasurement } from '../lab/index.js';
import { TEST_PORTS } from '../shared/ports.js';
import { CATALOGUE } from '../initiator/catalogue/index.js';
import { renderReport } from '../results/commands/report.js';
import { computeTable } from '../results/read/table.js';
import { renderTable } from '../results/render/table.js';
import { Store } from '../shared/store.js';

export const DEMO_PROFILES = ['clean', 'clean+lossy', 'nat', 'strip-options', 'mss-clamp', 'drop-syn-data', 'synproxy', 'split-proxy', 'http-intercept'];
/** What `+lossy` puts under a profile: the WAN emulator on the initiator's link (lab/wan.ts). */
export const DEMO_WAN = 'delay=20ms,jitter=30ms,loss=10%';

async function main(argv: string[]): Promise<number> {
  const program = new Command('scripts/demo')
    .description('Runs mbprobe across a lab of real middleboxes and prints the verdict table.')
    .option('--profiles <list>', `lab paths to measure: a profile (${Object.keys(PROFILES).join(', ')}), or PROFILE+lossy for that profile over the WAN emulator`, DEMO_PROFILES.join(','))
    .option('--wan <spec>', 'what +lossy means: delay, jitter and loss of the WAN emulator on the initiator\'s link', DEMO_WAN)
    .option('--tests <list>', 'test cases (see mbprobe-initiator list)', 'all')
    .option('--out <dir>', 'where the SQLite databases go', 'results/demo')
    .option('--parallel <n>', 'labs measured at once', '3')
    .parse(argv, { from: 'user' });
  const opts = program.opts<{ profiles: string; wan: string; tests: string; out: string; parallel: string }>();
  const profiles = opts.profiles.split(',').map((p) => p.trim()).filter(Boolean);
  const profileOf = (path: string): string => path.replace(/\+lossy$/, '');
  const unknown = profiles.filter((p) => !PROFILES[profileOf(p)]);
  if (unknown.length) {
    process.stderr.write(`scripts/demo: unknown profile ${unknown.join(', ')}; available: ${Object.keys(PROFILES).join(', ')}\n`);
    return 2;
  }
  try {
    parseWanSpec(opts.wan);
  } catch (error) {
    process.stderr.write(`scripts/demo: ${(error as Error).message}\n`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('scripts/demo: the lab needs root (network namespaces, raw sockets): run it with sudo\n');
    return 2;
  }
  const workDir = resolve(opts.out);
  mkdirSync(workDir, { recursive: true });
  // Every lab's responder stores the submitted runs in this one file, as one public responder would.
  const collected = join(workDir, 'collected.sqlite');
  await removeStaleLabs();
  const started = Date.now();
  const queue = new PQueue({ concurrency: Math.max(1, Number(opts.parallel) || 1) });
  const measurements: LabMeasurement[] = [];
  let failed = false;
  await Promise.all(profiles.map((profile) => queue.add(async () => {
    const lossy = profile !== profileOf(profile);
    const lab = await createLab({ profile: profileOf(profile), ...(lossy ? { wan: opts.wan } : {}) });
    try {
      process.stderr.write(`measuring ${profile} (lab ${lab.id}: ${lab.profile.description}${lossy ? ` Over a WAN emulator: ${opts.wan}.` : ''})\n`);
      measurements.push(await measureAcrossLab(lab, { workDir, tests: opts.tests, responderDb: collected, initiatorArgs: ['--submit'] }));
    } catch (error) {
      failed = true;
      process.stderr.write(`${profile}: ${error instanceof Error ? error.message : String(error)}\n`);
    } finally {
      await lab.destroy();
    }
  })));
  measurements.sort((a, b) => profiles.indexOf(a.profile) - profiles.indexOf(b.profile));
  process.stdout.write(`${formatSideBySide(measurements)}\n\n`);
  process.stdout.write(`${measurements.length} paths measured in ${((Date.now() - started) / 1000).toFixed(1)} s; '*' marks a verdict that differs from the clean path.\n\n`);
  if (measurements.length > 0) {
    const store = Store.open(collected, { readonly: true });
    try {
      process.stdout.write(`The paper table of the runs the volunteers submitted (mbprobe-results table ${collected}):\n\n`);
      process.stdout.write(`${renderTable(computeTable(store), 'markdown')}\n`);
      writeFileSync(join(workDir, 'report.html'), renderReport(store));
    } finally {
      store.close();
    }
  }
  process.stdout.write(`Each volunteer's own database is ${workDir}/initiator-<profile>.sqlite; the responder's is ${collected}\n` +
    `(its records of every segment, and the submitted runs). The heatmap of the paths, with every result's segments and diffs,\n` +
    `is in ${join(workDir, 'report.html')} (mbprobe-results report); mbprobe-results compare|diffs|export look at the same database.\n`);
  return failed ? 1 : 0;
}

/** One row per test and port, one column per path; verdicts differing from the clean path are starred. */
export function formatSideBySide(measurements: readonly LabMeasurement[]): string {
  const tests: string[] = [];
  const ports: number[] = [];
  for (const m of measurements) {
    for (const v of m.verdicts) {
      if (!tests.includes(v.test)) tests.push(v.test);
      if (!ports.includes(v.port)) ports.push(v.port);
    }
  }
  // Tests in catalogue order (then any from --test-file), ports in the order the design lists them.
  const testOrder = (t: string): number => (CATALOGUE.some((c) => c.name === t) ? CATALOGUE.findIndex((c) => c.name === t) : CATALOGUE.length);
  tests.sort((a, b) => testOrder(a) - testOrder(b));
  const portOrder = (p: number): number => (TEST_PORTS.includes(p) ? TEST_PORTS.indexOf(p) : TEST_PORTS.length + p);
  ports.sort((a, b) => portOrder(a) - portOrder(b));
  const keys = tests.flatMap((t) => ports.map((p) => `${t} ${p}`));
  const clean = measurements.find((m) => m.profile === 'clean');
  const verdictOf = (m: LabMeasurement, key: string): string => m.verdicts.find((v) => `${v.test} ${v.port}` === key)?.verdict ?? '-';
  const header = ['test', 'port', ...measurements.map((m) => m.profile)];
  const rows = keys.map((key) => {
    const [test, port] = key.split(' ');
    return [test, port, ...measurements.map((m) => {
      const verdict = verdictOf(m, key);
      return clean && m !== clean && verdict !== verdictOf(clean, key) ? `${verdict}*` : verdict;
    })];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

process.exitCode = await main(process.argv.slice(2));
