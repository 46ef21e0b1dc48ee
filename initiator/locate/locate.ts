/**
 * Localising tests: each test runs again on a connection of its own, exactly as its script says,
 * and when the script sends the probe the tracer sends its copies (trace.ts). Once every test's copies
 * are in, what all the flows of a path heard (which hop answers at which TTL, where the responder is)
 * is pooled, and each test gets its finding (findings.ts) and its hop rows for the store.
 *
 * Tests run at once, as many as `concurrency`; on a port where the responder could attribute the
 * run's segments only because one test waited at a time (a split-connection proxy), one at a time.
 */
import PQueue from 'p-queue';
import { randomInt } from 'node:crypto';
import { compareQuote, type QuoteComparison } from '../../shared/quote.js';
import { diffSegments } from '../../shared/diff.js';
import type { HopRecord } from '../../shared/store.js';
import { fromHex } from '../../shared/wire/bytes.js';
import { decodePacket, ttlOf } from '../../shared/wire/packet.js';
import type { ControlClient } from '../control-client.js';
import { isSyn, isSynAck, observe } from '../observed.js';
import { isRequestPort, payloadFor } from '../payloads.js';
import type { ProbeConnection, Prober, Timing } from '../probe.js';
import type { TestCase } from '../test-case.js';
import { locate, type FlowTrace, type HopObservation, type Location, type PathView } from './findings.js';
import { IcmpListener, PathLearner, ProbeTracer, type TraceSettings } from './trace.js';

export interface LocateTarget {
  test: TestCase;
  port: number;
  /** Traced only for what it shows of the path (the hops' addresses a dropped probe never reaches): no finding of its own. */
  reference?: boolean;
}

export interface LocatePlan {
  sessionId: string;
  local: string;
  responder: string;
  /** The responder as the user named it: Host and SNI of shaped payloads. */
  responderName?: string;
  payload?: 'auto' | 'raw';
  timing: Timing;
  maxHops: number;
  retries: number;
  mode: 'parallel' | 'sequential';
  concurrency: number;
  /** One fresh local port per target. */
  localPorts: number[];
  /** Ports where tests must run one at a time (the responder attributes by "the only test waiting"). */
  opaquePorts: ReadonlySet<number>;
  /** The path's round trip as known so far (a control request's). */
  rttMs?: number;
  /** How long the responder waits for segments in flight before handing over a test's view. */
  settleMs: number;
  /** Called as each test's copies are all in (before the findings, which wait for every test). */
  onTraced?: (target: LocateTarget, done: number, total: number) => void;
}

export interface LocateIo {
  prober: Prober;
  client: ControlClient;
  listener: IcmpListener;
  /** Sends a whole IP packet (the raw sender the prober uses). */
  send(bytes: Uint8Array): Promise<void>;
}

export interface LocateResult {
  target: LocateTarget;
  location: Location;
  hops: HopRecord[];
  /** Rounds of copies and the time the trace held the test's script up. */
  rounds: number;
  tracingMs: number;
}

interface Traced {
  target: LocateTarget;
  trace: FlowTrace;
  tracer: ProbeTracer;
}

/** A test can be localised when it names its probe (TestCase.probe). */
export const localisable = (test: TestCase): boolean => test.probe !== undefined;

