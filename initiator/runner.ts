import PQueue from 'p-queue';
import { randomInt } from 'node:crypto';
import { diffSegments } from '../shared/diff.js';
import { matchSegments } from '../shared/match.js';
import type { DiffRecord, SegmentRecord, Store } from '../shared/store.js';
import { fromHex } from '../shared/wire/bytes.js';
import type { ControlClient } from './control-client.js';
import { decide, MAX_TEST_RUNS, type Decision, type TestRun } from './confirm.js';
import { boxAddressOf, modeFromAttribution, modeFromRule, PathRtt, PortGate, type Ticket } from './schedule.js';
import { hasData, isSyn, isSynAck } from './observed.js';
import { isRequestPort, payloadFor } from './payloads.js';
import { newConnectionToken } from '../shared/token.js';
import { observe, type Observed } from './observed.js';
import type { Prober, Timing } from './probe.js';
import { allVerdicts, type Judgement, type TestCase, type TestObservations } from './test-case.js';

export interface TestResult {
  runId: string;
  name: string;
  port: number;
  verdict: string;
  detail: Record<string, unknown>;
  startedAt: string;
  finishedAt: string;
  testId: number;
  /** How long the test waited for answers that never came. */
  timeoutWaitMs: number;
  /** How long the test watched on purpose for segments only a middlebox would send. */
  watchMs: number;
  /** How many times the test ran before its verdict was decided (initiator/confirm.ts). */
  runs: number;
}

export interface RunPlan {
  runId: string;
  sessionId: string;
  tests: readonly TestCase[];
  ports: readonly number[];
  local: string;
  responder: string;
  /** Local ports reserved for the run: one per test, then spares for the runs that confirm a verdict. */
  localPorts: number[];
  concurrency: number;
  timing: Timing;
  /** Payload shaping: per port (auto) or a plain pattern everywhere (raw). */
  payload?: 'auto' | 'raw';
  /** The responder as the user named it (`--responder`): the Host and SNI of shaped payloads, which a forwarding proxy connects to. */
  responderName?: string;
  /** How long the responder waits for in-flight segments before handing over a test's view. */
  settleMs: number;
  /** A first estimate of the path's round trip (a control request's), until handshakes measure it. */
  rttHintMs?: number;
  /** The responder takes connection tokens (its hello lists `token`); false: no token lane (an older responder). Default true. */
  responderTakesTokens?: boolean;
  /** Aborting stops scheduling new tests; tests under way finish (a few seconds at most) and are stored. */
  signal?: AbortSignal;
  onResult?: (result: TestResult, done: number, total: number) => void;
}

/**
 * Runs every (test, port) pair, overlapping tests as far as the responder can still attribute every
 * segment exactly (initiator/schedule.ts: tests on one port overlap freely while the path keeps the
 * initiator's ISN or port, else a test starts only once the others on its port are bound), at most
 * `concurrency` at once. Waits follow the round trip the first handshakes measured. A test whose
 * verdict needs confirming runs again (initiator/confirm.ts); each test is committed to the store
 * once its verdict is decided.
 */
