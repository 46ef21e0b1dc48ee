import { randomInt } from 'node:crypto';
import { nowUs, type CapturedPacket, type PacketSource } from '../shared/net/capture.js';
import type { PacketSink } from '../shared/net/raw-send.js';
import { encodePacket, type IpHeader } from '../shared/wire/packet.js';
import { acks, hasData, isFin, isRst, isSynAck, observe, type Observed } from './observed.js';
import { TcpFlag, type TcpHeader } from '../shared/wire/tcp.js';
import { findOption, nop, OptionKind, timestamps, viewOption, type TcpOption } from '../shared/wire/tcp-options.js';

/** What a test script says about a segment; unset fields follow the connection's state. */
export interface SegmentSpec {
  flags: number;
  seq?: number;
  ack?: number;
  window?: number;
  options?: TcpOption[];
  payload?: Uint8Array;
  tos?: number;
  ttl?: number;
  reserved?: number;
  urgentPointer?: number;
  /** Write this checksum instead of computing it. */
  checksum?: number;
}

/** A SYN without data or a TFO option: a box answers it, but connects nowhere on it alone. */
function isBareSyn(spec: SegmentSpec): boolean {
  return (spec.flags & (TcpFlag.SYN | TcpFlag.ACK | TcpFlag.RST)) === TcpFlag.SYN && !spec.payload?.length && !spec.options?.some((o) => o.kind === OptionKind.TFO);
}

export interface Timing {
  /** How long to wait for an answer before resending. */
  timeoutMs: number;
  /** How many times a probe is sent before its answer is declared missing. */
  attempts: number;
}

/** The shortest wait before resending once the round trip is known (Linux's TCP_RTO_MIN). */
const MIN_RTO_MS = 200;


/**
 * The initiator's packet plumbing: one capture and one raw sender shared by all tests, with
 * received segments dispatched to the connection that owns the local port.
 */
export class Prober {
  private readonly connections = new Map<number, ProbeConnection>();

  constructor(private readonly source: PacketSource, private readonly sinks: { 4?: PacketSink; 6?: PacketSink }) {
    source.onPacket((p) => this.dispatch(p));
  }

  private dispatch(captured: CapturedPacket): void {
    const seen = observe(captured.bytes, captured.atUs);
    const port = seen.packet.tcp?.dstPort;
    if (port !== undefined) this.connections.get(port)?.deliver(seen);
  }

  /** Packets the capture lost so far (its kernel ring was full): an answer among them was never seen. */
  captureLost(): number {
    return this.source.lost?.() ?? 0;
  }

  open(opts: { local: { address: string; port: number }; remote: { address: string; port: number }; timing: Timing; isn?: number }): ProbeConnection {
    if (this.connections.has(opts.local.port)) throw new Error(`local port ${opts.local.port} is already in use by another test`);
    const sink = this.sinks[opts.local.address.includes(':') ? 6 : 4];
    if (!sink) throw new Error(`no raw sender for ${opts.local.address}`);
    const connection = new ProbeConnection(opts.local, opts.remote, opts.timing, opts.isn ?? randomInt(0, 2 ** 32), sink, () => this.connections.delete(opts.local.port));
    this.connections.set(opts.local.port, connection);
    return connection;
  }

  close(): void {
    this.source.close();
  }
}

type Waiter = { match: (o: Observed) => boolean; resolve: (o: Observed | undefined) => void; timer: NodeJS.Timeout };

/**
 * One scripted TCP connection of a test case: it sends segments exactly as the script describes
 * and waits for answers; it keeps just enough state (next sequence numbers, the peer's timestamp)
 * for scripts to read like the test's description.
 */
export class ProbeConnection {
  readonly sent: Observed[] = [];
  readonly received: Observed[] = [];
  /** Facts the script records for its judge. */
  readonly notes: Record<string, unknown> = {};
  /** Our next sequence number and the next one we expect from the peer. */
  sndNxt: number;
  rcvNxt = 0;
  /** Round-trip time of the handshake (last SYN sent to SYN-ACK), once measured. */
  rttMs?: number;
  /** The peer's ISN as we saw it, once a SYN-ACK arrived. */
  peerIsn?: number;
  private peerTimestamp?: number;
  private resendCount = 0;
  /** Called each time a segment is sent again (the runner may start a confirming run early on it). */
  onResend?: () => void;
  /** Segments sent again because their answer did not come (a sign of loss on the path, or of a drop). */
  get resends(): number {
    return this.resendCount;
  }
  set resends(count: number) {
    const more = count > this.resendCount;
    this.resendCount = count;
    if (more) this.onResend?.();
  }
  /** The payload is a request (HTTP on 80, a ClientHello on 443): close() waits for its answer first. */
  awaitsAnswer = false;
  /**
   * Held segments: until this settles, only a bare SYN leaves (no data, no TFO option); anything else
   * waits. Behind a split-connection proxy it is what makes the proxy connect to the responder (the
   * handshake's ACK, or the request), and the runner lets a test's SYN go before the test ahead of it
   * on the port is bound, but not that (initiator/schedule.ts).
   */
  holdUntil?: Promise<void>;
  /**
   * Behind a box that rewrites everything, for a test that sends no data of its own
   * (TestCase.carriesToken 'before-close'): a request carrying the run's token, which close() sends
   * first on a connection that sent no data, so the box relays the token to the responder.
   */
  tokenRequest?: Uint8Array;
  /** Called when a SYN-ACK arrives (the runner lets the next test on an opaque port send its SYN). */
  onSynAck?: () => void;
  /** Time spent waiting for answers that never came (what a clean path must not cost). */
  timeoutWaitMs = 0;
  /** Time spent watching, on purpose, for segments that only a middlebox would send (see watch). */
  watchMs = 0;
  private readonly waiters = new Set<Waiter>();
  private readonly consumed = new Set<Observed>();
  /** Called after each segment has left, with the segments sent before it (locate traces a test's probe from here: initiator/locate/). */
  afterSend?: (seen: Observed, before: readonly Observed[]) => Promise<void>;