export async function locateTargets(plan: LocatePlan, targets: readonly LocateTarget[], io: LocateIo): Promise<LocateResult[]> {
  if (plan.localPorts.length < targets.length) throw new Error(`need ${targets.length} local ports for locate, ${plan.localPorts.length} reserved`);
  const learners = { 4: new PathLearner(), 6: new PathLearner() };
  const family = plan.local.includes(':') ? 6 : 4;
  let rtt = plan.rttMs;
  const settings: TraceSettings = {
    maxHops: plan.maxHops,
    retries: plan.retries,
    // About a round trip and a half: the farthest hop's error has come back by then.
    roundMs: () => Math.min(plan.timing.timeoutMs, Math.max(20, Math.ceil(1.5 * (rtt ?? plan.timing.timeoutMs) + 10))),
    mode: plan.mode,
    send: io.send,
  };
  const queue = new PQueue({ concurrency: plan.concurrency });
  const portChains = new Map<number, Promise<unknown>>();
  let done = 0;
  const traced = await Promise.all(targets.map((target, i) => {
    const run = (): Promise<Traced> => queue.add(async () => {
      const result = await traceOne(plan, target, i, settings, learners[family], io);
      if (result.rtt !== undefined) rtt = rtt === undefined ? result.rtt : Math.min(rtt, result.rtt);
      plan.onTraced?.(target, ++done, targets.length);
      return result.traced;
    }) as Promise<Traced>;
    if (!plan.opaquePorts.has(target.port)) return run();
    // One at a time on an opaque port: each waits for the one before it.
    const chained = (portChains.get(target.port) ?? Promise.resolve()).then(run, run);
    portChains.set(target.port, chained.catch(() => undefined));
    return chained;
  }));
  const view = pathView(traced.map((t) => t.trace), learners[family]);
  return traced.map(({ target, trace, tracer }) => {
    const location = locate(trace, view);
    return { target, location, hops: hopRecords(trace, location), rounds: trace.rounds, tracingMs: Math.round(tracer.tracingMs) };
  });
}

async function traceOne(plan: LocatePlan, target: LocateTarget, index: number, settings: TraceSettings, learner: PathLearner, io: LocateIo): Promise<{ traced: Traced; rtt?: number }> {
  const { test, port } = target;
  const localPort = plan.localPorts[index];
  const isn = randomInt(0, 2 ** 32);
  const testId = `locate-${index}-${test.name}-${port}`;
  const connection = io.prober.open({ local: { address: plan.local, port: localPort }, remote: { address: plan.responder, port }, timing: plan.timing, isn });
  connection.awaitsAnswer = (plan.payload ?? 'auto') === 'auto' && isRequestPort(port);
  const tracer = new ProbeTracer(test.probe!, connection, io.listener, settings, learner);
  let received: Uint8Array[] = [];
  try {
    if (!test.probe!.reversePath) {
      const sendBytes = test.plan?.sendBytes ?? 0;
      await io.client.registerTest(plan.sessionId, {
        testId, name: test.name, port, initiatorPort: localPort, initiatorIsn: isn, plan: test.plan ?? {},
        ...(sendBytes ? { padding: '.'.repeat(plan.timing.attempts * sendBytes + 1024) } : {}),
      });
      try {
        await test.run(connection, { port, payload: (n) => payloadFor(port, n, plan.payload, plan.responderName) });
      } catch {
        // A script that fails after its probe still has its copies traced; one that fails before has none (no-probe).
      }
      const collected = await io.client.collect(plan.sessionId, testId, plan.settleMs);
      received = collected.segments.filter((s) => s.dir === 'received').map((s) => fromHex(s.hex));
    }
  } finally {
    connection.dispose();
    tracer.close();
  }
  const trace = flowTrace(target, tracer, connection, received, plan.responder, isn);
  return { traced: { target, trace, tracer }, ...(connection.rttMs !== undefined ? { rtt: connection.rttMs } : {}) };
}

