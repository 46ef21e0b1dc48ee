import { randomBytes } from 'node:crypto';
import type { ObservedSegment, ResponderPlan } from '../shared/control.js';
import { nowUs, type CapturedPacket, type PacketSource } from '../shared/net/capture.js';
import type { PacketSink } from '../shared/net/raw-send.js';
import type { Store } from '../shared/store.js';
import { toHex } from '../shared/wire/bytes.js';
import { decodePacket, encodePacket, type Packet } from '../shared/wire/packet.js';
import { replyTo, type EngineConfig } from './engine.js';
import { Registry, type ActiveTest, type Session } from './registry.js';

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
}

const UNATTRIBUTED_KEEP = 10_000;

/**
 * The responder's packet loop: capture -> decode -> record -> attribute -> reply (if the test's
 * session may still receive that many bytes) -> record what was sent.
 */
export class ResponderService {
  readonly registry = new Registry();
  readonly stats: ResponderStats = { received: 0, answered: 0, sent: 0, unattributed: 0, malformed: 0, rateLimited: 0, budgetLimited: 0, sendErrors: 0 };
  private readonly engine: EngineConfig;
  private readonly nowUs: () => number;
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private unattributed: ObservedSegment[] = [];
  private unattributedSeq = 0;

  constructor(private readonly options: ResponderOptions) {
    this.nowUs = options.nowUs ?? nowUs;
    this.engine = { secret: randomBytes(32), mss: 1460, windowScale: 7, ttl: 64, nowMs: () => Math.floor(this.nowUs() / 1000) };
    options.source.onPacket((p) => this.handle(p));
  }

  handle(captured: CapturedPacket): void {
    this.stats.received++;
    const segment = decodePacket(captured.bytes);
    const observed: ObservedSegment = { dir: 'received', atUs: captured.atUs, hex: toHex(captured.bytes) };
    const match = this.registry.attribute(segment);
    if (!match) {
      this.stats.unattributed++;
      this.unattributed.push(observed);
      if (this.unattributed.length >= UNATTRIBUTED_KEEP) this.flushUnattributed();
      return;
    }
    const { test } = match;
    test.segments.push(observed);
    test.session.bytesIn += captured.bytes.length;
    test.session.lastSeen = Date.now();
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
    test.segments.push({ dir: 'sent', atUs: this.nowUs(), hex: toHex(bytes) });
    this.stats.sent++;
    sink.send(bytes).catch((error: unknown) => {
      this.stats.sendErrors++;
      this.options.log?.(`send to ${reply.ip.dst} failed: ${error instanceof Error ? error.message : String(error)}`);
    });
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

  /** Counts control-connection bytes toward the session's budget. */
  creditSession(session: Session, bytes: number): void {
    session.bytesIn += bytes;
    session.lastSeen = Date.now();
  }

  registerTest(session: Session, request: Parameters<Registry['register']>[1]): ActiveTest | 'duplicate' {
    return this.registry.register(session, request, Date.now());
  }

  /** Hands a test's segments to the initiator and commits them to the responder's database. */
  collect(test: ActiveTest): { segments: ObservedSegment[]; attribution: string[] } {
    this.registry.finish(test);
    this.persist(test);
    return { segments: test.segments, attribution: test.attribution };
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
    this.options.store.insertTest({
      runId: this.options.runId,
      name: test.name,
      port: test.port,
      startedAt: at(first),
      finishedAt: at(last),
      verdict: 'recorded',
      detail: { session: test.session.id, testId: test.testId, label: test.session.label ?? null, attribution: test.attribution, plan: test.plan satisfies ResponderPlan },
      segments: test.segments.map((s) => ({ side: 'responder', dir: s.dir, atUs: s.atUs, bytes: Buffer.from(s.hex, 'hex') })),
      diffs: [],
    });
  }

  /** Unattributed segments are evidence too (scans, stray retransmissions): kept under one pseudo-test. */
  flushUnattributed(): void {
    if (this.unattributed.length === 0) return;
    const batch = this.unattributed;
    this.unattributed = [];
    this.options.store.insertTest({
      runId: this.options.runId,
      name: 'unattributed',
      port: 0,
      seq: this.unattributedSeq++,
      startedAt: new Date(batch[0].atUs / 1000).toISOString(),
      finishedAt: new Date(batch.at(-1)!.atUs / 1000).toISOString(),
      verdict: 'recorded',
      detail: { reason: 'no registered test matched these segments; they were not answered' },
      segments: batch.map((s) => ({ side: 'responder', dir: s.dir, atUs: s.atUs, bytes: Buffer.from(s.hex, 'hex') })),
      diffs: [],
    });
  }

  close(): void {
    this.flushUnattributed();
    for (const session of this.registry.allSessions()) this.closeSession(session);
    this.options.source.close();
  }
}