export async function runTests(plan: RunPlan, prober: Prober, client: ControlClient, store: Store): Promise<TestResult[]> {
  const jobs = plan.ports.flatMap((port) => plan.tests.map((test) => ({ test, port })));
  if (plan.localPorts.length < jobs.length) throw new Error(`need ${jobs.length} local ports, ${plan.localPorts.length} reserved`);
  // First runs take the first ports, in job order; confirmations take the spare ones after them.
  const spare = plan.localPorts.slice(jobs.length);
  const results: TestResult[] = [];
  const shared: Shared = { slots: new PQueue({ concurrency: plan.concurrency }), rtt: new PathRtt(), gates: new Map(plan.ports.map((p) => [p, new PortGate({ tokens: plan.responderTakesTokens })])) };
  shared.rtt.add(plan.rttHintMs);
  await Promise.all(plan.ports.map(async (port) => {
    const gate = shared.gates.get(port)!;
    const running: Array<Promise<void>> = [];
    const start = async (test: TestCase, order: number): Promise<boolean> => {
      const seq = jobs.findIndex((j) => j.port === port && j.test === test);
      const ticket = await gate.enter('shared', false, tokenable(test));
      if (plan.signal?.aborted) {
        ticket.done();
        return false;
      }
      const job = { test, port, seq, order, localPort: plan.localPorts[seq], sparePort: () => spare.shift() };
      running.push(runOne(plan, job, ticket, shared, prober, client, store).then((result) => {
        if (!result) return;
        results.push(result);
        plan.onResult?.(result, results.length, jobs.length);
      }));
      return true;
    };
    // The port's first test shows what the path keeps; the order of the others follows from it.
    if (plan.tests.length === 0 || !(await start(plan.tests[0], 0))) return void (await Promise.all(running));
    await Promise.race([gate.whenKnown(), running[0]]);
    for (const [i, test] of startOrder(plan.tests.slice(1), gate).entries()) if (!(await start(test, i + 1))) break;
    await Promise.all(running);
  }));
  return results.sort((a, b) => a.testId - b.testId);
}

/**
 * The order the tests after a port's first start in: the long ones first, so that a run ends with its
 * slowest test, not after it. Behind a box that rewrites everything and whose address is known, the
 * tests that can carry a token take a lane of their own, all at once, while no chained test waits for
 * its flow (initiator/schedule.ts): the chained tests whose two runs start together there
 * (`secondRunBehindRelay`, the longest) go first (a round trip or two until they are bound, then
 * their waits overlap everything else), then those with a token (long ones first), then the rest of
 * the chain (long ones first).
 */
export function startOrder(tests: readonly TestCase[], gate: PortGate): TestCase[] {
  const longFirst = (list: readonly TestCase[]): TestCase[] => [...list.filter((t) => t.long), ...list.filter((t) => !t.long)];
  if (gate.mode !== 'opaque' || gate.from === undefined || !gate.tokens) return longFirst(tests);
  const chained = tests.filter((t) => !tokenable(t));
  return [...chained.filter((t) => t.secondRunBehindRelay), ...longFirst(tests.filter(tokenable)), ...longFirst(chained.filter((t) => !t.secondRunBehindRelay))];
}

/** The test's connection can carry its token, and its plan leaves the handshake alone (TestCase.carriesToken). */
export const tokenable = (test: TestCase): boolean =>
  test.carriesToken !== undefined && !test.plan?.synAckOptions && test.plan?.window === undefined && !test.plan?.sendBytes;

/** What every test of a run shares: the global limit, the path's round trip, each port's gate. */
interface Shared {
  slots: PQueue;
  rtt: PathRtt;
  gates: Map<number, PortGate>;
}

/** One run of one test: what both ends saw, the judge's verdict, and what says the path lost something. */
interface Attempt extends TestRun {
  detail: Record<string, unknown>;
  observations: TestObservations;
  startedAt: string;
  finishedAt: string;
  timeoutWaitMs: number;
  watchMs: number;
  rows: { segments: SegmentRecord[]; diffs: DiffRecord[] };
  /** The next run of the test must have its port to itself. */
  wantsExclusive: boolean;
}

/** The request that carries a run's token for a test that sends no data of its own (TestCase.carriesToken). */
const TOKEN_REQUEST_BYTES = 100;

/** How long the responder is asked to hold an answer about a test's flow being bound. */
const BOUND_WAIT_MS = 10_000;

/** `seq`: the test's place in the run (the catalogue's order); `order`: its place in its port's start order. */
type Job = { test: TestCase; port: number; seq: number; order: number; localPort: number; sparePort: () => number | undefined };