/** What one flow's tracer and connection saw, as the findings read it. */
function flowTrace(target: LocateTarget, tracer: ProbeTracer, connection: ProbeConnection, received: Uint8Array[], responder: string, isn: number): FlowTrace {
  const probe = target.test.probe!;
  const hops: HopObservation[] = [];
  const seen = new Set<string>();
  let unmatched = 0;
  for (const q of tracer.quotes) {
    const ttl = q.reading.ttl;
    const sent = ttl !== undefined ? tracer.copies.get(ttl) : undefined;
    if (ttl === undefined || !sent) {
      unmatched++;
      continue;
    }
    const key = `${ttl}|${q.error.ip.src}`;
    if (seen.has(key)) continue;
    seen.add(key);
    hops.push({ ttl, kind: q.error.kind, router: q.error.ip.src, atUs: q.atUs, sent, quote: q.error.quote.bytes, packet: q.bytes, comparison: compareQuote(sent, q.error.quote) });
  }
  const atResponder: HopObservation[] = [];
  for (const bytes of received) {
    const ttl = tracer.readSegment(bytes);
    const sent = ttl !== undefined ? tracer.copies.get(ttl) : undefined;
    if (ttl === undefined || !sent || atResponder.some((o) => o.ttl === ttl)) continue;
    atResponder.push({ ttl, kind: 'responder', router: responder, atUs: 0, sent, quote: bytes, comparison: wholeComparison(sent, bytes) });
  }
  atResponder.sort((a, b) => a.ttl - b.ttl);
  const synAck = connection.received.find(isSynAck);
  const ownSyn = received.map((b) => observe(b, 0)).find((o) => isSyn(o) && o.packet.tcp!.seq === isn);
  const translated = ownSyn && (ownSyn.packet.ip!.src !== connection.local.address || ownSyn.packet.tcp!.srcPort !== connection.local.port)
    ? { sent: endpoint(connection.local.address, connection.local.port), received: endpoint(ownSyn.packet.ip!.src, ownSyn.packet.tcp!.srcPort) }
    : undefined;
  return {
    test: target.test.name,
    port: target.port,
    examines: probe.examines,
    reversePath: probe.reversePath === true,
    probeSent: tracer.probe !== undefined,
    probeIsSyn: tracer.probe !== undefined && (tracer.probe.tcp!.flags & 0x12) === 0x02,
    copies: tracer.copies,
    hops,
    atResponder,
    responder,
    rounds: tracer.rounds,
    unmatched,
    ...(synAck?.packet.ip ? { answerTtl: ttlOf(synAck.packet.ip) } : {}),
    ownSynAtResponder: ownSyn !== undefined,
    ...(translated ? { translated } : {}),
  };
}

const endpoint = (address: string, port: number): string => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`);

/** A whole segment against the copy: every field visible. */
function wholeComparison(sent: Uint8Array, received: Uint8Array): QuoteComparison {
  const packet = decodePacket(received);
  const header = packet.ip?.version === 6 ? 40 : 20;
  const tcpBytes = Math.max(0, received.length - header);
  const tcpHeader = (packet.tcp?.dataOffset ?? 5) * 4;
  return {
    rows: diffSegments(sent, packet),
    visibility: { quoted: received.length, length: received.length, ipHeader: true, tcpBytes, options: true, payloadBytes: Math.max(0, tcpBytes - tcpHeader), payloadLength: Math.max(0, tcpBytes - tcpHeader) },
    notVisible: [],
  };
}

/** What the flows of a path showed together. */
function pathView(traces: readonly FlowTrace[], learner: PathLearner): PathView {
  const responderTtls = traces.flatMap((t) => t.atResponder.map((o) => o.ttl));
  return { routers: learner.routers, ...(responderTtls.length ? { responderTtl: Math.min(...responderTtls) } : {}) };
}

/** The rows of hops: every answer, the responder's copy, and a row for each hop up to the responder that never answered. */
function hopRecords(trace: FlowTrace, location: Location): HopRecord[] {
  const rows: HopRecord[] = trace.hops.map((h) => ({
    ttl: h.ttl, kind: h.kind === 'responder' ? 'responder' : h.kind, router: h.router, atUs: Math.round(h.atUs), sent: h.sent,
    quoteLength: h.quote.length, quote: h.quote, packet: h.packet ?? null, diff: h.comparison.rows, notVisible: h.comparison.notVisible,
  }));
  const atResponder = trace.atResponder[0];
  if (atResponder) {
    rows.push({ ttl: atResponder.ttl, kind: 'responder', router: atResponder.router, atUs: null, sent: atResponder.sent, quoteLength: atResponder.quote.length, quote: atResponder.quote, packet: null, diff: atResponder.comparison.rows, notVisible: [] });
  }
  for (const ttl of [...location.silent, ...location.rateLimited]) {
    const sent = trace.copies.get(ttl);
    if (sent) rows.push({ ttl, kind: 'no-answer', router: null, atUs: null, sent, quoteLength: null, quote: null, packet: null, diff: [], notVisible: [] });
  }
  return rows.sort((a, b) => a.ttl - b.ttl);
}
