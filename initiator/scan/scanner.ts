/**
 * The scan itself: every target of a list, every port, every server test, at most `concurrency`
 * targets at once (p-queue, fed as slots free up, so a list of any length costs memory for the targets
 * under way only), one connection at a time per server address, SYNs within the global rate. Each
 * test's verdict is published as initiator/confirm.ts says (a verdict resting on an answer that never
 * came needs a second run to agree) and committed to the store at once.
 */
import PQueue from 'p-queue';
import { isIP } from 'node:net';
import type { Store } from '../../shared/store.js';
import { ipv6ToBytes, ipv6ToString } from '../../shared/wire/address.js';
import { decide, MAX_TEST_RUNS, type Decision, type TestRun } from '../confirm.js';
import type { Timing } from '../probe.js';
import type { Judgement } from '../test-case.js';
import { serverSegmentsAndDiffs } from '../catalogue/server/judging.js';
import { requestFor } from '../catalogue/server/request.js';
import { ScanConnection } from '../catalogue/server/scan-connection.js';
import { allServerVerdicts, type ServerObservations, type ServerTarget, type ServerTest } from '../catalogue/server/server-test.js';
import { TargetPace, type SynRate } from './pace.js';
import type { ScanProber } from './prober.js';
import { isExcluded, reservedRange, resolveTarget, type Exclusions, type Lookup, type TargetSpec } from './targets.js';

export interface ScanPlan {
  runId: string;
  tests: readonly ServerTest[];
  /** Ports for targets given without one. */
  ports: readonly number[];
  family?: 4 | 6;
  /** At most this many targets (list entries) at once. */
  concurrency: number;
  synRate: SynRate;
  /** Per target: at least this long between one connection's end and the next one's SYN. */
  gapMs: number;
  timing: Timing;
  /** Reserved local ports; a server never sees the same one twice in a scan. */
  localPorts: readonly number[];
  exclusions: Exclusions;
  allowPrivate: boolean;
  lookup: Lookup;
  /**
   * This host's source address toward `address`, once the capture of the interface it leaves by is
   * open (the route of a family's first target serves its whole family); undefined without a route.
   */
  route(address: string): Promise<string | undefined>;
  /** In the User-Agent of HTTP requests: whom a server's operator can write to. */
  contact?: string;
  /** Aborting stops starting tests; tests under way finish and are stored. */
  signal?: AbortSignal;
  onResult?: (result: ServerResult) => void;
  /** A list entry was finished (every address and port), skipped, or could not be resolved. */
  onEntry?: (entry: TargetSpec, outcome: EntryOutcome) => void;
}

export interface ServerResult {
  runId: string;
  target: ServerTarget;
  name: string;
  verdict: string;
  detail: Record<string, unknown>;
  testId: number;
  runs: number;
  startedAt: string;
  finishedAt: string;
}

/** What became of a list entry. */
export interface EntryOutcome {
  /** Address and port pairs scanned. */
  scanned: number;
  /** Addresses left out, and why. */
  excluded: number;
  reserved: number;
  duplicate: number;
  noRoute: number;
  /** The name did not resolve (to an address of the asked family). */
  unresolved?: string;
}

export interface ScanSummary {
  entries: number;
  scannedTargets: number;
  tests: number;
  excluded: number;
  reserved: number;
  duplicate: number;
  noRoute: number;
  unresolved: number;
  interrupted: boolean;
}

/** The canonical text of an address (what captured segments are matched against). */
const canonical = (address: string): string => (isIP(address) === 6 ? ipv6ToString(ipv6ToBytes(address)) : address);