  constructor(
    readonly local: { address: string; port: number },
    readonly remote: { address: string; port: number },
    readonly timing: Timing,
    readonly isn: number,
    private readonly sink: PacketSink,
    private readonly onClose: () => void,
  ) {
    this.sndNxt = isn;
  }

  deliver(seen: Observed): void {
    this.received.push(seen);
    if (isSynAck(seen)) this.onSynAck?.();
    const tcp = seen.packet.tcp;
    // Data in order (a response a proxy relayed, or the responder's): later segments acknowledge it, as a TCP would.
    const length = seen.packet.payload.length;
    if (tcp && length > 0 && this.peerIsn !== undefined && !(tcp.flags & (TcpFlag.SYN | TcpFlag.RST))) {
      const start = (tcp.seq - this.rcvNxt) | 0;
      if (start <= 0 && start + length > 0) this.rcvNxt = (tcp.seq + length) >>> 0;
    }
    if (tcp) {
      const ts = findOption(tcp.options, OptionKind.TIMESTAMPS);
      const view = ts && viewOption(ts);
      if (view?.type === 'timestamps') this.peerTimestamp = view.value;
    }
    for (const waiter of this.waiters) {
      if (waiter.match(seen)) {
        this.consumed.add(seen);
        this.settle(waiter, seen);
        break;
      }
    }
  }

  private settle(waiter: Waiter, value: Observed | undefined): void {
    clearTimeout(waiter.timer);
    this.waiters.delete(waiter);
    waiter.resolve(value);
  }

  /** Sends one segment; returns the bytes as sent. */
  async send(spec: SegmentSpec): Promise<Observed> {
    if (this.holdUntil && !isBareSyn(spec)) await this.holdUntil;
    const ip: IpHeader = this.local.address.includes(':')
      ? { version: 6, trafficClass: spec.tos ?? 0, flowLabel: 0, hopLimit: spec.ttl ?? 64, protocol: 6, src: this.local.address, dst: this.remote.address }
      : { version: 4, tos: spec.tos ?? 0, id: randomInt(1, 0xffff), flags: 0x2, fragmentOffset: 0, ttl: spec.ttl ?? 64, protocol: 6, src: this.local.address, dst: this.remote.address };
    const tcp: TcpHeader = {
      srcPort: this.local.port,
      dstPort: this.remote.port,
      seq: spec.seq ?? this.sndNxt,
      ack: spec.ack ?? (spec.flags & TcpFlag.ACK ? this.rcvNxt : 0),
      flags: spec.flags,
      window: spec.window ?? 64240,
      options: spec.options,
      reserved: spec.reserved,
      urgentPointer: spec.urgentPointer,
      checksum: spec.checksum,
    };
    const bytes = encodePacket({ ip, tcp, payload: spec.payload ?? new Uint8Array(0) });
    const seen = observe(bytes, nowUs());
    this.sent.push(seen);
    await this.sink.send(bytes);
    if (this.afterSend) await this.afterSend(seen, this.sent.slice(0, -1));
    return seen;
  }

