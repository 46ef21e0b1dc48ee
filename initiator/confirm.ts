/**
 * When one run of a test is not enough to publish its verdict. A path that loses, delays and
 * reorders packets can make an honest judge see interference that is not there (a lost segment
 * looks like a dropped probe, a lost retransmission like a box that kept old data). Loss can only
 * take segments away, so:
 *  - a verdict that rests on what arrived (an option missing from the SYN that arrived, a SYN-ACK
 *    the responder never sent, a rewritten sequence number, no interference at all) is published;
 *  - a verdict that rests on something not arriving (the shared dropped, reply-dropped, and each
 *    test's own such verdicts, `absenceVerdicts`) is published only when its run saw no sign of
 *    loss, or when a second run of the test gives it again; dropped, reply-dropped and
 *    inconclusive always need that second run, and dropped needs three copies of its probe gone over
    its runs as well.
 * A run whose responder may have taken a stranger's or another test's connection for the test's, or whose segments
 * partly went past the box that relays the port's connections, publishes nothing and is run again.
 * A run that an end did not fully see (the responder recorded segments without answering them or its
 * answers never left it, or either end's capture lost packets while the run went on) publishes only
 * "no interference"; anything else is run again, and such runs count for nothing in confirming
 * another's verdict.
 * A verdict that contradicts an earlier run's claim of other interference (say `old-data`, then
 * `intercepted`) is published only when another run gives it again, whatever it rests on.
 * Runs that never agree end as inconclusive, with every run's verdict in the detail. Pure: the
 * runner asks after each run whether to run the test once more.
 */

/** At most this many runs of one test (the first, and up to two confirmations). */
export const MAX_TEST_RUNS = 3;

/** Verdicts loss alone produces on a path that does nothing: never published without a second run saying so too. */
const LOSS_LIKE = new Set(['dropped', 'reply-dropped', 'inconclusive']);

/** How a test's verdicts relate to loss: its first verdict, and those resting on something not arriving. */
export interface VerdictKinds {
  clean: string;
  absence?: readonly string[];
}

/** One run of a test as the confirmation rule sees it. */
export interface TestRun {
  verdict: string;
  /** What in this run says the path lost something: resent segments, answers that never came, segments one side sent that the other never saw. */
  lossSigns: string[];
  /** For dropped: how many copies of the probe the run sent (each after the last one went unanswered). */
  probeCopies?: number;
  /** The run sent something again, or waited for answers that never came. */
  waited?: boolean;
  /**
   * What one end saw of the run may be short of what happened, through no fault of the path: the
   * responder recorded segments of the run without answering them (its packet loop was behind a
   * flood), answers it recorded never left it, or either end's capture lost packets while the run
   * went on.
   */
  incompleteView?: boolean;
  /**
   * The responder may have recorded a stranger's connection as the run's: it took a flow only because
   * the test was the one waiting on the port, and then saw SYNs from other addresses nobody took; or
   * a flow given to the run carried data with another run's token (another test's late connection);
   * or what it recorded for the run holds no SYN at all (segments of no connection the run opened).
   */
  ambiguous?: boolean;
  /**
   * Behind a box that rewrites everything, some of the run's segments reached the responder from
   * another address than the box's (a segment a box's connection tracking judged out of window and
   * let through untranslated): the run saw a path its other runs do not.
   */
  bypassed?: boolean;
}

/** Copies of a probe (over all its runs) that must be gone for dropped. */
export const COPIES_THAT_CONFIRM = 3;
/**
 * Runs that must all say `intercepted` after waiting for it to be published. A SYN proxy sends its
 * own SYN to the server once, when the handshake's last ACK reaches it, and never again: on a path
 * losing 10% each way about one connection in five never gets past it, so two runs in a row do (4%),
 * and over a catalogue some test always did (the lab's synproxy under loss: 2-3 tests a run said
 * `intercepted` from two runs). Three runs, and none in which the probe arrived.
 */
export const INTERCEPTED_RUNS_THAT_CONFIRM = 3;

export type Decision = { final: true; verdict: string; reason?: string } | { final: false };

