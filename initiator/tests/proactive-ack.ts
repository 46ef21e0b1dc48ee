import { TcpFlag } from '../../shared/wire/tcp.js';
import { findOption, nop, OptionKind, optionName, viewOption, type TcpOption } from '../../shared/wire/tcp-options.js';
import { defaultSynOptions } from '../syn-options.js';
import { first, hasData, isRst, isSyn, isSynAck, sharedVerdict } from '../judge-helpers.js';
import type { Observed, ProbeConnection } from '../probe.js';
import type { TestCase } from '../test-case.js';

const PROBE_BYTES = 100;

const flagsOf = (o: Observed): number => o.packet.tcp?.flags ?? 0;
/** `value - base` in sequence space, signed (serial-number arithmetic). */
const offset = (value: number, base: number): number => (value - base) | 0;
/** An ACK that is not part of a handshake and not a reset. */
const isAck = (o: Observed): boolean => o.packet.tcp !== undefined && (flagsOf(o) & TcpFlag.ACK) !== 0 && (flagsOf(o) & (TcpFlag.SYN | TcpFlag.RST)) === 0;
const timestampValue = (o: Observed): number | undefined => {
  const option = findOption(o.packet.tcp?.options, OptionKind.TIMESTAMPS);
  const view = option && viewOption(option);
  return view?.type === 'timestamps' ? view.value : undefined;
};
/** How long a middlebox ACK may take: a few round trips, never less than 300 ms. */
const ackWaitMs = (c: ProbeConnection): number => Math.max(300, Math.min(c.timing.timeoutMs, 4 * (c.rttMs ?? c.timing.timeoutMs)));
const timestampsIf = (c: ProbeConnection, synAck: Observed): TcpOption[] => (timestampValue(synAck) !== undefined ? [nop(), nop(), c.timestampOption()] : []);

export const proactiveAck: TestCase = {
  name: 'proactive-ack',
  sends: `after an ordinary handshake, one ${PROBE_BYTES}-byte data segment, sent once, that the responder is asked never to acknowledge; the connection is then reset`,
  verdicts: ['none', 'acked-by-middlebox'],
  plan: { withholdAck: true },
  async run(connection, context) {
    const synAck = await connection.connect({ options: defaultSynOptions() });
    if (!synAck || isRst(synAck)) return;
    const seq = connection.sndNxt;
    // Sent once: a retransmission would be a second chance for a middlebox to ACK, and a second probe.
    await connection.send({ flags: TcpFlag.ACK | TcpFlag.PSH, seq, payload: context.payload(PROBE_BYTES), options: timestampsIf(connection, synAck) });
    connection.sndNxt = (seq + PROBE_BYTES) >>> 0;
    const waitMs = ackWaitMs(connection);
    connection.notes.waitedMs = waitMs;
    const ack = await connection.waitFor((o) => isRst(o) || (isAck(o) && offset(o.packet.tcp!.ack, seq) > 0), waitMs);
    connection.notes.ackSeen = ack !== undefined && !isRst(ack);
    // The data stays unacknowledged (by the responder): a RST releases the state on the path.
    await connection.abort();
  },
  judge(obs) {
    // The answer the responder gives on every path is its SYN-ACK; it never answers the probe.
    const shared = sharedVerdict(obs, hasData, isSynAck);
    if (shared && shared.verdict !== 'dropped') return shared;
    const responder = obs.responder!;
    const probe = first(obs.initiator.sent, hasData)!;
    const probeSeq = probe.packet.tcp!.seq;
    const probeEnd = (probeSeq + probe.packet.payload.length) >>> 0;
    // The initiator's ISN in the responder's frame (behind a split-connection proxy: the proxy's).
    const isnAtResponder = first(responder.received, isSyn)?.packet.tcp?.seq ?? obs.isn;
    const relativeAck = (o: Observed, isn: number): number => offset(o.packet.tcp!.ack, isn);
    const probeStart = offset(probeSeq, obs.isn);
    // ACKs that acknowledge some of the probe, as the initiator received them and as the responder sent them.
    const acksReceived = obs.initiator.received.filter((o) => isAck(o) && relativeAck(o, obs.isn) > probeStart);
    const acksSent = responder.sent.filter((o) => isAck(o) && relativeAck(o, isnAtResponder) > probeStart);
    const theResponders = (o: Observed): boolean =>
      acksSent.some((s) => relativeAck(s, isnAtResponder) === relativeAck(o, obs.isn) && timestampValue(s) === timestampValue(o));
    const forged = acksReceived.filter((o) => !theResponders(o));
    const detail = {
      probeBytes: probe.packet.payload.length,
      dataReachedResponder: shared === undefined,
      ...(obs.notes.waitedMs !== undefined ? { waitedMs: obs.notes.waitedMs } : {}),
      responderAcks: acksSent.length,
      middleboxAcks: forged.map((o) => ({
        ackedBytes: Math.min(offset(o.packet.tcp!.ack, probeSeq), probe.packet.payload.length),
        coversProbe: offset(o.packet.tcp!.ack, probeEnd) >= 0,
        msAfterProbe: Math.round((o.atUs - probe.atUs) / 100) / 10,
        window: o.packet.tcp!.window,
        options: (o.packet.tcp!.options ?? []).map((x) => optionName(x.kind)),
      })),
    };
    // An ACK the responder never sent says the path acknowledged the data, even if it never delivered it.
    if (forged.length > 0) return { verdict: 'acked-by-middlebox', detail };
    if (shared) return shared;
    return { verdict: 'none', detail };
  },
};