  /** The first not-yet-consumed received segment matching, waiting up to `timeoutMs`. */
  waitFor(match: (o: Observed) => boolean, timeoutMs = this.timing.timeoutMs): Promise<Observed | undefined> {
    const already = this.received.find((o) => !this.consumed.has(o) && match(o));
    if (already) {
      this.consumed.add(already);
      return Promise.resolve(already);
    }
    return new Promise((resolve) => {
      const waiter: Waiter = {
        match,
        resolve,
        timer: setTimeout(() => {
          this.timeoutWaitMs += timeoutMs;
          this.settle(waiter, undefined);
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  /**
   * Watches for `ms` for a segment that only interference would produce (an ACK the responder was told
   * to withhold): silence is the expected outcome here, so the wait counts as watching, not as a timeout.
   */
  async watch(match: (o: Observed) => boolean, ms: number): Promise<Observed | undefined> {
    const before = this.timeoutWaitMs;
    const seen = await this.waitFor(match, ms);
    this.watchMs += this.timeoutWaitMs - before;
    this.timeoutWaitMs = before;
    return seen;
  }

  /**
   * Sends, and resends on silence, until an answer matches; undefined after the last attempt. Once the
   * handshake measured the round trip, the wait adapts to it (4 RTT, at least 200 ms), as a TCP RTO would.
   */
  async exchange(spec: SegmentSpec, answer: (o: Observed) => boolean): Promise<Observed | undefined> {
    const wait = this.rttMs === undefined ? this.timing.timeoutMs : Math.min(this.timing.timeoutMs, Math.max(MIN_RTO_MS, 4 * this.rttMs));
    for (let attempt = 0; attempt < this.timing.attempts; attempt++) {
      if (attempt > 0) this.resends++;
      await this.send(spec);
      const reply = await this.waitFor(answer, wait);
      if (reply) return reply;
    }
    return undefined;
  }

  /** A timestamps option echoing the peer's latest value, as a real sender would. */
  timestampOption(value = Math.floor(nowUs() / 1000) >>> 0): TcpOption {
    return timestamps(value, this.peerTimestamp ?? 0);
  }

  /** The three-way handshake: SYN (with the given options/payload/flags), SYN-ACK, ACK. */
  async connect(syn: Omit<SegmentSpec, 'flags'> & { flags?: number } = {}): Promise<Observed | undefined> {
    const synAck = await this.exchange({ ...syn, flags: syn.flags ?? TcpFlag.SYN, seq: this.isn }, (o) => isSynAck(o) || isRst(o));
    if (!synAck || isRst(synAck)) return synAck;
    // Karn: a SYN-ACK after a retransmitted SYN says nothing about the round trip.
    if (this.sent.length === 1) this.rttMs = (synAck.atUs - this.sent[0].atUs) / 1000;
    this.peerIsn = synAck.packet.tcp!.seq;
    this.sndNxt = (this.isn + 1) >>> 0;
    this.rcvNxt = (this.peerIsn + 1) >>> 0;
    await this.send({ flags: TcpFlag.ACK, options: this.handshakeTimestamps(syn.options) });
    return synAck;
  }

  /** Sends data at sndNxt and waits for an ACK that covers it (or a RST). */
  async sendData(payload: Uint8Array, extra: Partial<SegmentSpec> = {}): Promise<Observed | undefined> {
    const seq = this.sndNxt;
    const end = (seq + payload.length) >>> 0;
    const ack = await this.exchange({ flags: TcpFlag.ACK | TcpFlag.PSH, seq, payload, ...extra }, (o) => isRst(o) || acks(o, end));
    this.sndNxt = end;
    return ack;
  }

  /**
   * FIN, then the peer's FIN-ACK, then our last ACK (after the token request, if any). A connection that sent a request (awaitsAnswer)
   * first waits a few round trips for the answer, as a client would: an interception proxy drops a
   * request whose client closes before the response comes (squid's default), and never forwards it.
   */
  async close(): Promise<void> {
    if (this.tokenRequest && this.peerIsn !== undefined && !this.sent.some(hasData)) await this.sendData(this.tokenRequest);
    const lastData = this.awaitsAnswer ? [...this.sent].reverse().find(hasData) : undefined;
    // Only a request that was delivered (something acknowledged it) can be answered.
    const delivered = lastData !== undefined && this.received.some((o) => acks(o, (lastData.packet.tcp!.seq + lastData.packet.payload.length) >>> 0));
    if (lastData && delivered && !this.received.some((o) => hasData(o) && o.atUs >= lastData.atUs)) {
      const wait = Math.min(this.timing.timeoutMs, Math.max(MIN_RTO_MS, 4 * (this.rttMs ?? this.timing.timeoutMs)));
      await this.waitFor((o) => o.atUs >= lastData.atUs && (hasData(o) || isRst(o) || isFin(o)), wait);
    }
    const finAck = await this.exchange({ flags: TcpFlag.FIN | TcpFlag.ACK }, (o) => isRst(o) || (o.packet.tcp !== undefined && (o.packet.tcp.flags & TcpFlag.FIN) !== 0));
    this.sndNxt = (this.sndNxt + 1) >>> 0;
    if (finAck?.packet.tcp && !isRst(finAck)) {
      this.rcvNxt = (finAck.packet.tcp.seq + finAck.packet.payload.length + 1) >>> 0;
      await this.send({ flags: TcpFlag.ACK });
    }
  }

  /** Ends the connection without waiting (state on middleboxes is released by the RST). */
  async abort(): Promise<void> {
    await this.send({ flags: TcpFlag.RST | TcpFlag.ACK });
  }

  /** Waits briefly for stragglers (retransmissions, duplicate ACKs) before the test is judged. */
  async linger(ms: number): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
  }

  dispose(): void {
    for (const waiter of this.waiters) this.settle(waiter, undefined);
    this.onClose();
  }

  private handshakeTimestamps(synOptions: TcpOption[] | undefined): TcpOption[] | undefined {
    return synOptions?.some((o) => o.kind === OptionKind.TIMESTAMPS) && this.peerTimestamp !== undefined ? [nop(), nop(), this.timestampOption()] : undefined;
  }
}