/** The verdict to publish after `runs` of a test, or `{ final: false }` to run it again. */
export function decide(kinds: VerdictKinds, allRuns: readonly TestRun[]): Decision {
  const last = allRuns[allRuns.length - 1];
  // A run whose segments may have been a stranger's proves nothing at all; a run an end did not fully
  // see or answer proves nothing but "no interference" (which rests on what arrived). Either is run
  // again, and counts for nothing in what the others confirm.
  const unusable = (r: TestRun): boolean => r.ambiguous === true || r.bypassed === true || (r.incompleteView === true && r.verdict !== kinds.clean);
  if (!unusable(last) && last.verdict === kinds.clean) return { final: true, verdict: kinds.clean };
  if (unusable(last)) {
    if (allRuns.length < MAX_TEST_RUNS) return { final: false };
    const short = allRuns.filter((r) => r.incompleteView).length;
    const ambiguous = allRuns.filter((r) => r.ambiguous).length;
    const bypassed = allRuns.filter((r) => r.bypassed).length;
    const why = [
      ...(short ? [`in ${short} of ${allRuns.length} runs an end did not see all of the run (the responder recorded segments without answering them or its answers did not leave it, or a capture lost packets: an overloaded host)`] : []),
      ...(ambiguous ? [`in ${ambiguous} of ${allRuns.length} runs the responder may have taken a stranger's or another test's connection for the test's (other SYNs arrived that nobody took, its data carried another run's token, or it recorded no SYN of the run)`] : []),
      ...(bypassed ? [`in ${bypassed} of ${allRuns.length} runs segments of the test reached the responder past the box that relays the port's other connections`] : []),
    ];
    return { final: true, verdict: 'inconclusive', reason: `${why.join('; ')}, and the other runs did not settle the verdict (${allRuns.map((r) => r.verdict).join(', ')})` };
  }
  const runs = allRuns.filter((r) => !r.incompleteView && !r.ambiguous && !r.bypassed);
  // Dropped needs two runs, and three copies of the probe gone over them: a probe sent once per run
  // (proactive-ack's) takes three runs. Three copies lost in one run happen once in a thousand
  // exchanges on a path losing 10%, and a catalogue makes hundreds of exchanges.
  if (last.verdict === 'dropped') {
    const dropped = runs.filter((r) => r.verdict === 'dropped');
    const copies = dropped.reduce((n, r) => n + Math.max(1, r.probeCopies ?? 1), 0);
    if (dropped.length >= 2 && copies >= COPIES_THAT_CONFIRM) return { final: true, verdict: 'dropped' };
    if (allRuns.length < MAX_TEST_RUNS) return { final: false };
    return { final: true, verdict: 'inconclusive', reason: `the probe never arrived, but only ${copies} of its copies were sent over ${runs.length} runs (${runs.map((r) => r.verdict).join(', ')}): a lossy path` };
  }
  // A run whose probe reached the responder, past whatever answered the handshake: the box relays it.
  const arrived = (r: TestRun): boolean => r.verdict !== 'intercepted' && !LOSS_LIKE.has(r.verdict);
  const interceptedWaiting = (r: TestRun): boolean => r.verdict === 'intercepted' && r.waited === true;
  if (interceptedWaiting(last)) {
    const intercepted = runs.filter(interceptedWaiting).length;
    if (!runs.some(arrived) && intercepted >= INTERCEPTED_RUNS_THAT_CONFIRM) return { final: true, verdict: 'intercepted' };
    if (allRuns.length < MAX_TEST_RUNS) return { final: false };
    return {
      final: true, verdict: 'inconclusive',
      reason: `a middlebox answered the handshake, and in ${intercepted} of ${runs.length} runs the probe never reached the responder after waiting (${runs.map((r) => r.verdict).join(', ')}): on a lossy path a box that connects on once (a SYN proxy) loses some connections`,
    };
  }
  const alwaysConfirm = LOSS_LIKE.has(last.verdict);
  // (Intercepted rests on an answer from a middlebox, which arrived, and on the probe never reaching the
  // responder, which did not: after a run that waited for answers, what would have carried the probe on
  // may have been lost (a SYN proxy connects to the server only once the handshake's ACK arrives); that
  // case was decided above.)
  const fromAbsence = alwaysConfirm || (kinds.absence ?? []).includes(last.verdict);
  // What arrived stands on its own; what did not, only from a run without any sign of loss. Unless an
  // earlier run claimed other interference (not just loss): then the runs disagree on what the path
  // does, and only two runs agreeing settle it.
  // (`intercepted` after waiting may be loss too: it contradicts nothing.)
  const contradicted = runs.some((r) => r !== last && r.verdict !== last.verdict && r.verdict !== kinds.clean && !LOSS_LIKE.has(r.verdict) && !interceptedWaiting(r));
  if (!alwaysConfirm && !contradicted && (!fromAbsence || last.lossSigns.length === 0)) return { final: true, verdict: last.verdict };
  const agreeing = runs.filter((r) => r.verdict === last.verdict).length;
  if (agreeing >= 2) return { final: true, verdict: last.verdict };
  if (allRuns.length < MAX_TEST_RUNS) return { final: false };
  return { final: true, verdict: 'inconclusive', reason: `no two runs of the test agreed (${runs.map((r) => r.verdict).join(', ')}): a lossy or unstable path` };
}
