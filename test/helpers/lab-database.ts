/**
 * Results databases made of what the lab recorded (test/fixtures/observations.json): one run per
 * profile with every recorded test, its real segments and the diff rows the initiator computes from
 * them, stored through the Store as the initiator does. Some paths measured again a month later (a
 * few results inconclusive, a few changed), labeled and unlabeled runs (the recorded addresses,
 * behind NATs too), tags, runs over three months, and a responder record: what the results commands
 * meet in a campaign's database, on real bytes.
 */
import { segmentsAndDiffs } from '../../initiator/runner.js';
import { Store } from '../../shared/store.js';
import { decodePacket } from '../../shared/wire/packet.js';
import { observationsOf, recordings } from './recordings.js';

export const LAB_PROFILES: readonly string[] = [...new Set(recordings.map((r) => r.profile))];

const MONTHS = ['2026-09', '2026-10', '2026-11'];
const NETS = ['fixed', 'mobile', 'wifi'];

/** The id of profile `p`'s run number `n` (0: the first, 1: the second, a month later). */
export const labRunId = (profile: string, n: number): string => `lab-${profile}-${n}`;

/** Adds the recorded runs of `profiles` to `store` (opened for writing); returns their run ids. */
export function addLabRuns(store: Store, profiles: readonly string[] = LAB_PROFILES): string[] {
  const ids: string[] = [];
  for (const profile of profiles) {
    const index = LAB_PROFILES.indexOf(profile);
    const tests = recordings.filter((r) => r.profile === profile);
    const addressOf = (side: 'initiator' | 'responder', dir: 'sent' | 'received'): string =>
      decodePacket(Buffer.from(tests[0].segments.find((s) => s.side === side && s.dir === dir)!.hex, 'hex')).ip!.src;
    const labeled = index % 2 === 0;
    // Every third profile is measured again a month later: the newer conclusive results count.
    const runs = index % 3 === 0 ? 2 : 1;
    for (let n = 0; n < runs; n++) {
      const id = labRunId(profile, n);
      const startedAt = `${MONTHS[(index + n) % MONTHS.length]}-${String(1 + (index % 27)).padStart(2, '0')}T10:00:00.000Z`;
      store.insertRun({
        id, startedAt, label: labeled ? profile : null, responder: 'responder.example.org', toolVersion: '0.1.0',
        tags: index % 4 === 3 ? {} : { net: NETS[index % NETS.length], profile },
        hostInfo: { platform: 'linux', kernel: '6.1.0', source: addressOf('initiator', 'sent'), observedAddress: addressOf('responder', 'received') },
      });
      tests.forEach((r, seq) => {
        const { segments, diffs } = segmentsAndDiffs(observationsOf(r));
        // The second run: every fifth result inconclusive (the first run's stays), every seventh another verdict.
        const verdict = n === 0 ? r.verdict : seq % 5 === 0 ? 'inconclusive' : seq % 7 === 0 ? 'reset' : r.verdict;
        store.insertTest({
          runId: id, seq, name: r.name, port: r.port, startedAt, finishedAt: startedAt, verdict,
          detail: { recordedOn: profile, run: n }, segments, diffs,
        });
      });
      store.finishRun(id, startedAt.replace('T10:00:00', 'T10:00:30'));
      ids.push(id);
    }
  }
  return ids;
}

/** A responder's own record (host_info.role 'responder', whole addresses): never a path, exported only when asked. */
export function addResponderRecord(store: Store, id = 'responder-record'): void {
  const r = recordings[0];
  const { segments } = segmentsAndDiffs(observationsOf(r));
  store.insertRun({ id, startedAt: '2026-10-15T00:00:00.000Z', toolVersion: '0.1.0', hostInfo: { role: 'responder' } });
  store.insertTest({ runId: id, seq: 0, name: 'unattributed', port: 34343, startedAt: '2026-10-15T00:00:00.000Z', finishedAt: '2026-10-15T00:01:00.000Z', verdict: 'recorded', detail: null, segments, diffs: [] });
}

/** A database at `path` holding the lab runs of `profiles` and a responder record. */
export function labDatabase(path: string, profiles: readonly string[] = LAB_PROFILES, responderRecord = true): string[] {
  const store = Store.open(path);
  try {
    const ids = addLabRuns(store, profiles);
    if (responderRecord) addResponderRecord(store, `responder-record-${profiles[0]}`);
    return ids;
  } finally {
    store.close();
  }
}
