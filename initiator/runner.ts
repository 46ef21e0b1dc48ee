import PQueue from 'p-queue';
import { randomInt } from 'node:crypto';
import { diffSegments } from '../shared/diff.js';
import { matchSegments } from '../shared/match.js';
import type { DiffRecord, SegmentRecord, Store } from '../shared/store.js';
import { fromHex } from '../shared/wire/bytes.js';
import type { ControlClient } from './control-client.js';
import { isSyn, isSynAck } from './judge-helpers.js';
import { payloadFor } from './payloads.js';
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
}

export interface RunPlan {
  runId: string;
  sessionId: string;
  tests: readonly TestCase[];
  ports: readonly number[];
  local: string;
  responder: string;
  /** Local ports reserved for the run, one per test. */
  localPorts: number[];
  concurrency: number;
  timing: Timing;
  /** Payload shaping: per port (auto) or a plain pattern everywhere (raw). */
  payload?: 'auto' | 'raw';
  /** The responder as the user named it (`--responder`): the Host and SNI of shaped payloads, which a forwarding proxy connects to. */
  responderName?: string;
  /** How long the responder waits for in-flight segments before handing over a test's view. */
  settleMs: number;
  /** Aborting stops scheduling new tests; tests under way finish (a few seconds at most) and are stored. */
  signal?: AbortSignal;
  onResult?: (result: TestResult, done: number, total: number) => void;
}

/**
 * Runs every (test, port) pair. Tests on the same responder port never run at once, so a middlebox
 * that rewrites everything still leaves the responder one test to attribute a flow to; different
 * ports run in parallel up to `concurrency`. Each test is committed to the store as it completes.
 */
export async function runTests(plan: RunPlan, prober: Prober, client: ControlClient, store: Store): Promise<TestResult[]> {
  const jobs = plan.ports.flatMap((port) => plan.tests.map((test) => ({ test, port })));
  if (plan.localPorts.length < jobs.length) throw new Error(`need ${jobs.length} local ports, ${plan.localPorts.length} reserved`);
  const results: TestResult[] = [];
  const queue = new PQueue({ concurrency: plan.concurrency });
  const lanes = new Map<number, Promise<void>>();
  const jobPromises = jobs.map(({ test, port }, seq) => {
    const job = { test, port, seq, localPort: plan.localPorts[seq] };
    const previous = lanes.get(job.port) ?? Promise.resolve();
    const mine = previous.then(() => queue.add(async () => {
      if (plan.signal?.aborted) return;
      const result = await runOne(plan, job, prober, client, store);
      results.push(result);
      plan.onResult?.(result, results.length, jobs.length);
    }));
    lanes.set(job.port, mine.then(() => undefined, () => undefined));
    return mine;
  });
  await Promise.all(jobPromises);
  return results.sort((a, b) => a.testId - b.testId);
}