export async function scanTargets(entries: readonly TargetSpec[], plan: ScanPlan, prober: ScanProber, store: Store): Promise<ScanSummary> {
  const summary: ScanSummary = { entries: entries.length, scannedTargets: 0, tests: 0, excluded: 0, reserved: 0, duplicate: 0, noRoute: 0, unresolved: 0, interrupted: false };
  const scanned = new Set<string>();
  const busy = new Map<string, Promise<void>>();
  const ports = new LocalPortPool(plan.localPorts);
  let seq = 0;
  const slots = new PQueue({ concurrency: plan.concurrency });
  const failures: unknown[] = [];

  /** One address at a time: a second entry resolving to an address under way waits for it. */
  const exclusively = async (address: string, work: () => Promise<void>): Promise<void> => {
    for (let current = busy.get(address); current; current = busy.get(address)) await current;
    const done = work();
    busy.set(address, done.finally(() => busy.delete(address)));
    await done;
  };

  const scanAddress = async (address: string, name: string | undefined, targetPorts: readonly number[]): Promise<void> => {
    const pace = new TargetPace(plan.synRate, plan.gapMs, plan.timing.timeoutMs);
    const used = new Set<number>();
    const local = (await plan.route(address))!;
    for (const port of targetPorts) {
      const target: ServerTarget = name === undefined ? { address, port } : { address, name, port };
      // Once an ordinary SYN found the port closed or silent, the other tests would only find that again.
      let skip: { verdict: string; test: string } | undefined;
      for (const test of plan.tests) {
        if (plan.signal?.aborted) return;
        const startedAt = new Date().toISOString();
        const outcome = skip
          ? { verdict: skip.verdict, detail: { reason: `not probed: ${skip.test} found the port ${skip.verdict === 'reset' ? 'closed (a RST to an ordinary SYN)' : 'unreachable (no answer to an ordinary SYN, twice)'}` }, runs: 0, rows: { segments: [], diffs: [] }, finishedAt: startedAt, startedAt }
          : await runTest(test, target, local, plan, prober, pace, ports, used);
        const testId = store.insertTest({
          runId: plan.runId, name: test.name, port, seq: seq++, startedAt: outcome.startedAt, finishedAt: outcome.finishedAt,
          verdict: outcome.verdict, detail: outcome.detail, segments: outcome.rows.segments, diffs: outcome.rows.diffs, target: address, targetName: name ?? null,
        });
        summary.tests++;
        plan.onResult?.({ runId: plan.runId, target, name: test.name, verdict: outcome.verdict, detail: outcome.detail, testId, runs: outcome.runs, startedAt: outcome.startedAt, finishedAt: outcome.finishedAt });
        if (!skip && test === plan.tests[0] && (outcome.verdict === 'unreachable' || outcome.verdict === 'reset')) skip = { verdict: outcome.verdict, test: test.name };
      }
    }
  };

  const scanEntry = async (entry: TargetSpec): Promise<void> => {
    const outcome: EntryOutcome = { scanned: 0, excluded: 0, reserved: 0, duplicate: 0, noRoute: 0 };
    const name = isIP(entry.host) ? undefined : entry.host;
    if (name !== undefined && isExcluded(plan.exclusions, { name })) {
      outcome.excluded++;
    } else {
      const resolved = await resolveTarget(entry, plan.family, plan.lookup);
      if (resolved.addresses.length === 0) outcome.unresolved = resolved.error ?? (plan.family ? `no IPv${plan.family} address` : 'no address');
      for (const address of resolved.addresses.map(canonical)) {
        if (plan.signal?.aborted) break;
        if (isExcluded(plan.exclusions, { address, name })) {
          outcome.excluded++;
          continue;
        }
        if (!plan.allowPrivate && reservedRange(address) !== undefined) {
          outcome.reserved++;
          continue;
        }
        if (!(await plan.route(address))) {
          outcome.noRoute++;
          continue;
        }
        const targetPorts = (entry.port !== undefined ? [entry.port] : plan.ports).filter((p) => {
          const fresh = !scanned.has(`${address}|${p}`);
          scanned.add(`${address}|${p}`);
          if (!fresh) outcome.duplicate++;
          return fresh;
        });
        if (targetPorts.length === 0) continue;
        outcome.scanned += targetPorts.length;
        summary.scannedTargets += targetPorts.length;
        await exclusively(address, () => scanAddress(address, name, targetPorts));
      }
    }
    summary.excluded += outcome.excluded;
    summary.reserved += outcome.reserved;
    summary.duplicate += outcome.duplicate;
    summary.noRoute += outcome.noRoute;
    if (outcome.unresolved) summary.unresolved++;
    plan.onEntry?.(entry, outcome);
  };

  for (const entry of entries) {
    if (plan.signal?.aborted || failures.length) break;
    await slots.onSizeLessThan(1);
    slots.add(() => scanEntry(entry)).catch((error: unknown) => failures.push(error));
  }
  await slots.onIdle();
  if (failures.length) throw failures[0];
  summary.interrupted = plan.signal?.aborted ?? false;
  return summary;
}

/**
 * The reserved local ports, handed out in turn; a server never sees one twice in a scan (`used`: the
 * ports its connections had), so no connection meets state the server keeps for an earlier one
 * (TIME_WAIT after it closed first). Different servers share ports freely: the 4-tuples differ.
 */
class LocalPortPool {
  private next = 0;
  constructor(private readonly ports: readonly number[]) {}

