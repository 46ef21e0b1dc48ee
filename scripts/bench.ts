/**
 * npm run bench: performance checks that belong in a benchmark, not in timed unit tests (timings on a
 * shared machine are noisy; compare the ratios within one run).
 *  1. The full catalogue on three ports across the clean lab path, at --concurrency 1 and at the
 *     default: wall time, and time spent waiting on timeouts (a clean path should spend none);
 *     the two runs must give identical verdicts.
 *  2. The responder's packet loop (decode, attribute, answer, record) on one core: segments/s.
 *  3. mbprobe-results table over a generated database of 100,000 runs.
 *  4. A volunteer's submission of the full-catalogue run measured in 1: preparing it (anonymised),
 *     and on the responder validating, storing, and recognising it again (the responder's event
 *     loop is busy for that long per submission).
 *  5. A scan of 1,000 lab servers at the default and a high SYN rate (scripts/bench-scan.ts).
 *  6. Results at scale: table over 100,000 and 10,000,000 generated results through SQLite and through
 *     DuckDB over the Parquet export, and the export's memory (scripts/bench-scale.ts).
 *  7. Hop localisation of every interference of one profile across a long delayed path, every TTL at
 *     once against one TTL at a time (scripts/bench-locate.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toWireOption } from '../shared/control.js';
import { Store } from '../shared/store.js';
import { encodePacket } from '../shared/wire/packet.js';
import { TcpFlag } from '../shared/wire/tcp.js';
import { rawOption } from '../shared/wire/tcp-options.js';
import { defaultSynOptions } from '../initiator/probe-scripts.js';
import { ResponderService } from '../responder/service.js';
import { generateResultsDatabase } from '../test/helpers/synthetic.js';
import { main as results } from '../results/cli.js';
import { computeTable } from '../results/read/table.js';
import { renderTable } from '../results/render/table.js';
import { anonymizeUpload } from '../initiator/anonymize.js';
import { storeUpload } from '../responder/collection.js';
import { parseUpload, runToUpload } from '../shared/upload.js';
import { createLab, removeStaleLabs } from '../lab/index.js';
import { runInitiator, startResponder, type LabVerdict } from '../lab/index.js';
import { responderUnderLoad } from './bench-responder.js';

import { DEFAULT_CONCURRENCY } from '../initiator/schedule.js';
import { catalogueOverLongPaths } from './bench-paths.js';
import { scanOfManyTargets } from './bench-scan.js';
import { resultsAtScale } from './bench-scale.js';
import { localisationOfOneProfile } from './bench-locate.js';

async function catalogueAcrossCleanPath(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('catalogue across the lab: skipped (needs root)');
    return;
  }
  await removeStaleLabs();
  const lab = await createLab({ profile: 'clean' });
  const dir = mkdtempSync(join(tmpdir(), 'mbprobe-bench-'));
  const responder = await startResponder(lab, join(dir, 'responder.sqlite'));
  try {
    const runs: Array<{ concurrency: number; ms: number; verdicts: LabVerdict[] }> = [];
    for (const concurrency of [1, DEFAULT_CONCURRENCY]) {
      const started = process.hrtime.bigint();
      const run = await runInitiator(lab, join(dir, `initiator-${concurrency}.sqlite`), { label: `bench-${concurrency}`, concurrency });
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (run.code !== 0) throw new Error(`initiator failed: ${run.stderr}`);
      runs.push({ concurrency, ms, verdicts: run.verdicts });
    }
    console.log('full catalogue, 3 ports, clean lab path (wall time of the mbprobe-initiator process, start-up included)');
    for (const r of runs) {
      const waited = r.verdicts.reduce((sum, v) => sum + v.timeoutWaitMs, 0);
      const watched = r.verdicts.reduce((sum, v) => sum + v.watchMs, 0);
      console.log(`  concurrency ${String(r.concurrency).padEnd(2)} ${r.verdicts.length} tests  ${(r.ms / 1000).toFixed(2)} s  waiting on timeouts: ${(waited / 1000).toFixed(2)} s (${r.verdicts.filter((v) => v.timeoutWaitMs > 0).length} tests)  deliberate watch windows: ${(watched / 1000).toFixed(2)} s (${r.verdicts.filter((v) => v.watchMs > 0).map((v) => v.test).filter((t, i, a) => a.indexOf(t) === i).join(', ') || 'none'})`);
    }
    console.log(`  speed-up at the default concurrency: ${(runs[0].ms / runs[1].ms).toFixed(2)}x`);
    const key = (vs: LabVerdict[]): string => vs.map((v) => `${v.test}:${v.port}=${v.verdict}`).sort().join('\n');
    console.log(`  verdicts identical at both concurrencies: ${key(runs[0].verdicts) === key(runs[1].verdicts) ? 'yes' : 'NO'}`);
    submissionOf(join(dir, `initiator-${DEFAULT_CONCURRENCY}.sqlite`));
  } finally {
    await responder.stop();
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function responderThroughput(): Promise<void> {
  const store = Store.open(':memory:');
  store.insertRun({ id: 'bench', startedAt: new Date().toISOString(), toolVersion: 'bench' });
  let listener: ((p: { bytes: Uint8Array; atUs: number; truncated: boolean }) => void) | undefined;
  let sent = 0;
  const service = new ResponderService({
    ports: [34343], store, runId: 'bench', segmentsPerSecond: 1e9, burst: 1e9,
    source: { onPacket: (l) => void (listener = l), close: () => undefined },
    sinks: { 4: { send: async () => void sent++, close: () => undefined } },
  });
  const session = service.registry.openSession('198.18.0.2', '198.18.0.2', undefined, Date.now());
  service.creditSession(session, 1e12);
  const flows = 2000;
  const segments: Uint8Array[] = [];
  for (let i = 0; i < flows; i++) {
    service.registerTest(session, { testId: `t${i}`, name: 'bench', port: 34343, initiatorPort: 10000 + i, initiatorIsn: i * 1000, plan: { synAckOptions: [toWireOption(rawOption(200, new Uint8Array(6)))] } });
    segments.push(encodePacket({
      ip: { version: 4, tos: 0, id: 1, flags: 2, fragmentOffset: 0, ttl: 64, protocol: 6, src: '198.18.0.2', dst: '198.19.0.2' },
      tcp: { srcPort: 10000 + i, dstPort: 34343, seq: i * 1000, ack: 0, flags: TcpFlag.SYN, window: 64240, options: defaultSynOptions() },
      payload: new Uint8Array(0),
    }));
  }
  // Only the first SYN of each flow goes through attribution by ISN; repeats hit the bound flow.
  const rounds = 20;
  const started = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) for (const bytes of segments) listener!({ bytes, atUs: 0, truncated: false });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(`responder packet loop: ${(rounds * flows / seconds).toFixed(0)} SYNs answered per second on one core (${rounds * flows} SYNs over ${flows} flows, ${sent} SYN-ACKs)`);
  store.close();
}

/** Times each step of submitting one stored run (median of five rounds, each into a fresh database). */
function submissionOf(initiatorDb: string): void {
  const source = Store.open(initiatorDb, { readonly: true });
  const runId = source.runs()[0].id;
  const ms = (f: () => void): number => {
    const started = process.hrtime.bigint();
    f();
    return Number(process.hrtime.bigint() - started) / 1e6;
  };
  const rounds: Array<{ prepare: number; validate: number; store: number; again: number }> = [];
  let text = '';
  for (let i = 0; i < 5; i++) {
    const prepare = ms(() => void (text = JSON.stringify(anonymizeUpload(runToUpload(source, runId)).upload)));
    const target = Store.open(':memory:');
    let upload = parseUpload(JSON.parse(text));
    const validate = ms(() => void (upload = parseUpload(JSON.parse(text))));
    const store = ms(() => storeUpload(target, upload));
    const again = ms(() => storeUpload(target, parseUpload(JSON.parse(text))));
    target.close();
    rounds.push({ prepare, validate, store, again });
  }
  source.close();
  const median = (k: keyof (typeof rounds)[number]): string => `${rounds.map((r) => r[k]).sort((a, b) => a - b)[2].toFixed(0)} ms`;
  console.log(`submitting that run (${(text.length / 1024).toFixed(0)} KiB of JSON), median of 5: prepare + anonymise ${median('prepare')}; ` +
    `responder: parse + validate ${median('validate')}, store ${median('store')}, recognise a resubmission ${median('again')}`);
}

