/**
 * A synthetic results database of `runs` initiator runs spread over paths (half labeled, half known by
 * address, with tags), every catalogue test on every port (a few missing), verdicts mostly the first:
 * what the results benchmark (npm run bench, scripts/bench.ts) and the results tests run on. Deterministic
 * per seed. Written with the store's own insert statements (shared/store/statements.ts), without the
 * per-test transaction of Store.insertTest, so that 100,000 runs take seconds.
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
}

/** A database of `runs` initiator runs, each with every test on every port (a few missing); returns nothing, writes `path`. */
export function generateResultsDatabase(path: string, runs: number, options: GenerateOptions = {}): void {
  const { paths = Math.max(1, Math.floor(runs / 3)), tests = 5, ports = [34343, 80, 443], seed = 1 } = options;
  const random = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const catalogue = CATALOGUE.slice(0, tests);
  const store = Store.open(path);
  const insertRun = store.db.prepare(SQL.insertRun);
  const insertTest = store.db.prepare(SQL.insertTest);
  const start = Date.parse('2024-01-01T00:00:00Z');
  store.transaction(() => {
    for (let i = 0; i < runs; i++) {
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
          insertTest.run({ run_id: id, seq: seq++, name: test.name, port, started_at: startedAt, finished_at: startedAt, verdict, detail: null, target: null, target_name: null });
        }
      }
    }
  });
  store.close();
}
