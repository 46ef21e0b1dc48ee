/**
 * Turns the initiator databases of a lab run (scripts/demo --out DIR) into the recorded observations
 * the judges' unit tests replay: test/fixtures/observations.json. One entry per profile and test on
 * port 34343, and on every port for profiles that act per port (the interception proxies), with every
 * segment both ends saw, as hex, and the verdict given at the time.
 *   node dist/scripts/record-observations.js results/demo > test/fixtures/observations.json
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Store } from '../shared/store.js';
import { toHex } from '../shared/wire/bytes.js';
import { EXPECTED } from '../lab/expectations.js';

const dir = process.argv[2] ?? 'results/demo';
const recorded: unknown[] = [];
for (const file of readdirSync(dir).filter((f) => f.startsWith('initiator-') && f.endsWith('.sqlite')).sort()) {
  const profile = file.slice('initiator-'.length, -'.sqlite'.length);
  const store = Store.open(join(dir, file), { readonly: true });
  // The newest run of each database: earlier demo runs accumulate in the same files.
  const run = store.runs().sort((a, b) => a.startedAt.localeCompare(b.startedAt)).at(-1);
  if (run) {
    const perPort = Object.values(EXPECTED[profile] ?? {}).some((e) => typeof e !== 'string');
    for (const test of store.tests(run.id).filter((t) => perPort || t.port === 34343)) {
      recorded.push({
        profile,
        name: test.name,
        port: test.port,
        verdict: test.verdict,
        segments: store.segments(test.id).map((s) => ({ side: s.side, dir: s.dir, atUs: s.atUs, hex: toHex(s.bytes) })),
      });
    }
  }
  store.close();
}
// One recording per line: compact, and a re-recording diffs line by line.
process.stdout.write(`[\n${recorded.map((r) => JSON.stringify(r)).join(',\n')}\n]\n`);
