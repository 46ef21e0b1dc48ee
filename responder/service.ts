import { randomBytes } from 'node:crypto';
import type { ObservedSegment, ResponderPlan } from '../shared/control.js';
import { nowUs, type CapturedPacket, type PacketSource } from '../shared/net/capture.js';
import type { PacketSink } from '../shared/net/raw-send.js';
import type { Store, TestRecord } from '../shared/store.js';
import { toHex } from '../shared/wire/bytes.js';
import { decodePacket, encodePacket, type Packet } from '../shared/wire/packet.js';
import { replyTo, type EngineConfig } from './engine.js';
import { Registry, type ActiveTest, type RecordedSegment, type Session } from './registry.js';
import { UnattributedLog, type UnattributedLimits } from './unattributed.js';
import { headOf } from './segment-head.js';

export interface ResponderOptions {
  ports: number[];
  source: PacketSource;
  /** Raw senders for IPv4 and (optionally) IPv6. */
  sinks: { 4: PacketSink; 6?: PacketSink };
  store: Store;
  runId: string;
  nowUs?: () => number;
  /** Per-source segment rate limit (token bucket). */
  segmentsPerSecond?: number;
  burst?: number;
  log?: (line: string) => void;
  /** What is kept of segments no test could take (scanners): see responder/unattributed.ts. */
  unattributed?: Partial<UnattributedLimits>;
}

export interface ResponderStats {
  received: number;
  answered: number;
  sent: number;
  unattributed: number;
  malformed: number;
  rateLimited: number;
  budgetLimited: number;
  sendErrors: number;
  /** Segments of a test beyond MAX_SEGMENTS_PER_TEST: counted, answered as usual, not kept. */
  notKept: number;
  /** Segments of a test recorded but not answered: the packet loop was more than BEHIND_US behind the capture. */
  behind: number;
  sessionsOpened: number;
  testsCollected: number;
}

/** Segments kept per test (what a submission may carry per test, shared/upload.ts): a flooded flow cannot grow memory. */
export const MAX_SEGMENTS_PER_TEST = 2000;
/**
 * How far behind the capture the packet loop may fall before it stops answering (a flood it cannot
 * keep up with): beyond, a test's segments are still recorded, with their capture time, but not
 * answered, and the test is told how many (`behind` in what it collects), so its initiator runs it
 * again rather than judge a path by answers the responder never sent. An answer 100 ms late already
 * crosses the initiator's resend on a short path (it resends after 3 RTT, 200 ms at least), and
 * recording costs a few microseconds where answering costs tens, so the loop catches up at once.
 */
export const BEHIND_US = 100_000;
/** Finished tests wait this long to be written together, in one transaction. */
const PERSIST_BATCH_MS = 0;
/** ...unless this many are waiting. */
const PERSIST_BATCH_TESTS = 200;

/**
 * The responder's packet loop: capture -> attribute -> (attributed only) decode, record, reply (if
 * the test's session may still receive that many bytes) -> record what was sent.
 *
 * Built for floods: attribution reads the few header fields it needs straight from the bytes
 * (segment-head.ts), so a segment no test waits for costs a map lookup and a copy into a bounded
 * log, never a decode; segments are kept as bytes (hex only when an initiator collects them);
 * finished tests are written in one transaction per event-loop turn.
 */
export class ResponderService {
  readonly registry = new Registry();
  readonly stats: ResponderStats = {
    received: 0, answered: 0, sent: 0, unattributed: 0, malformed: 0, rateLimited: 0, budgetLimited: 0, sendErrors: 0, notKept: 0, behind: 0, sessionsOpened: 0, testsCollected: 0,
  };
  readonly unattributed: UnattributedLog;
  private readonly engine: EngineConfig;
  private readonly nowUs: () => number;
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private pending: TestRecord[] = [];
  /** The order of the run's tests, given explicitly: the store's default (one past the highest so far) reads every test of the run. 0 is the unattributed pseudo-test. */
  private nextSeq = 1;
  private lastSendErrorLog = 0;
  private persistTimer?: NodeJS.Immediate | NodeJS.Timeout;

  constructor(private readonly options: ResponderOptions) {
    this.nowUs = options.nowUs ?? nowUs;
    this.engine = { secret: randomBytes(32), mss: 1460, windowScale: 7, ttl: 64, nowMs: () => Math.floor(this.nowUs() / 1000) };
    this.unattributed = new UnattributedLog(options.unattributed);
    options.source.onPacket((p) => this.handle(p));
  }

