/**
 * Sending a test's probe with TTL 1..N and catching what the hops say (the I/O of locate). When the
 * test's script sends its probe, the tracer sends copies of it with every TTL at once, each tagged
 * with its TTL (ttl-tags.ts), and waits about one round trip for the ICMP errors; copies whose hop
 * did not answer (and that lie before the farthest hop any flow has heard from) go again, a bounded
 * number of times. Then the script goes on, on a connection whose state on the path the copies did
 * not disturb. `sequential` sends one TTL at a time, as traceroute and tracebox do (the benchmark's
 * comparison).
 */
import { randomInt } from 'node:crypto';
import { nowUs, type PacketSource } from '../../shared/net/capture.js';
import { decodeIcmpError, type DecodedIcmpError } from '../../shared/wire/icmp-packet.js';
import { decodePacket, type DecodedPacket } from '../../shared/wire/packet.js';
import type { Observed } from '../observed.js';
import type { ProbeConnection } from '../probe.js';
import type { ProbeSegment } from '../test-case.js';
import { planTags, readSegmentTag, readTag, tagCopy, tagSourceOf, type TagPlan, type TagReading } from './ttl-tags.js';

export interface CaughtError {
  error: DecodedIcmpError;
  bytes: Uint8Array;
  atUs: number;
}

/** Every ICMP/ICMPv6 error the initiator receives, handed to the flow whose packet it quotes. */
export class IcmpListener {
  private readonly flows = new Map<string, (caught: CaughtError) => void>();

  constructor(source: PacketSource) {
    source.onPacket((p) => this.dispatch(p.bytes, p.atUs));
  }

  /** The flow a quote belongs to: the responder's address, our port and its port (a NAT translates quotes back to these). */
  static key(remote: string, localPort: number, remotePort: number): string {
    return `${remote}|${localPort}|${remotePort}`;
  }

  listen(key: string, handler: (caught: CaughtError) => void): () => void {
    this.flows.set(key, handler);
    return () => {
      if (this.flows.get(key) === handler) this.flows.delete(key);
    };
  }

  private dispatch(bytes: Uint8Array, atUs: number): void {
    const error = decodeIcmpError(bytes);
    const quoted = error?.quote.packet.ip;
    if (!error || !quoted) return;
    const srcPort = error.quote.packet.tcp?.srcPort ?? error.quote.tcpPrefix?.srcPort;
    const dstPort = error.quote.packet.tcp?.dstPort ?? error.quote.tcpPrefix?.dstPort;
    if (srcPort === undefined || dstPort === undefined) return;
    this.flows.get(IcmpListener.key(quoted.dst, srcPort, dstPort))?.({ error, bytes, atUs });
  }
}

/** Which hops answered which TTL, over every flow on a path (one per address family). */
export class PathLearner {
  readonly routers = new Map<number, Set<string>>();

  heard(ttl: number, router: string): void {
    let set = this.routers.get(ttl);
    if (!set) this.routers.set(ttl, (set = new Set()));
    set.add(router);
  }

  /** The farthest TTL any flow has heard a hop answer. */
  farthest(): number {
    return Math.max(0, ...this.routers.keys());
  }
}

export interface TraceSettings {
  maxHops: number;
  /** Rounds after the first for copies whose hop did not answer. */
  retries: number;
  /** How long a round waits for the errors: about a round trip of the path. */
  roundMs: () => number;
  mode: 'parallel' | 'sequential';
  send(bytes: Uint8Array): Promise<void>;
}

export interface TracedQuote extends CaughtError {
  reading: TagReading;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One test's copies and what came back, hooked into its connection (ProbeConnection.afterSend). */
export class ProbeTracer {
  /** The probe as the script sent it, once it has. */
  probe?: DecodedPacket;
  plan?: TagPlan;
  readonly copies = new Map<number, Uint8Array>();
  readonly quotes: TracedQuote[] = [];
  rounds = 0;
  /** How long the trace held the script up, in milliseconds. */
  tracingMs = 0;
  private unlisten?: () => void;
  private readonly quoted = new Set<number>();
  private quoteArrived?: () => void;

  constructor(
    private readonly segment: ProbeSegment,
    private readonly connection: ProbeConnection,
    private readonly listener: IcmpListener,
    private readonly settings: TraceSettings,
    private readonly path: PathLearner,
  ) {
    connection.afterSend = (seen, before) => this.onSend(seen, before);
  }

