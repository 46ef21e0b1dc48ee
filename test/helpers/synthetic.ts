/**
 * A synthetic results database of `runs` initiator runs spread over paths (half labeled, half known by
 * address, with tags), every catalogue test on every port (a few missing), verdicts mostly the first,
 * optionally with segments (bytes of a fixed pseudo-random pool) and diff rows:
 * what the results benchmarks (npm run bench, scripts/bench.ts, scripts/bench-scale.ts) and the results
 * tests run on. Deterministic per seed. Written with the store's own insert statements
 * (shared/store/statements.ts), without the per-test transaction of Store.insertTest, one transaction
 * per RUNS_PER_TRANSACTION runs, so memory and the WAL stay bounded however many runs: 10 million
 * tests take about a minute.
 */
import { allVerdicts } from '../../initiator/test-case.js';
import { CATALOGUE } from '../../initiator/catalogue/index.js';
import { Store } from '../../shared/store.js';
import { SQL } from '../../shared/store/statements.js';
import { seededRandom } from '../../lab/wan.js';

export interface GenerateOptions {
  /** Distinct paths the runs are spread over (half labeled, half by address). */
  paths?: number;
  tests?: number;
  ports?: number[];
  seed?: number;
  /** Segments per test (default 0), each 40 to 1,500 bytes, half sent by the initiator, half received by the responder. */
  segments?: number;
  /** Diff rows per test with segments (default 0), between its first two segments. */
  diffs?: number;
}

const RUNS_PER_TRANSACTION = 5_000;

/** A database of `runs` initiator runs, each with every test on every port (a few missing); returns nothing, writes `path`. */
export function generateResultsDatabase(path: string, runs: number, options: GenerateOptions = {}): void {
  const { paths = Math.max(1, Math.floor(runs / 3)), tests = 5, ports = [34343, 80, 443], seed = 1, segments = 0, diffs = 0 } = options;
  const random = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const catalogue = CATALOGUE.slice(0, tests);
  const store = Store.open(path);
  const insertRun = store.db.prepare(SQL.insertRun);
  const insertTest = store.db.prepare(SQL.insertTest);
  const insertSegment = store.db.prepare(SQL.insertSegment);
  const insertDiff = store.db.prepare(SQL.insertDiff);
  // Segment bytes are slices of one pool, so gigabytes of them cost no random number per byte
  // (drawn only with segments, so databases without them are as they always were per seed).
  const pool = Buffer.alloc(segments > 0 ? 1 << 16 : 0);
  for (let i = 0; i < pool.length; i++) pool[i] = Math.floor(random() * 256);
  const start = Date.parse('2024-01-01T00:00:00Z');
  store.db.pragma('synchronous = OFF'); // a generated file: nothing to lose in a crash
  const batch = (from: number, to: number): void => store.transaction(() => {
    for (let i = from; i < to; i++) {
      const p = Math.floor(random() * paths);
      const id = `run-${i}`;
      const startedAt = new Date(start + Math.floor(random() * 86_400_000 * 200)).toISOString();
      const label = p % 2 === 0 ? `path-${p}` : null;
      const source = `10.${(p >> 16) & 255}.${(p >> 8) & 255}.${p & 255}`;
      const hostInfo = label ? { source: '192.168.1.2', observedAddress: '203.0.113.9' } : { source, observedAddress: p % 4 === 1 ? source : `198.51.${(p >> 8) & 255}.${p & 255}` };
      const tags = random() < 0.1 ? {} : { net: pick(['fixed', 'mobile', 'wifi']), country: pick(['DE', 'FR', 'US', 'JP']) };
      insertRun.run({
        id, started_at: startedAt, finished_at: null, label, responder: 'responder.example.org', tool_version: 'gen',
        host_info: JSON.stringify(hostInfo), tags: JSON.stringify(tags), kind: 'measurement',
      });
      let seq = 0;
      for (const test of catalogue) {
        for (const port of ports) {
          if (random() < 0.05) continue;
          const verdict = random() < 0.7 ? test.verdicts[0] : pick(allVerdicts(test));
          const testId = insertTest.run({ run_id: id, seq: seq++, name: test.name, port, started_at: startedAt, finished_at: startedAt, verdict, detail: null, target: null, target_name: null }).lastInsertRowid;
          const segmentIds: Array<number | bigint> = [];
          for (let k = 0; k < segments; k++) {
            const length = 40 + Math.floor(random() * 1461);
            const offset = Math.floor(random() * (pool.length - length));
            segmentIds.push(insertSegment.run({
              test_id: testId, side: k % 2 === 0 ? 'initiator' : 'responder', dir: k % 2 === 0 ? 'sent' : 'received',
              at_us: Date.parse(startedAt) * 1000 + k, bytes: pool.subarray(offset, offset + length),
            }).lastInsertRowid);
          }
          for (let k = 0; k < diffs && segmentIds.length >= 2; k++) {
            insertDiff.run({ test_id: testId, sent_segment: segmentIds[0], received_segment: segmentIds[1], layer: 'tcp', field: `tcp.field${k}`, sent: String(k), received: String(k + 1), class: 'interference', change: null });
          }
        }
      }
    }
  });
  for (let from = 0; from < runs; from += RUNS_PER_TRANSACTION) batch(from, Math.min(runs, from + RUNS_PER_TRANSACTION));
  store.close();
}
