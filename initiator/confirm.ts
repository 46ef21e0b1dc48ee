/**
 * When one run of a test is not enough to publish its verdict. A path that loses, delays and
 * reorders packets can make an honest judge see interference that is not there (a lost segment
 * looks like a dropped probe, a lost retransmission like a box that kept old data). A verdict of no
 * interference is an observation loss cannot fake (the probe arrived as sent); a verdict of
 * interference is published only when the run that gave it saw no sign of loss, or when a second
 * run of the test gives it again. Runs that never agree end as inconclusive, with every run's
 * verdict in the detail. Pure: the runner asks after each run whether to run the test once more.
 */

/** At most this many runs of one test (the first, and up to two confirmations). */
export const MAX_TEST_RUNS = 3;

/** Verdicts loss alone produces on a path that does nothing: never published without a second run saying so too. */
const LOSS_LIKE = new Set(['dropped', 'reply-dropped', 'inconclusive']);

/** One run of a test as the confirmation rule sees it. */
export interface TestRun {
  verdict: string;
  /** What in this run says the path lost something: resent segments, answers that never came, segments one side sent that the other never saw. */
  lossSigns: string[];
}

export type Decision = { final: true; verdict: string; reason?: string } | { final: false };

/**
 * The verdict to publish after `runs` of a test whose first verdict is `clean`, or `{ final: false }`
 * to run it again.
 */
export function decide(clean: string, runs: readonly TestRun[]): Decision {
  const last = runs[runs.length - 1];
  if (last.verdict === clean) return { final: true, verdict: clean };
  // A run without any sign of loss stands on its own, unless its verdict is one loss alone produces.
  if (last.lossSigns.length === 0 && !LOSS_LIKE.has(last.verdict)) return { final: true, verdict: last.verdict };
  const agreeing = runs.filter((r) => r.verdict === last.verdict).length;
  if (agreeing >= 2) return { final: true, verdict: last.verdict };
  if (runs.length < MAX_TEST_RUNS) return { final: false };
  return { final: true, verdict: 'inconclusive', reason: `no two runs of the test agreed (${runs.map((r) => r.verdict).join(', ')}): a lossy or unstable path` };
}
