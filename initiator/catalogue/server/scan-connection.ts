/**
 * One connection of a server test, as its script drives it: a SYN sent (and resent on silence) at the
 * pace the scan allows, then ended as a client would end it: a RST right after the SYN-ACK (as a port
 * scanner does: the server's accept queue never sees the connection), or, once a request was sent, a
 * FIN after its answer. Built on the catalogue's ProbeConnection (initiator/probe.ts) for the packets.
 */
import { TcpFlag } from '../../../shared/wire/tcp.js';
import { findOption, nop, OptionKind, type TcpOption } from '../../../shared/wire/tcp-options.js';
import { hasData, isFin, isRst, isSynAck, type Observed } from '../../observed.js';
import type { ProbeConnection, SegmentSpec } from '../../probe.js';
import { synAnswerMatches } from './judging.js';

/** What a scan lets a connection send when: its first SYN after the target's politeness gap, every SYN within the global rate. */
export interface Pacer {
  /** Resolves when a new connection may send its first SYN to the target. */
  firstSyn(): Promise<void>;
  /** Resolves when another SYN (a retransmission) may leave. */
  nextSyn(): Promise<void>;
  /** How long to wait for an answer to a SYN: the target's round trip once measured, else the scan's timeout. */
  answerWaitMs(): number;
  /** Records a handshake's round trip to the target. */
  measured(rttMs: number): void;
}

/** The SYN a test sends; its flags default to SYN alone. */
export type SynSpec = Omit<SegmentSpec, 'flags' | 'seq' | 'ack'> & { flags?: number };

export class ScanConnection {
  /** The answer to the SYN: a SYN-ACK that acknowledges it, or a RST; undefined before, or when none came. */
  answer?: Observed;
  private handshakeDone = false;

  constructor(readonly role: string, readonly probe: ProbeConnection, private readonly pacer: Pacer) {}

  get notes(): Record<string, unknown> {
    return this.probe.notes;
  }

  /**
   * Sends the SYN, again after each wait without an answer (the scan's --attempts in all), and resolves
   * with the SYN-ACK that acknowledges it or a RST, or undefined. Each copy waits for the global SYN
   * rate; the first also for the target's politeness gap.
   */
  async syn(spec: SynSpec = {}): Promise<Observed | undefined> {
    const probe = this.probe;
    const dataLength = spec.payload?.length ?? 0;
    const isn = probe.isn;
    const matches = (o: Observed): boolean => synAnswerMatches(o, isn, dataLength);
    for (let attempt = 0; attempt < probe.timing.attempts; attempt++) {
      await (attempt === 0 ? this.pacer.firstSyn() : this.pacer.nextSyn());
      if (attempt > 0) probe.resends++;
      const sent = await probe.send({ ...spec, flags: spec.flags ?? TcpFlag.SYN, seq: isn });
      const answer = await probe.waitFor(matches, this.pacer.answerWaitMs());
      if (!answer) continue;
      this.answer = answer;
      // Karn: only the first copy's answer measures the round trip (a RST as well as a SYN-ACK).
      if (attempt === 0) this.pacer.measured((answer.atUs - sent.atUs) / 1000);
      if (isSynAck(answer)) {
        if (attempt === 0) probe.rttMs = (answer.atUs - sent.atUs) / 1000;
        const tcp = answer.packet.tcp!;
        probe.peerIsn = tcp.seq;
        probe.sndNxt = tcp.ack;
        probe.rcvNxt = (tcp.seq + 1) >>> 0;
      }
      return answer;
    }
    // The SYN-ACK may have been lost on its way back: a RST where the server's window would start frees
    // what the server would otherwise keep (and resend) for a minute; nothing answers it either way.
    await probe.send({ flags: TcpFlag.RST, seq: (isn + 1) >>> 0, ack: 0 });
    return undefined;
  }

  /** Did the SYN get a SYN-ACK (not a RST, not silence)? */
  get synAcked(): boolean {
    return this.answer !== undefined && isSynAck(this.answer);
  }