  handle(captured: CapturedPacket): void {
    this.stats.received++;
    const bytes = captured.bytes;
    // The usual case reads the head from the bytes; anything unusual (IPv6 extension headers,
    // fragments, truncated headers) is decoded first, as attribution always did.
    let head = headOf(bytes);
    let segment = head ? undefined : decodePacket(bytes);
    if (segment) {
      const match = this.registry.attribute(segment);
      if (match) return this.answer(match.test, captured, () => segment);
      head = undefined;
    } else {
      const match = this.registry.attributeHead(head!);
      const source = head!.src;
      if (match) return this.answer(match.test, captured, () => (this.mayAnswer(source) ? decodePacket(bytes) : undefined));
    }
    this.stats.unattributed++;
    this.unattributed.add(bytes, captured.atUs, head);
  }

  /**
   * Records a test's segment and answers it. Recorded, not decoded nor answered: a segment that waited
   * too long for the loop (BEHIND_US), and one from a source whose bucket is empty (`decode` gives
   * nothing then), so a flood of a bound flow costs little.
   */
  private answer(test: ActiveTest, captured: CapturedPacket, decode: () => ReturnType<typeof decodePacket> | undefined): void {
    this.keep(test, { dir: 'received', atUs: captured.atUs, bytes: captured.bytes });
    test.session.bytesIn += captured.bytes.length;
    test.session.lastSeen = Date.now();
    if ((this.options.source.lagUs?.() ?? 0) > BEHIND_US) {
      this.stats.behind++;
      test.behind++;
      return;
    }
    const segment = decode();
    if (!segment) {
      this.stats.rateLimited++;
      return;
    }
    // A box's connection not yet known to be any test's (registry rule 6): its data is answered once
    // it names the test (its token), by that test's plan; until then it is only recorded.
    if (test.pending && segment.payload.length > 0) {
      const owner = this.registry.claim(test, segment.payload);
      if (!owner) return;
      test = owner;
    } else this.registry.noteData(test, segment.payload);
    const replies = replyTo(segment, test.plan, this.engine);
    if (replies.length === 0) {
      if (segment.issues.length > 0) this.stats.malformed++;
      return;
    }
    if (!this.takeToken(segment.ip!.src)) {
      this.stats.rateLimited++;
      return;
    }
    this.stats.answered++;
    for (const reply of replies) this.send(test, reply);
  }

  private keep(test: ActiveTest, segment: RecordedSegment): void {
    if (test.segments.length >= MAX_SEGMENTS_PER_TEST) {
      this.stats.notKept++;
      return;
    }
    test.segments.push(segment);
  }

  private send(test: ActiveTest, reply: Packet): void {
    if (reply.ip.version === 4) reply.ip.id = (this.stats.sent % 0xfffe) + 1; // nonzero, so the kernel leaves it as written
    const bytes = encodePacket(reply);
    const session = test.session;
    // Never send an initiator more than it sent us: the responder must not be an amplifier.
    if (session.bytesOut + bytes.length > session.bytesIn) {
      this.stats.budgetLimited++;
      return;
    }
    const sink = this.options.sinks[reply.ip.version];
    if (!sink) return;
    session.bytesOut += bytes.length;
    this.keep(test, { dir: 'sent', atUs: this.nowUs(), bytes });
    this.stats.sent++;
    sink.send(bytes).catch((error: unknown) => {
      this.stats.sendErrors++;
      // Recorded as sent, never left: the initiator would read the missing answer as the path's doing.
      test.notSent++;
      // One line per 10 s at most: under overload every answer may fail alike.
      const now = Date.now();
      if (now - this.lastSendErrorLog < 10_000) return;
      this.lastSendErrorLog = now;
      this.options.log?.(`send to ${reply.ip.dst} failed: ${error instanceof Error ? error.message : String(error)} (${this.stats.sendErrors} failed sends so far)`);
    });
  }

  /** Whether the source's bucket has a token left (without taking it). */
  private mayAnswer(source: string): boolean {
    const bucket = this.buckets.get(source);
    if (!bucket || bucket.tokens >= 1) return true;
    const rate = this.options.segmentsPerSecond ?? 20_000;
    return bucket.tokens + ((Date.now() - bucket.at) / 1000) * rate >= 1;
  }