  take(used: Set<number>): number {
    for (let tried = 0; tried < this.ports.length; tried++) {
      const port = this.ports[this.next];
      this.next = (this.next + 1) % this.ports.length;
      if (!used.has(port)) {
        used.add(port);
        return port;
      }
    }
    throw new Error(`all ${this.ports.length} reserved local ports were used for one server: scan it with fewer ports or tests per run`);
  }
}

interface TestOutcome {
  verdict: string;
  detail: Record<string, unknown>;
  runs: number;
  rows: ReturnType<typeof serverSegmentsAndDiffs>;
  startedAt: string;
  finishedAt: string;
}

/** Runs a test on a target until its verdict may be published (initiator/confirm.ts), at most three times. */
async function runTest(
  test: ServerTest, target: ServerTarget, local: string, plan: ScanPlan, prober: ScanProber, pace: TargetPace, ports: LocalPortPool, used: Set<number>,
): Promise<TestOutcome> {
  const attempts: Array<TestRun & { judgement: Judgement; rows: TestOutcome['rows']; startedAt: string; finishedAt: string }> = [];
  let decision: Decision = { final: false };
  const kinds = { clean: test.verdicts[0], absence: [...test.absenceVerdicts, 'unreachable'] };
  while (attempts.length < MAX_TEST_RUNS) {
    attempts.push(await attemptOnce(test, target, local, plan, prober, pace, ports, used));
    decision = decide(kinds, attempts);
    if (decision.final || plan.signal?.aborted) break;
  }
  const last = attempts[attempts.length - 1];
  const verdict = decision.final ? decision.verdict : 'inconclusive';
  const detail: Record<string, unknown> = { ...last.judgement.detail };
  if (decision.final && decision.reason) detail.reason = decision.reason;
  if (!decision.final) {
    detail.reason = `${last.verdict}, not confirmed: the scan was interrupted before a confirming run`;
    detail.unconfirmedVerdict = last.verdict;
  }
  if (attempts.length > 1) detail.runs = attempts.map((a) => ({ verdict: a.verdict, ...(a.lossSigns.length ? { lossSigns: a.lossSigns } : {}) }));
  return { verdict, detail, runs: attempts.length, rows: last.rows, startedAt: attempts[0].startedAt, finishedAt: last.finishedAt };
}

async function attemptOnce(
  test: ServerTest, target: ServerTarget, local: string, plan: ScanPlan, prober: ScanProber, pace: TargetPace, ports: LocalPortPool, used: Set<number>,
) {
  const startedAt = new Date().toISOString();
  const connections: ScanConnection[] = [];
  const notes: Record<string, unknown> = {};
  try {
    await test.run({
      target,
      request: () => requestFor(target, plan.contact),
      open(role) {
        // The script is done with the connection before: the politeness gap starts at its end.
        if (connections.length > 0) pace.connectionEnded();
        const probe = prober.connect({ address: local, port: ports.take(used) }, { address: target.address, port: target.port }, plan.timing);
        const connection = new ScanConnection(role, probe, pace);
        connections.push(connection);
        return connection;
      },
    });
  } catch (error) {
    notes.scriptError = error instanceof Error ? error.message : String(error);
  } finally {
    for (const c of connections) c.probe.dispose();
    if (connections.length > 0) pace.connectionEnded();
  }
  const observations: ServerObservations = {
    name: test.name,
    target,
    connections: connections.map((c) => ({ role: c.role, local: c.probe.local, isn: c.probe.isn, sent: c.probe.sent, received: c.probe.received, notes: c.notes })),
    notes,
  };
  let judgement: Judgement;
  try {
    judgement = test.judge(observations);
    if (!allServerVerdicts(test).includes(judgement.verdict)) {
      judgement = { verdict: 'inconclusive', detail: { reason: `the judge gave "${judgement.verdict}", which is not one of its verdicts (${allServerVerdicts(test).join(', ')})` } };
    }
  } catch (error) {
    judgement = { verdict: 'inconclusive', detail: { reason: `the judge failed: ${error instanceof Error ? error.message : String(error)}` } };
  }
  if (notes.scriptError) judgement = { verdict: judgement.verdict, detail: { ...judgement.detail, errors: notes } };
  const resends = connections.reduce((n, c) => n + c.probe.resends, 0);
  const waited = connections.reduce((n, c) => n + c.probe.timeoutWaitMs, 0);
  const lossSigns = [
    ...(resends ? [`${resends} resent`] : []),
    ...(waited ? [`${Math.round(waited)} ms waiting for answers that never came`] : []),
  ];
  return { verdict: judgement.verdict, judgement, lossSigns, rows: serverSegmentsAndDiffs(observations), startedAt, finishedAt: new Date().toISOString() };
}
