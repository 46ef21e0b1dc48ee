import { isDeepStrictEqual } from 'node:util';
import { Store } from '../shared/store.js';
import { runToUpload, testRecordOf, uploadCounts, UploadError, type RunUpload } from '../shared/upload.js';

/**
 * The collection side of the responder: volunteers' finished runs, submitted on the control port
 * (`POST /v1/runs`), go into the responder's own database next to its records. A run is stored in
 * one transaction or not at all; the same run submitted again is recognised and stored once; a
 * different run under an id already stored is refused.
 */
export interface StoredUpload {
  runId: string;
  /** 'stored': new; 'duplicate': this exact run was already there, nothing written. */
  outcome: 'stored' | 'duplicate';
  tests: number;
  segments: number;
  diffs: number;
}

/** Writes a validated upload into `store` (see above); throws UploadError('RUN_CONFLICT') for a different run under a stored id. */
export function storeUpload(store: Store, upload: RunUpload): StoredUpload {
  const counts = uploadCounts(upload);
  const runId = upload.run.id;
  // IMMEDIATE: take the write lock before reading, waiting (busy_timeout) for another process that
  // writes to the same database (several responders may share one). A deferred transaction would
  // read first and then fail at once with SQLITE_BUSY_SNAPSHOT if that process committed meanwhile.
  return store.db.transaction((): StoredUpload => {
    if (store.run(runId) !== undefined) {
      const kept = runToUpload(store, runId);
      const incoming = normalise(upload);
      if (!isDeepStrictEqual(kept, incoming)) {
        throw new UploadError('RUN_CONFLICT',
          `run ${runId} is already stored here with different content (${firstDifference(kept, incoming)}); the stored copy is kept. ` +
          'A run is submitted once; to submit a new measurement, run the tests again.');
      }
      return { runId, outcome: 'duplicate', ...counts };
    }
    store.insertRun({ ...upload.run });
    for (const test of upload.tests) store.insertTest(testRecordOf(runId, test));
    return { runId, outcome: 'stored', ...counts };
  }).immediate();
}

/**
 * The upload as it reads back once stored, so that a resubmission compares equal to the stored
 * copy: stored in a scratch database and read again (this settles JSON round trips, segment order
 * by capture time, and the detail of a test without one).
 */
function normalise(upload: RunUpload): RunUpload {
  const scratch = Store.open(':memory:');
  try {
    storeUpload(scratch, upload);
    return runToUpload(scratch, upload.run.id);
  } finally {
    scratch.close();
  }
}

function firstDifference(kept: RunUpload, incoming: RunUpload): string {
  if (kept.tests.length !== incoming.tests.length) return `${kept.tests.length} tests stored, ${incoming.tests.length} submitted`;
  for (const key of Object.keys(kept.run) as Array<keyof RunUpload['run']>) {
    if (!isDeepStrictEqual(kept.run[key], incoming.run[key])) return `run ${key} differs`;
  }
  const i = kept.tests.findIndex((t, j) => !isDeepStrictEqual(t, incoming.tests[j]));
  if (i < 0) return 'the format differs';
  const [a, b] = [kept.tests[i], incoming.tests[i]];
  if (a.verdict !== b.verdict) return `${a.name} port ${a.port}: verdict ${a.verdict} stored, ${b.verdict} submitted`;
  return `test ${a.name} port ${a.port} (seq ${a.seq}) differs`;
}