async function runOne(plan: RunPlan, job: Job, first: Ticket, shared: Shared, prober: Prober, client: ControlClient, store: Store): Promise<TestResult | undefined> {
  const { test, port } = job;
  const gate = shared.gates.get(port)!;
  const attempts: Attempt[] = [];
  let decision: Decision = { final: false };
  let localPort: number | undefined = job.localPort;
  let ticket: Ticket | undefined = first;
  // One run of the test: a ticket for its port (the first run's is given), then a slot.
  let launched = 0;
  /** The early run's place in its port's queue, while it waits there. */
  let earlyEntry: { withdraw(): void } | undefined;
  const launch = async (port_: number, given: Ticket | undefined, onResend?: () => void, speculative = false): Promise<Attempt | undefined> => {
    // Each run registers under an id of its own (the run's number), whether or not it is used.
    const index = launched++;
    const want = attempts.at(-1)?.wantsExclusive ? 'exclusive' : 'shared';
    let mine = given;
    if (!mine && speculative) {
      const entry = gate.enterSpeculative(want, tokenable(test));
      earlyEntry = entry;
      mine = await entry.ticket;
      // Withdrawn before it began: not needed after all.
      if (!mine) return undefined;
    }
    mine ??= await gate.enter(want, true, tokenable(test));
    // Slots go round the ports (each port's n-th test before any port's n+1-th), and to runs that
    // confirm a verdict before new tests: the run ends when its slowest port does.
    const priority = index > 0 ? 1 : -job.order;
    // Behind the test before it on an opaque port, a test takes a slot only once that one has
    // registered (it holds a slot then, or is done): a test holding the last slot while waiting for
    // a predecessor still waiting for a slot would never end (at --concurrency 1, or behind a
    // confirming run, which goes first).
    if (mine.predecessor) await mine.predecessor.whenRegistered();
    return await shared.slots.add(async () => {
      // Interrupted while waiting for a slot: a run not yet begun is not begun at all (a first run,
      // or a confirming run started early: the test is stored with what it has).
      if (plan.signal?.aborted) {
        mine.done();
        return undefined;
      }
      return attemptOne(plan, job, index, port_, mine, shared, prober, client, onResend);
    }, { priority }) as Attempt | undefined;
  };
  // The run that may confirm the first one's verdict starts as soon as the first one sends something
  // again (its answer did not come: a drop, or loss), instead of after it: a dropped probe costs its
  // waits once, not twice, on a long path. It is used only if the first run's verdict needs
  // confirming; a clean path never starts one. On an opaque port it takes a place in the port's
  // chain (about a round trip for the tests behind it), and tests behind proxies resend more often
  // (a few per port): still less than a dropped probe's waits.
  let early: Promise<Attempt | undefined> | undefined;
  // Not in the token lane once the chain may be under way: there it would stop the chain (which
  // waits for every test with a token to be bound) for a run that is seldom needed. Behind a relay,
  // a test whose verdict always needs a second run there starts it with the first (`atOnce`).
  const startEarly = (atOnce = false): void => {
    if (early || plan.signal?.aborted || gate.mode === 'unknown' || first.exclusive || (first.token && !atOnce)) return;
    const spare = job.sparePort();
    if (spare !== undefined) early = launch(spare, undefined, undefined, true);
  };
  let unused: string | undefined;
  while (localPort !== undefined) {
    const running = launch(localPort, ticket, attempts.length === 0 ? () => startEarly() : undefined);
    if (attempts.length === 0 && test.secondRunBehindRelay && gate.mode === 'opaque' && gate.from !== undefined) startEarly(true);
    const attempt = await running;
    ticket = undefined;
    if (!attempt) break;
    attempts.push(attempt);
    // A run that may have taken another test's segments (or lost its own to one) proves nothing: again,
    // alone; after MAX_TEST_RUNS such runs, nothing is published.
    decision = !attempt.wantsExclusive
      ? decide({ clean: test.verdicts[0], absence: test.absenceVerdicts }, attempts)
      : attempts.length < MAX_TEST_RUNS
        ? { final: false }
        : { final: true, verdict: 'inconclusive', reason: `in ${attempts.length} runs the test could not be told apart from other tests on port ${port} (${attempts.map((a) => a.verdict).join(', ')}): ${attempt.lossSigns.join('; ')}` };
    if (early) {
      // Still waiting for its turn and not needed: never begun.
      if (decision.final || attempt.wantsExclusive || plan.signal?.aborted) earlyEntry?.withdraw();
      const second = await early;
      early = undefined;
      // Needed: it is the confirming run, as if it had started now; not needed: its verdict is left out.
      if (second && !decision.final && !attempt.wantsExclusive && !plan.signal?.aborted) {
        attempts.push(second);
        decision = second.wantsExclusive ? { final: false } : decide({ clean: test.verdicts[0], absence: test.absenceVerdicts }, attempts);
      } else if (second) unused = second.verdict;
    }
    if (decision.final || plan.signal?.aborted) break;
    localPort = job.sparePort();
  }
  if (attempts.length === 0) return undefined;
  const last = attempts[attempts.length - 1];
  // An interference verdict that still needed confirming is not published as one.
  const verdict = decision.final ? decision.verdict : 'inconclusive';
  // The run stored is the last one (its verdict is the published one, unless no two runs agreed).
  const detail: Record<string, unknown> = { ...last.detail };
  if (decision.final && decision.reason) detail.reason = decision.reason;
  if (!decision.final) {
    detail.reason = `${last.verdict}, not confirmed: ${plan.signal?.aborted ? 'the run was interrupted before a confirming run' : 'no local port was left for a confirming run'}`;
    detail.unconfirmedVerdict = last.verdict;
  }
  if (attempts.length > 1) detail.runs = attempts.map((a) => ({ verdict: a.verdict, ...(a.lossSigns.length ? { lossSigns: a.lossSigns } : {}), ...(a.detail.errors ? { errors: a.detail.errors } : {}) }));
  // A confirming run started early and not needed: said, though its verdict counts for nothing.
  if (unused !== undefined) detail.unusedRun = unused;
  const id = store.insertTest({ runId: plan.runId, name: test.name, port, seq: job.seq, startedAt: attempts[0].startedAt, finishedAt: last.finishedAt, verdict, detail, ...last.rows });
  const sum = (f: (a: Attempt) => number): number => attempts.reduce((n, a) => n + f(a), 0);
  return { runId: plan.runId, name: test.name, port, verdict, detail, startedAt: attempts[0].startedAt, finishedAt: last.finishedAt, testId: id, timeoutWaitMs: sum((a) => a.timeoutWaitMs), watchMs: sum((a) => a.watchMs), runs: attempts.length };
}