  private async onSend(seen: Observed, before: readonly Observed[]): Promise<void> {
    if (this.probe || !seen.packet.ip || !seen.packet.tcp || !this.segment.is(seen, before)) return;
    this.probe = seen.packet;
    this.plan = planTags(seen.packet, this.segment.examines, randomInt(1, 2 ** 24));
    const c = this.connection;
    this.unlisten = this.listener.listen(IcmpListener.key(c.remote.address, c.local.port, c.remote.port), (caught) => this.onError(caught));
    const started = performance.now();
    if (this.settings.mode === 'parallel') await this.parallel();
    else await this.sequential(seen.atUs);
    this.tracingMs = performance.now() - started;
  }

  private onError(caught: CaughtError): void {
    const reading = readTag(tagSourceOf(caught.error.quote.packet, caught.error.quote.tcpPrefix), this.plan!, (t) => this.copies.has(t));
    this.quotes.push({ ...caught, reading });
    if (reading.ttl !== undefined) {
      this.quoted.add(reading.ttl);
      this.path.heard(reading.ttl, caught.error.ip.src);
    }
    this.quoteArrived?.();
  }

  private copy(ttl: number): Uint8Array {
    let bytes = this.copies.get(ttl);
    if (!bytes) this.copies.set(ttl, (bytes = tagCopy(this.probe!, ttl, this.plan!)));
    return bytes;
  }

  /**
   * Every TTL at once; then again, a bounded number of times, the TTLs up to the farthest known hop that
   * stayed silent. A round ends when the far end has answered since the copies left (copies beyond the
   * last router reach it, a round trip later) and every hop known so far has quoted, or after roundMs.
   */
  private async parallel(): Promise<void> {
    let pending = Array.from({ length: this.settings.maxHops }, (_, i) => i + 1);
    for (let round = 0; round <= this.settings.retries && pending.length > 0; round++) {
      this.rounds++;
      const since = nowUs();
      for (const ttl of pending) await this.settings.send(this.copy(ttl));
      const waiting = [...pending];
      const settled = (): boolean => this.connection.received.some((o) => o.atUs > since)
        && waiting.every((ttl) => ttl > this.path.farthest() || this.quoted.has(ttl));
      const roundMs = this.settings.roundMs();
      const started = performance.now();
      await this.waitUntil(settled, roundMs);
      // Errors of hops as far as the far end come back with its answer; a little more for stragglers.
      if (settled()) await sleep(Math.min(roundMs - (performance.now() - started), Math.max(2, 0.1 * (performance.now() - started))));
      const farthest = this.path.farthest();
      pending = pending.filter((ttl) => ttl <= farthest && !this.quoted.has(ttl));
    }
  }

  /**
   * One TTL at a time, each waiting for its hop's error or for the far end's answer (then the copy
   * reached it and the trace ends), then the silent ones again. First the answer to the probe itself,
   * so that an answer after a copy is that copy's.
   */
  private async sequential(probeAtUs: number): Promise<void> {
    const answeredSince = (atUs: number): boolean => this.connection.received.some((o) => o.atUs > atUs);
    await this.waitUntil(() => answeredSince(probeAtUs), this.settings.roundMs());
    let stop = this.settings.maxHops + 1;
    const tryTtl = async (ttl: number): Promise<boolean> => {
      const sentAt = nowUs();
      await this.settings.send(this.copy(ttl));
      await this.waitUntil(() => this.quoted.has(ttl) || answeredSince(sentAt), this.settings.roundMs());
      return !this.quoted.has(ttl) && answeredSince(sentAt);
    };
    this.rounds = 1;
    for (let ttl = 1; ttl <= this.settings.maxHops; ttl++) {
      if (await tryTtl(ttl)) {
        stop = ttl;
        break;
      }
    }
    for (let retry = 0; retry < this.settings.retries; retry++) {
      const missing = [...this.copies.keys()].filter((ttl) => ttl < stop && ttl <= this.path.farthest() && !this.quoted.has(ttl));
      if (missing.length === 0) break;
      this.rounds++;
      for (const ttl of missing) await tryTtl(ttl);
    }
  }

  private async waitUntil(done: () => boolean, ms: number): Promise<void> {
    const deadline = performance.now() + ms;
    while (!done() && performance.now() < deadline) {
      await Promise.race([new Promise<void>((r) => (this.quoteArrived = r)), sleep(Math.min(2, Math.max(0, deadline - performance.now())))]);
    }
    this.quoteArrived = undefined;
  }

  /** Stops listening (late errors that came before are kept). */
  close(): void {
    this.unlisten?.();
    this.unlisten = undefined;
  }

  /** TTL of a segment the responder received (a copy, or undefined: the probe itself or another segment). */
  readSegment(bytes: Uint8Array): number | undefined {
    if (!this.plan) return undefined;
    return readSegmentTag(bytes, this.plan, (t) => this.copies.has(t)).ttl;
  }
}
