/**
 * A results database for the report tests (test/unit/report.test.ts, test/integration/report-chromium.test.ts):
 * four paths with distinct verdict mixes (one of each verdict class), real segments and diff rows behind two results, a label and a
 * detail that try to inject HTML, a test outside the catalogue, and a responder run (not a path).
 * REPORT_FIXTURE_HEATMAP is the heatmap the report must show for it.
 */
import type { DiffRecord, SegmentRecord, Store } from '../../shared/store.js';
import { SYN, SYN_CLAMPED, SYNACK, SYNACK_HOPPED, SYN_DATA, RST, seg, rowsOf } from './segments.js';

export const HOSTILE_LABEL = `<script>alert('label')</script> & "co" <img src=x onerror=alert(1)>`;
export const HOSTILE_DETAIL = { note: '</pre><script>alert("detail")</script>', probesSent: 1, probesReceived: 0 };
export const MSS_DETAIL = { option: 'mss', sent: 'mss 1460', received: 'mss 536' };
export const MSS_ROW = 'option.mss: mss 1460 -&gt; mss 536 [interference, modified]';

type Result = [test: string, port: number, verdict: string, extra?: { detail?: unknown; segments?: SegmentRecord[]; diffs?: DiffRecord[] }];

interface Run {
  id: string;
  startedAt: string;
  label?: string;
  hostInfo?: Record<string, unknown>;
  results: Result[];
}

const mssSegments = [
  seg('initiator', 'sent', 0, SYN),
  seg('responder', 'received', 0.25, SYN_CLAMPED),
  seg('responder', 'sent', 0.4, SYNACK),
  seg('initiator', 'received', 0.7, SYNACK_HOPPED),
];
const synDataSegments = [seg('initiator', 'sent', 2, SYN_DATA), seg('initiator', 'received', 3.5, RST)];

const RUNS: Run[] = [
  {
    // The earlier run of home-dsl: its syn-baseline:80 ok still counts (a2's is inconclusive).
    id: 'a1', startedAt: '2024-01-01T00:00:00.000Z', label: 'home-dsl',
    results: [['syn-baseline', 80, 'ok'], ['syn-baseline', 443, 'ok'], ['syn-mss', 80, 'passed'], ['syn-mss', 443, 'modified']],
  },
  {
    id: 'a2', startedAt: '2024-02-01T00:00:00.000Z', label: 'home-dsl',
    results: [
      ['syn-baseline', 80, 'inconclusive'],
      ['syn-mss', 80, 'modified', { detail: MSS_DETAIL, segments: mssSegments, diffs: [...rowsOf(mssSegments, 0, 1), ...rowsOf(mssSegments, 2, 3)] }],
    ],
  },
  {
    id: 'b', startedAt: '2024-01-15T00:00:00.000Z', label: HOSTILE_LABEL,
    results: [
      ['syn-baseline', 80, 'ok'], ['syn-baseline', 443, 'proxied'], ['syn-mss', 80, 'passed'], ['syn-mss', 443, 'removed'],
      ['syn-data', 80, 'dropped', { detail: HOSTILE_DETAIL, segments: synDataSegments }],
    ],
  },
  {
    id: 'c', startedAt: '2024-01-20T00:00:00.000Z', hostInfo: { source: '192.168.1.10', observedAddress: '203.0.113.7' },
    results: [['syn-baseline', 80, 'reset'], ['syn-baseline', 443, 'ok'], ['syn-mss', 80, 'inconclusive'], ['syn-mss', 443, 'modified']],
  },
  {
    id: 'e', startedAt: '2024-01-22T00:00:00.000Z', hostInfo: { source: '2001:db8::5', observedAddress: '2001:db8::5' },
    results: [['syn-baseline', 80, 'ok'], ['syn-mss', 443, 'intercepted'], ['my_probe', 34343, 'odd_one']],
  },
  {
    id: 'r', startedAt: '2024-01-01T00:00:00.000Z', label: 'responder', hostInfo: { role: 'responder' },
    results: [['syn-baseline', 80, 'recorded']],
  },
];

/** Heatmap columns in order. */
export const REPORT_FIXTURE_COLUMNS = ['syn-baseline:80', 'syn-baseline:443', 'syn-mss:80', 'syn-mss:443', 'syn-data:80', 'my_probe:34343'];

/** Path (in heatmap order) -> one [verdict, class] per column; null verdict: not run. */
export const REPORT_FIXTURE_HEATMAP: Array<[path: string, cells: Array<[verdict: string | null, cls: string]>]> = [
  [HOSTILE_LABEL, [['ok', 'clean'], ['proxied', 'interference'], ['passed', 'clean'], ['removed', 'interference'], ['dropped', 'broken'], [null, 'none']]],
  ['home-dsl', [['ok', 'clean'], ['ok', 'clean'], ['modified', 'interference'], ['modified', 'interference'], [null, 'none'], [null, 'none']]],
  ['192.168.1.10 (seen as 203.0.113.7)', [['reset', 'broken'], ['ok', 'clean'], ['inconclusive', 'inconclusive'], ['modified', 'interference'], [null, 'none'], [null, 'none']]],
  ['2001:db8::5', [['ok', 'clean'], [null, 'none'], [null, 'none'], ['intercepted', 'intercepted'], [null, 'none'], ['odd_one', 'unknown']]],
];

/** Fills `store` with the fixture runs; returns it. */
export function fillReportFixture<S extends Store>(store: S): S {
  for (const run of RUNS) {
    store.insertRun({ id: run.id, startedAt: run.startedAt, label: run.label, hostInfo: run.hostInfo, toolVersion: '0.1.0-test' });
    for (const [name, port, verdict, extra] of run.results) {
      store.insertTest({
        runId: run.id, name, port, verdict, startedAt: run.startedAt, finishedAt: run.startedAt,
        detail: extra?.detail ?? null, segments: extra?.segments ?? [], diffs: extra?.diffs ?? [],
      });
    }
  }
  return store;
}
