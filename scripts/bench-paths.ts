/**
 * `npm run bench`, long paths: the full catalogue on three ports across lab paths with the WAN
 * emulator adding delay (no loss, no jitter), at the default concurrency and sequentially
 * (--concurrency 1), in the same run: wall time of the mbprobe-initiator process (start-up
 * included), the ratio between the two, and whether both gave the same verdicts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONCURRENCY } from '../initiator/schedule.js';
import { createLab, removeStaleLabs, runInitiator, startResponder, type LabVerdict } from '../lab/index.js';

export interface LongPathOptions {
  profiles: readonly string[];
  /** Round-trip times to emulate, ms (0: no emulator). */
  rtts: readonly number[];
  /** Also run sequentially (--concurrency 1) for the ratio. */
  sequential: boolean;
}

const key = (vs: LabVerdict[]): string => vs.map((v) => `${v.test}:${v.port}=${v.verdict}`).sort().join('\n');

export async function catalogueOverLongPaths(options: LongPathOptions): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('catalogue over long paths: skipped (needs root)');
    return;
  }
  await removeStaleLabs();
  console.log(`full catalogue, 3 ports, across delayed lab paths (WAN emulator, half the RTT each way), concurrency ${DEFAULT_CONCURRENCY} vs 1; wall time of mbprobe-initiator, start-up included`);
  console.log(`  ${'path'.padEnd(14)} ${'RTT'.padStart(6)}  ${'default'.padStart(8)}  ${'sequential'.padStart(10)}  ratio  same verdicts  tests run again`);
  for (const profile of options.profiles) {
    for (const rtt of options.rtts) {
      const lab = await createLab({ profile, ...(rtt > 0 ? { wan: `delay=${rtt / 2}ms` } : {}) });
      const dir = mkdtempSync(join(tmpdir(), 'mbprobe-bench-paths-'));
      const responder = await startResponder(lab, join(dir, 'responder.sqlite'));
      try {
        const timed = async (concurrency: number): Promise<{ ms: number; verdicts: LabVerdict[]; again: number }> => {
          const started = process.hrtime.bigint();
          const run = await runInitiator(lab, join(dir, `initiator-${concurrency}.sqlite`), { label: `bench-${profile}-${rtt}-${concurrency}`, concurrency, timeoutMs: 1_800_000 });
          const ms = Number(process.hrtime.bigint() - started) / 1e6;
          if (run.code !== 0) throw new Error(`initiator failed on ${profile} at ${rtt} ms: ${run.stderr}`);
          const again = run.verdicts.filter((v) => Array.isArray((v.detail as { runs?: unknown[] }).runs)).length;
          return { ms, verdicts: run.verdicts, again };
        };
        const fast = await timed(DEFAULT_CONCURRENCY);
        const slow = options.sequential ? await timed(1) : undefined;
        console.log(`  ${profile.padEnd(14)} ${`${rtt} ms`.padStart(6)}  ${`${(fast.ms / 1000).toFixed(2)} s`.padStart(8)}  ${slow ? `${(slow.ms / 1000).toFixed(2)} s`.padStart(10) : '-'.padStart(10)}  ${slow ? `${(slow.ms / fast.ms).toFixed(1)}x`.padStart(5) : '    -'}  ${slow ? (key(fast.verdicts) === key(slow.verdicts) ? 'yes' : 'NO') : '-'}${''.padEnd(12)}${fast.again}${slow ? ` / ${slow.again}` : ''}`);
        // Which verdicts differ, with the reason each run gave.
        if (slow && key(fast.verdicts) !== key(slow.verdicts)) {
          const of = (vs: LabVerdict[]) => new Map(vs.map((v) => [`${v.test}:${v.port}`, v]));
          const [a, b] = [of(fast.verdicts), of(slow.verdicts)];
          for (const [k, v] of a) {
            const w = b.get(k);
            if (w?.verdict === v.verdict) continue;
            const why = (x?: LabVerdict): string => (x ? `${x.verdict} (${String(x.detail.reason ?? '').slice(0, 160)})` : 'missing');
            console.log(`      ${k}: default ${why(v)}, sequential ${why(w)}`);
          }
        }
      } finally {
        await responder.stop();
        await lab.destroy();
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
}