  /** Token bucket per source address; protects the host and the path from floods. */
  private takeToken(source: string): boolean {
    const rate = this.options.segmentsPerSecond ?? 20_000;
    const burst = this.options.burst ?? 2_000;
    const now = Date.now();
    const bucket = this.buckets.get(source) ?? { tokens: burst, at: now };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * rate);
    bucket.at = now;
    this.buckets.set(source, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Forgets token buckets that have refilled (a bucket not in the map is a full one), so their number stays bounded. */
  pruneBuckets(now = Date.now()): void {
    const rate = this.options.segmentsPerSecond ?? 20_000;
    const burst = this.options.burst ?? 2_000;
    for (const [source, bucket] of this.buckets) if (bucket.tokens + ((now - bucket.at) / 1000) * rate >= burst) this.buckets.delete(source);
  }

  openSession(observedAddress: string, initiatorAddress: string, label: string | undefined): Session {
    this.stats.sessionsOpened++;
    return this.registry.openSession(observedAddress, initiatorAddress, label, Date.now());
  }

  /** Counts control-connection bytes toward the session's budget. */
  creditSession(session: Session, bytes: number): void {
    session.bytesIn += bytes;
    session.lastSeen = Date.now();
  }

  registerTest(session: Session, request: Parameters<Registry['register']>[1]): ActiveTest | 'duplicate' {
    const test = this.registry.register(session, request, Date.now());
    if (test !== 'duplicate') test.lostAtStart = this.options.source.lost?.() ?? 0;
    return test;
  }

  /**
   * Hands a test's segments to the initiator and commits them to the responder's database (with the
   * next batch), with what says the responder's view of it may be short: segments it recorded but did
   * not answer (behind), answers recorded as sent whose send failed (notSent: the socket's buffer was
   * full), and segments the capture lost while the test ran (anyone's; some may have been the test's);
   * and, of attribution by only-test (responder/registry.ts), the strangers' flows the test's own SYN
   * displaced and the strangers' SYNs nobody took after it; and the tokens its data carried.
   */
  collect(test: ActiveTest): { segments: ObservedSegment[]; attribution: string[]; behind: number; notSent: number; captureLost: number; displaced: string[]; strangerSyns: number; tokens: string[] } {
    this.registry.finish(test);
    this.stats.testsCollected++;
    this.persist(test);
    const captureLost = Math.max(0, (this.options.source.lost?.() ?? 0) - test.lostAtStart);
    return { segments: test.segments.map((s) => ({ dir: s.dir, atUs: s.atUs, hex: toHex(s.bytes) })), attribution: test.attribution, behind: test.behind, notSent: test.notSent, captureLost, displaced: test.displaced, strangerSyns: test.strangerSyns, tokens: [...test.tokensSeen] };
  }

  closeSession(session: Session): void {
    for (const test of this.registry.closeSession(session)) this.persist(test);
  }

  expireIdleSessions(idleMs: number): number {
    const idle = this.registry.idleSessions(Date.now(), idleMs);
    idle.forEach((s) => this.closeSession(s));
    return idle.length;
  }

  private persist(test: ActiveTest): void {
    const at = (us: number): string => new Date(us / 1000).toISOString();
    const first = test.segments[0]?.atUs ?? test.registeredAt * 1000;
    const last = test.segments.at(-1)?.atUs ?? first;
    const notKept = test.segments.length >= MAX_SEGMENTS_PER_TEST ? { segmentsKept: MAX_SEGMENTS_PER_TEST } : {};
    this.pending.push({
      runId: this.options.runId,
      name: test.name,
      port: test.port,
      seq: this.nextSeq++,
      startedAt: at(first),
      finishedAt: at(last),
      verdict: 'recorded',
      detail: { session: test.session.id, testId: test.testId, label: test.session.label ?? null, attribution: test.attribution, plan: test.plan satisfies ResponderPlan, ...notKept },
      segments: test.segments.map((s) => ({ side: 'responder', dir: s.dir, atUs: s.atUs, bytes: s.bytes })),
      diffs: [],
    });
    if (this.pending.length >= PERSIST_BATCH_TESTS) this.flushTests();
    else this.persistTimer ??= PERSIST_BATCH_MS === 0 ? setImmediate(() => this.flushTests()) : setTimeout(() => this.flushTests(), PERSIST_BATCH_MS);
  }

  /** Writes every finished test waiting to be written, in one transaction. */
  flushTests(): void {
    if (this.persistTimer) {
      clearImmediate(this.persistTimer as NodeJS.Immediate);
      clearTimeout(this.persistTimer as NodeJS.Timeout);
      this.persistTimer = undefined;
    }
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    try {
      this.options.store.transaction(() => batch.forEach((t) => this.options.store.insertTest(t)));
    } catch (error) {
      this.options.log?.(`could not record ${batch.length} finished tests: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** Writes what is kept of the unattributed segments (replacing what was written before). */
  flushUnattributed(): void {
    this.unattributed.flush(this.options.store, this.options.runId);
  }

  close(): void {
    for (const session of this.registry.allSessions()) this.closeSession(session);
    this.flushTests();
    this.flushUnattributed();
    this.options.source.close();
  }
}