/**
 * 3. `mbprobe-results table` over 100,000 runs (5 tests x 3 ports each, ~33k paths): goal under two
 * seconds; then the commands as a researcher runs them on the same database (the table grouped, compare).
 */
async function tableOverManyRuns(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mbprobe-bench-table-'));
  const path = join(dir, 'results.sqlite');
  try {
    let started = process.hrtime.bigint();
    const seconds = (): string => (Number(process.hrtime.bigint() - started) / 1e9).toFixed(2);
    generateResultsDatabase(path, 100_000);
    console.log(`results over 100,000 generated runs (5 tests x 3 ports, ~33k paths; generated in ${seconds()} s):`);
    started = process.hrtime.bigint();
    const store = Store.open(path, { readonly: true });
    const text = renderTable(computeTable(store, {}), 'latex');
    store.close();
    console.log(`  table, LaTeX: ${seconds()} s (goal < 2 s; ${text.split('\n').length} lines)`);
    for (const argv of [['table', path, '--format', 'latex', '--group-by', 'tag:net'], ['table', path, '--group-by', 'label'], ['compare', path, '--only-different', '--format', 'csv']]) {
      let characters = 0;
      started = process.hrtime.bigint();
      const code = await results(argv, { stdout: (t) => void (characters += t.length), stderr: (t) => void process.stderr.write(t) });
      console.log(`  ${[argv[0], ...argv.slice(2)].join(' ')}: ${seconds()} s (${characters} characters${code === 0 ? '' : `, exit ${code}`})`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await responderThroughput();
await tableOverManyRuns();
await resultsAtScale();
await catalogueAcrossCleanPath();
await catalogueOverLongPaths({ profiles: ['clean', 'nat', 'synproxy', 'split-proxy'], rtts: [0, 100, 300], sequential: true });
await responderUnderLoad();
await scanOfManyTargets();
await localisationOfOneProfile();