  /** NOP, NOP, timestamps echoing the server's, when the SYN-ACK negotiated timestamps (RFC 7323: then every segment carries them). */
  private timestamps(): TcpOption[] | undefined {
    return this.answer && findOption(this.answer.packet.tcp?.options, OptionKind.TIMESTAMPS) ? [nop(), nop(), this.probe.timestampOption()] : undefined;
  }

  /** Completes the handshake: the ACK of the SYN-ACK. */
  async ack(): Promise<void> {
    if (!this.synAcked || this.handshakeDone) return;
    this.handshakeDone = true;
    await this.probe.send({ flags: TcpFlag.ACK, options: this.timestamps() });
  }

  /**
   * Sends `payload` at the next sequence number and waits for its ACK (resent on silence), after
   * completing the handshake; `extra` sets more of the segment (an IP ECN codepoint, ...).
   */
  async send(payload: Uint8Array, extra: Partial<SegmentSpec> = {}): Promise<Observed | undefined> {
    await this.ack();
    return this.probe.sendData(payload, { options: this.timestamps(), ...extra });
  }

  /**
   * The sequence number the server expects next, as its latest ACK says: where a RST is in its window
   * (RFC 5961 3.2 wants exactly this one), also when data of ours never arrived.
   */
  private serverExpects(): number {
    const isn = this.probe.isn;
    let best = this.answer!.packet.tcp!.ack;
    for (const o of this.probe.received) {
      const tcp = o.packet.tcp;
      if (tcp && (tcp.flags & TcpFlag.ACK) && !(tcp.flags & TcpFlag.RST) && ((tcp.ack - isn) | 0) > ((best - isn) | 0)) best = tcp.ack;
    }
    return best;
  }

  /**
   * Ends the connection as a scanner does right after the SYN-ACK: a RST at the sequence number the
   * SYN-ACK acknowledged (what the kernel itself sends for a connection it does not know); after the
   * handshake, RST+ACK at the sequence number the server last acknowledged. Nothing to end after
   * silence or a RST.
   */
  async reset(): Promise<void> {
    if (!this.synAcked) return;
    const seq = this.serverExpects();
    await this.probe.send(this.handshakeDone ? { flags: TcpFlag.RST | TcpFlag.ACK, seq } : { flags: TcpFlag.RST, seq, ack: 0 });
  }

  /**
   * Ends a connection that carried a request as a client does: waits (a few round trips) for the
   * answer, then FIN, the server's FIN, our last ACK. A server that never closes, or never acknowledged
   * the request, gets a RST instead, so no state is left behind on it.
   */
  async finish(): Promise<void> {
    if (!this.synAcked) return;
    const probe = this.probe;
    await this.ack();
    const wait = this.pacer.answerWaitMs();
    // The request: a data segment, or the data of a SYN the server accepted (TFO).
    const lastData = [...probe.sent].reverse().find((o) => o.packet.payload.length > 0);
    if (lastData && !probe.received.some((o) => o.atUs >= lastData.atUs && (hasData(o) || isFin(o) || isRst(o)))) {
      await probe.waitFor((o) => o.atUs >= lastData.atUs && (hasData(o) || isFin(o) || isRst(o)), wait);
    }
    if (probe.received.some((o) => isRst(o) && o !== this.answer)) return;
    // Data the server never acknowledged: a FIN after it would wait in the server's out-of-order queue.
    if (this.serverExpects() !== probe.sndNxt) {
      await this.reset();
      probe.notes.closedBy = 'rst';
      return;
    }
    const finAck = await probe.exchange({ flags: TcpFlag.FIN | TcpFlag.ACK, options: this.timestamps() }, (o) => isRst(o) || isFin(o));
    probe.sndNxt = (probe.sndNxt + 1) >>> 0;
    if (!finAck) {
      await this.reset();
      probe.notes.closedBy = 'rst';
      return;
    }
    if (isRst(finAck)) return;
    probe.rcvNxt = (finAck.packet.tcp!.seq + finAck.packet.payload.length + 1) >>> 0;
    await probe.send({ flags: TcpFlag.ACK, options: this.timestamps() });
    probe.notes.closedBy = 'fin';
  }
}