async function runOne(plan: RunPlan, job: { test: TestCase; port: number; seq: number; localPort: number }, prober: Prober, client: ControlClient, store: Store): Promise<TestResult> {
  const { test, port } = job;
  const startedAt = new Date().toISOString();
  const isn = randomInt(0, 2 ** 32);
  const testId = `${job.seq}-${test.name}-${port}`;
  const notes: Record<string, unknown> = {};
  let responderView: TestObservations['responder'];
  let attribution: string[] = [];
  const connection = prober.open({ local: { address: plan.local, port: job.localPort }, remote: { address: plan.responder, port }, timing: plan.timing, isn });
  try {
    const sendBytes = test.plan?.sendBytes ?? 0;
    await client.registerTest(plan.sessionId, {
      testId, name: test.name, port, initiatorPort: job.localPort, initiatorIsn: isn, plan: test.plan ?? {},
      ...(sendBytes ? { padding: '.'.repeat(sendBytes + 1024) } : {}),
    });
    try {
      await test.run(connection, { port, payload: (n) => payloadFor(port, n, plan.payload, plan.responderName) });
    } catch (error) {
      notes.scriptError = error instanceof Error ? error.message : String(error);
    }
    const collected = await client.collect(plan.sessionId, testId, plan.settleMs);
    attribution = collected.attribution;
    const view = collected.segments.map((s) => ({ dir: s.dir, seen: observe(fromHex(s.hex), s.atUs) }));
    responderView = { sent: view.filter((v) => v.dir === 'sent').map((v) => v.seen), received: view.filter((v) => v.dir === 'received').map((v) => v.seen) };
  } catch (error) {
    notes.collectError = error instanceof Error ? error.message : String(error);
  } finally {
    connection.dispose();
  }
  Object.assign(notes, connection.notes);
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
  const detail = { ...judgement.detail, ...(attribution.length ? { attribution } : {}), ...(notes.collectError || notes.scriptError ? { errors: notes } : {}) };
  const finishedAt = new Date().toISOString();
  const { segments, diffs } = segmentsAndDiffs(observations);
  const id = store.insertTest({ runId: plan.runId, name: test.name, port, seq: job.seq, startedAt, finishedAt, verdict: judgement.verdict, detail, segments, diffs });
  return { runId: plan.runId, name: test.name, port, verdict: judgement.verdict, detail, startedAt, finishedAt, testId: id, timeoutWaitMs: connection.timeoutWaitMs, watchMs: connection.watchMs };
}

/**
 * The rows for the store: all four segment lists, and a diff for every segment matched across the
 * path in each direction (sequence numbers also compared relative to each side's ISN).
 */
export function segmentsAndDiffs(obs: TestObservations): { segments: SegmentRecord[]; diffs: DiffRecord[] } {
  const segments: SegmentRecord[] = [];
  const add = (list: Observed[], side: SegmentRecord['side'], dir: SegmentRecord['dir']): number[] =>
    list.map((o) => segments.push({ side, dir, atUs: o.atUs, bytes: o.bytes }) - 1);
  const initiatorSent = add(obs.initiator.sent, 'initiator', 'sent');
  const initiatorReceived = add(obs.initiator.received, 'initiator', 'received');
  const diffs: DiffRecord[] = [];
  if (!obs.responder) return { segments, diffs };
  const responderSent = add(obs.responder.sent, 'responder', 'sent');
  const responderReceived = add(obs.responder.received, 'responder', 'received');
  const isnOf = (list: Observed[], match: (o: Observed) => boolean): number | undefined => list.find(match)?.packet.tcp?.seq;
  const initiatorIsn = { sent: obs.isn, received: isnOf(obs.responder.received, isSyn) ?? obs.isn };
  const responderIsnSent = isnOf(obs.responder.sent, isSynAck);
  const responderIsnSeen = isnOf(obs.initiator.received, isSynAck);
  const responderIsn = responderIsnSent !== undefined && responderIsnSeen !== undefined ? { sent: responderIsnSent, received: responderIsnSeen } : undefined;
  const direction = (sentList: Observed[], sentIds: number[], receivedList: Observed[], receivedIds: number[], seqIsn: { sent: number; received: number } | undefined, ackIsn: { sent: number; received: number } | undefined): void => {
    const match = matchSegments(sentList.map((o) => o.packet), receivedList.map((o) => o.packet), { isn: seqIsn, ackIsn });
    for (const group of match.groups) {
      for (const [s, r] of group.pairs) {
        for (const row of diffSegments(sentList[s].packet, receivedList[r].packet, { seq: seqIsn, ack: ackIsn })) {
          diffs.push({ sentSegment: sentIds[s], receivedSegment: receivedIds[r], layer: row.layer, field: row.field, sent: row.sent, received: row.received, class: row.class, change: row.change });
        }
      }
    }
  };
  direction(obs.initiator.sent, initiatorSent, obs.responder.received, responderReceived, initiatorIsn, responderIsn && { sent: responderIsn.received, received: responderIsn.sent });
  direction(obs.responder.sent, responderSent, obs.initiator.received, initiatorReceived, responderIsn, { sent: initiatorIsn.received, received: initiatorIsn.sent });
  return { segments, diffs };
}
