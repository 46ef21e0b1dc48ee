/**
 * `npm run bench`, hop localisation: every interference of one profile (rewrite-options: eleven tests
 * whose probes a box changes) localised across a long multi-hop lab path with the WAN emulator adding
 * delay, by `mbprobe-initiator locate` sending every TTL at once, and one TTL at a time (--sequential,
 * as traceroute and tracebox do), in the same run. Per test, how long its copies held its script up
 * (in round trips of the path) and in how many rounds; the whole locate phase; whether both found the
 * same hops. Then a box that drops the probe (drop-syn-data), where the hops past it never answer:
 * every TTL at once sends the silent ones again (the bounded retries), one at a time waits for each.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../shared/store.js';
import { createLab, locateAcrossLab, removeStaleLabs, type LocatedTest } from '../lab/index.js';

export interface LocateBenchOptions {
  profile: string;
  hops: number;
  middlebox: number;
  /** The emulated round trip, ms (the delay sits on the initiator's access link, so every hop is about this far). */
  rttMs: number;
  port: number;
}

const findings = (located: readonly LocatedTest[]): string => located.map((l) => `${l.test}:${l.port} ${l.status} ${l.location.last?.ttl ?? '-'}-${l.location.first?.ttl ?? '-'}`).sort().join('\n');

export async function localisationOfOneProfile(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('hop localisation: skipped (needs root)');
    return;
  }
  await removeStaleLabs();
  await localiseAcrossLongPath({ profile: 'rewrite-options', hops: 8, middlebox: 5, rttMs: 40, port: 34343 });
  await localiseAcrossLongPath({ profile: 'drop-syn-data', hops: 8, middlebox: 5, rttMs: 40, port: 34343 });
}

async function localiseAcrossLongPath(options: LocateBenchOptions): Promise<void> {
  const { profile, hops, middlebox, rttMs, port } = options;
  const lab = await createLab({ profile, hops: { count: hops, middlebox, shortQuote: [], mpls: [], icmpRateLimit: 'off' }, wan: `delay=${rttMs / 2}ms` });
  const dir = mkdtempSync(join(tmpdir(), 'mbprobe-bench-locate-'));
  try {
    console.log(`hop localisation: every interference of ${profile} at hop ${middlebox} of ${hops}, ${rttMs} ms round trip (WAN emulator), port ${port}; copies of each probe with TTL 1..30`);
    console.log(`  ${'mode'.padEnd(20)} ${'tests'.padStart(5)}  ${'per test: copies held the script up'.padEnd(38)} ${'rounds'.padStart(6)}  ${'locate phase'.padStart(12)}`);
    const results: Array<{ mode: string; located: LocatedTest[] }> = [];
    for (const mode of ['every TTL at once', 'one TTL at a time'] as const) {
      const run = await locateAcrossLab(lab, { workDir: dir, ports: [port], label: mode === 'every TTL at once' ? 'parallel' : 'sequential', initiatorArgs: mode === 'one TTL at a time' ? ['--sequential'] : [] });
      const placed = run.located.filter((l) => l.location.tracingMs !== undefined && l.location.rounds);
      const tracing = placed.map((l) => l.location.tracingMs!);
      const mean = tracing.reduce((a, b) => a + b, 0) / Math.max(1, tracing.length);
      const rounds = placed.map((l) => l.location.rounds!);
      const store = Store.open(run.initiatorDb, { readonly: true });
      const phase = (store.runs().at(-1)!.hostInfo.locate as { elapsedMs: number }).elapsedMs;
      store.close();
      const perTest = `${mean.toFixed(0)} ms mean, ${Math.max(...tracing).toFixed(0)} ms max (${(mean / rttMs).toFixed(1)} RTT)`;
      console.log(`  ${mode.padEnd(20)} ${String(placed.length).padStart(5)}  ${perTest.padEnd(38)} ${`${Math.min(...rounds)}-${Math.max(...rounds)}`.padStart(6)}  ${`${(phase / 1000).toFixed(2)} s`.padStart(12)}`);
      results.push({ mode, located: run.located });
    }
    const same = findings(results[0].located) === findings(results[1].located);
    const all = results[0].located.filter((l) => l.test !== 'synack-unknown-option');
    const right = all.filter((l) => l.location.last?.ttl === middlebox && l.location.first?.ttl === middlebox + 1).length;
    console.log(`  same findings both ways: ${same ? 'yes' : 'NO'}; placed between hop ${middlebox} and ${middlebox + 1}: ${right} of ${all.length}${all.length < results[0].located.length ? ' (synack-unknown-option: reverse path)' : ''}`);
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