async function attemptOne(plan: RunPlan, job: Job, attempt: number, localPort: number, ticket: Ticket, shared: Shared, prober: Prober, client: ControlClient, onResend?: () => void): Promise<Attempt> {
  const { test, port } = job;
  const gate = shared.gates.get(port)!;
  let unattributed = 0;
  /** What says the responder's view of the run is short: segments it did not answer, answers that never left, segments its capture lost. */
  let responderShort = { behind: 0, notSent: 0, captureLost: 0 };
  /** Attributed by only-test: SYNs of strangers nobody took afterwards, one of which may have been the test's. */
  let strangerSyns = 0;
  /** Strangers' flows the test's own SYN displaced (evidence for the detail). */
  let displaced: string[] = [];
  /** And the initiator's own: packets its capture lost while the run went on. */
  const initiatorLostBefore = prober.captureLost();
  let alone = ticket.exclusive;
  const startedAt = new Date().toISOString();
  const isn = randomInt(0, 2 ** 32);
  const testId = `${job.seq}-${test.name}-${port}${attempt ? `-run${attempt + 1}` : ''}`;
  const notes: Record<string, unknown> = {};
  let responderView: TestObservations['responder'];
  /** Behind a box that rewrites everything: its address, as the port's first test showed it. */
  let boxAddress: string | undefined;
  /** The registration was sent and the test not collected since: the responder may hold it. */
  let mayBeRegistered = false;
  let attribution: string[] = [];
  /**
   * On a port whose path rewrites everything, the token the run's stream starts with (shared/token.ts):
   * in the token lane it names the run's connection to the responder; anywhere there, data carrying
   * another run's token on a flow the run was given says that flow was another test's.
   */
  const token = ticket.token || gate.mode === 'opaque' ? newConnectionToken() : undefined;
  /** Tokens of other runs that the data of the run's flows carried. */
  let foreignTokens: string[] = [];
  const timing = { ...plan.timing, timeoutMs: shared.rtt.initialWaitMs(plan.timing.timeoutMs) };
  const connection = prober.open({ local: { address: plan.local, port: localPort }, remote: { address: plan.responder, port }, timing, isn });
  connection.awaitsAnswer = (plan.payload ?? 'auto') === 'auto' && isRequestPort(port);
  if (onResend) connection.onResend = onResend;
  connection.onSynAck = () => ticket.answered();
  if (ticket.token && test.carriesToken === 'before-close') connection.tokenRequest = payloadFor(port, TOKEN_REQUEST_BYTES, plan.payload, plan.responderName, token);
  try {
    const sendBytes = test.plan?.sendBytes ?? 0;
    // Opaque port: registered behind the test before it (which has registered: runOne waited for
    // it); what may be sent before that one is bound, below.
    const before = ticket.predecessor ? await ticket.predecessor.whenRegistered() : '';
    // Behind a box that rewrites everything, only a SYN from the box's address can be this test's.
    boxAddress = gate.mode === 'opaque' ? gate.from : undefined;
    mayBeRegistered = true;
    await client.registerTest(plan.sessionId, {
      testId, name: test.name, port, initiatorPort: localPort, initiatorIsn: isn, plan: test.plan ?? {}, ...(before ? { after: before } : {}),
      ...(boxAddress ? { from: boxAddress } : {}),
      ...(ticket.token ? { token } : {}),
      // The responder never sends a session more than it received: pay for the data asked of it (sent again up to `attempts` times).
      ...(sendBytes ? { padding: '.'.repeat(plan.timing.attempts * sendBytes + 1024) } : {}),
    });
    ticket.registered(testId);
    if (gate.mode === 'unknown') {
      // The port's first test: the rule that binds its flow tells what the path keeps, and the others
      // start then, beside it (if it never binds, its attribution when collected tells).
      // A flow given only because the test was the one waiting may be a stranger's (a scanner's SYN
      // just before ours): once our own SYN has had a round trip to arrive and displace it (responder/
      // registry.ts), the rule that holds then tells (the responder holds its answer that long; one
      // that does not is asked again). If the test is collected meanwhile, its attribution tells.
      const displaceMs = Math.max(20, shared.rtt.ms ?? 100);
      client.whenBound(plan.sessionId, testId, BOUND_WAIT_MS, displaceMs).then(async (r) => {
        if (!r.bound || !r.rule) return;
        if (r.rule === 'only-test') {
          if (!r.held) {
            await new Promise((wake) => setTimeout(wake, displaceMs));
            r = await client.whenBound(plan.sessionId, testId, 0);
          }
          if (!r.bound || !r.rule) return;
          // The box's address, unless a stranger's SYN came near ours: then which one was the box's is not known.
          if (r.rule === 'only-test' && r.from && !r.strangerSyns && gate.mode === 'unknown') gate.from = r.from;
        }
        gate.learn(modeFromRule(r.rule));
      }).catch(() => undefined);
      ticket.bound();
    } else if (!ticket.exclusive && gate.mode === 'opaque') {
      // On an opaque port the next test may start once the responder has bound this one's flow.
      client.whenBound(plan.sessionId, testId, BOUND_WAIT_MS).then((r) => r.bound && ticket.bound(), () => undefined);
    } else ticket.bound();
    // Behind the test before it: the rest of ours (which could make a proxy connect to the responder)
    // once that one is bound; our bare SYN earlier, once that one has its SYN-ACK, but only when the
    // responder gives that one nothing but SYNs from the box's address: a box that lets some SYNs
    // through unproxied would otherwise have ours taken for that one's (initiator/schedule.ts).
    if (ticket.predecessor) {
      await (boxAddress ? ticket.predecessor.whenAnswered() : ticket.predecessor.whenBound());
      connection.holdUntil = ticket.predecessor.whenBound();
    }
    try {
      await test.run(connection, { port, payload: (n) => payloadFor(port, n, plan.payload, plan.responderName, token) });
    } catch (error) {
      notes.scriptError = error instanceof Error ? error.message : String(error);
    }
    // In-flight segments reach the responder about half a round trip after they left.
    const settle = Math.min(2000, plan.settleMs + Math.ceil((shared.rtt.ms ?? 0) / 2));
    const collected = await client.collect(plan.sessionId, testId, settle);
    mayBeRegistered = false;
    attribution = collected.attribution;
    // On a port whose path keeps the initiator's ISN or port, a test's own SYN is attributed by them,
    // and behind a box whose address the test named only the box's SYNs are candidates: a stranger's
    // SYN nobody took (a scanner's) cannot have been its own, only one from our or the box's address.
    unattributed = (gate.mode === 'identifiable' || boxAddress ? collected.unattributedFromInitiator : undefined) ?? collected.unattributed ?? 0;
    responderShort = { behind: collected.behind ?? 0, notSent: collected.notSent ?? 0, captureLost: collected.captureLost ?? 0 };
    strangerSyns = collected.strangerSyns ?? 0;
    foreignTokens = (collected.tokens ?? []).filter((t) => t !== token);
    displaced = collected.displaced ?? [];
    // Whether the port was this test's alone while the responder gathered what it collected.
    alone = ticket.exclusive;
    if (gate.mode === 'unknown') {
      const box = collected.strangerSyns ? undefined : boxAddressOf(attribution);
      if (box) gate.from = box;
      gate.learn(modeFromAttribution(attribution));
    }
    const view = collected.segments.map((s) => ({ dir: s.dir, seen: observe(fromHex(s.hex), s.atUs) }));
    responderView = { sent: view.filter((v) => v.dir === 'sent').map((v) => v.seen), received: view.filter((v) => v.dir === 'received').map((v) => v.seen) };
  } catch (error) {
    notes.collectError = error instanceof Error ? error.message : String(error);
  } finally {
    connection.dispose();
    shared.rtt.add(connection.rttMs);
    // A run that failed while the responder may hold it registered: it would stay a candidate for
    // the flows of the tests after it on the port (behind a proxy, the only one waiting), so it is
    // collected, whatever comes back, before they go on.
    if (mayBeRegistered) await client.collect(plan.sessionId, testId, 0).catch(() => undefined);
    ticket.done();
  }
  Object.assign(notes, connection.notes);
  // Behind a box that rewrites everything and whose address is known, a flow of the test from any
  // other address went past it (responder/registry.ts attributes such a segment by our ISN or port).
  const bypassed = boxAddress ? attribution.map((a) => a.slice(0, a.lastIndexOf(' by '))).filter((flow) => !flow.startsWith(`${boxAddress}|`)) : [];
  // A run with a token that no connection of the box's named (the box relayed none of its data, or
  // the run failed): what the box did with it is not known; the next run goes alone, chained.
  const unnamed = ticket.token && !attribution.some((a) => a.endsWith(' by token'));
  const initiatorLost = prober.captureLost() - initiatorLostBefore;
  const headless = !responderShort.captureLost && headlessRecord({ initiator: { sent: connection.sent, received: connection.received }, responder: responderView });
  const observations: TestObservations = {
    name: test.name,
    port,
    local: connection.local,
    remote: connection.remote,
    isn,
    initiator: { sent: connection.sent, received: connection.received },
    responder: responderView,
    notes,
  };
  let judgement: Judgement;
  try {
    judgement = test.judge(observations);
    // A verdict outside the test's own list would corrupt every table built on it.
    if (!allVerdicts(test).includes(judgement.verdict)) judgement = { verdict: 'inconclusive', detail: { reason: `the judge gave "${judgement.verdict}", which is not one of its verdicts (${allVerdicts(test).join(', ')})` } };
  } catch (error) {
    judgement = { verdict: 'inconclusive', detail: { reason: `the judge failed: ${error instanceof Error ? error.message : String(error)}` } };
  }
  const detail = { ...judgement.detail, ...(attribution.length ? { attribution } : {}), ...(displaced.length ? { displacedFlows: displaced } : {}), ...(notes.collectError || notes.scriptError ? { errors: notes } : {}) };
  const rows = segmentsAndDiffs(observations);
  const lossSigns = [
    ...(connection.resends ? [`${connection.resends} resent`] : []),
    ...(connection.timeoutWaitMs ? [`${Math.round(connection.timeoutWaitMs)} ms waiting for answers that never came`] : []),
    ...(rows.lost.forward ? [`${rows.lost.forward} sent by the initiator never seen by the responder`] : []),
    ...(rows.lost.reverse ? [`${rows.lost.reverse} sent by the responder never seen by the initiator`] : []),
    // Shared with other tests, a segment nobody could take may have been this test's: run it again alone.
    ...(unattributed && !alone ? [`${unattributed} segments on port ${port} that no test could take while others ran on it`] : []),
    ...(responderShort.behind ? [`${responderShort.behind} of its segments recorded but not answered by the responder, which was behind a flood`] : []),
    ...(responderShort.notSent ? [`${responderShort.notSent} answers of the responder recorded as sent that never left it (its socket's buffer was full)`] : []),
    ...(foreignTokens.length ? [`data carrying another run's token (${foreignTokens.join(', ')}) reached the responder on a connection given to this run: a late connection of another test`] : []),
    ...(unnamed ? [`no connection from the box (${boxAddress}) on port ${port} carried the run's token to the responder`] : []),
    ...(bypassed.length ? [`flows ${bypassed.join(', ')} reached the responder from another address than the box's (${boxAddress}) that relays the port's connections`] : []),
    ...(headless ? [`the responder recorded ${responderView!.received.length} segments for the test and no SYN among them: not a connection the test opened`] : []),
    ...(strangerSyns ? [`${strangerSyns} SYNs from other addresses on port ${port} that nobody took after a flow was given to the test only because it was the one waiting`] : []),
    ...(initiatorLost > 0 ? [`${initiatorLost} packets lost by the initiator's capture while it ran (some may have been its answers)`] : []),
    ...(responderShort.captureLost ? [`${responderShort.captureLost} segments lost by the responder's capture while it ran (some may have been its own)`] : []),
  ];
  return {
    verdict: judgement.verdict, detail, observations, startedAt, finishedAt: new Date().toISOString(),
    timeoutWaitMs: connection.timeoutWaitMs, watchMs: connection.watchMs, rows: { segments: rows.segments, diffs: rows.diffs }, lossSigns,
    wantsExclusive: (unattributed > 0 && !alone) || unnamed || foreignTokens.length > 0,
    ...(typeof judgement.detail.probesSent === 'number' ? { probeCopies: judgement.detail.probesSent } : {}),
    waited: connection.resends > 0 || connection.timeoutWaitMs > 0,
    ...(responderShort.behind || responderShort.notSent || responderShort.captureLost || initiatorLost > 0 ? { incompleteView: true } : {}),
    ...(strangerSyns || foreignTokens.length || headless ? { ambiguous: true } : {}),
    ...(bypassed.length ? { bypassed: true } : {}),
  };
}

/**
 * A test whose SYN nobody answered sent nothing but that SYN (and its copies), so a responder record
 * of segments without a SYN among them (when the responder's capture lost nothing) is of no
 * connection the test opened: a stranger's segments the responder took for the test's (a scanner's
 * junk while the test waited on the port). Such a run proves nothing. (Once a box answered the SYN,
 * a record without one is honest: a proxy that pools its upstream connections relays the test's data
 * on one it opened earlier, as the lab's squid and HAProxy do for ack-hole.)
 */
export function headlessRecord(obs: { initiator: { sent: readonly Observed[]; received: readonly Observed[] }; responder?: { received: readonly Observed[] } }): boolean {
  const received = obs.responder?.received ?? [];
  return received.length > 0 && !received.some(isSyn) && obs.initiator.sent.some(isSyn) && !obs.initiator.received.some(isSynAck);
}

/**
 * The rows for the store: all four segment lists, and a diff for every segment matched across the
 * path in each direction (sequence numbers also compared relative to each side's ISN).
 */
export function segmentsAndDiffs(obs: TestObservations): { segments: SegmentRecord[]; diffs: DiffRecord[]; lost: { forward: number; reverse: number } } {
  const segments: SegmentRecord[] = [];
  const add = (list: Observed[], side: SegmentRecord['side'], dir: SegmentRecord['dir']): number[] =>
    list.map((o) => segments.push({ side, dir, atUs: o.atUs, bytes: o.bytes }) - 1);
  const initiatorSent = add(obs.initiator.sent, 'initiator', 'sent');
  const initiatorReceived = add(obs.initiator.received, 'initiator', 'received');
  const diffs: DiffRecord[] = [];
  const lost = { forward: 0, reverse: 0 };
  if (!obs.responder) return { segments, diffs, lost };
  const responderSent = add(obs.responder.sent, 'responder', 'sent');
  const responderReceived = add(obs.responder.received, 'responder', 'received');
  const isnOf = (list: Observed[], match: (o: Observed) => boolean): number | undefined => list.find(match)?.packet.tcp?.seq;
  const initiatorIsn = { sent: obs.isn, received: isnOf(obs.responder.received, isSyn) ?? obs.isn };
  const responderIsnSent = isnOf(obs.responder.sent, isSynAck);
  const responderIsnSeen = isnOf(obs.initiator.received, isSynAck);
  const responderIsn = responderIsnSent !== undefined && responderIsnSeen !== undefined ? { sent: responderIsnSent, received: responderIsnSeen } : undefined;
  const direction = (sentList: Observed[], sentIds: number[], receivedList: Observed[], receivedIds: number[], seqIsn: { sent: number; received: number } | undefined, ackIsn: { sent: number; received: number } | undefined): number => {
    const match = matchSegments(sentList.map((o) => o.packet), receivedList.map((o) => o.packet), { isn: seqIsn, ackIsn });
    for (const group of match.groups) {
      for (const [s, r] of group.pairs) {
        for (const row of diffSegments(sentList[s].packet, receivedList[r].packet, { seq: seqIsn, ack: ackIsn })) {
          diffs.push({ sentSegment: sentIds[s], receivedSegment: receivedIds[r], layer: row.layer, field: row.field, sent: row.sent, received: row.received, class: row.class, change: row.change });
        }
      }
    }
    // Lost on the way: SYNs and data segments nothing arrived of (proxies absorb pure ACKs and make their own, so those say nothing).
    return match.dropped.filter((i) => isSyn(sentList[i]) || isSynAck(sentList[i]) || hasData(sentList[i])).length;
  };
  lost.forward = direction(obs.initiator.sent, initiatorSent, obs.responder.received, responderReceived, initiatorIsn, responderIsn && { sent: responderIsn.received, received: responderIsn.sent });
  lost.reverse = direction(obs.responder.sent, responderSent, obs.initiator.received, initiatorReceived, responderIsn, { sent: initiatorIsn.received, received: initiatorIsn.sent });
  return { segments, diffs, lost };
}
