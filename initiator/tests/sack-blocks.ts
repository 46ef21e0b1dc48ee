import { TcpFlag } from '../../shared/wire/tcp.js';
import { findOption, nop, OptionKind, optionName, sack, viewOption, type TcpOption } from '../../shared/wire/tcp-options.js';
import { defaultSynOptions } from '../syn-options.js';
import { first, hasData, isRst, isSyn, isSynAck, sharedVerdict } from '../judge-helpers.js';
import type { Observed, ProbeConnection } from '../probe.js';
import type { TestCase } from '../test-case.js';

/** What the responder sends after the handshake: two segments (the engine cuts its data into 1200-byte segments). */
const RESPONDER_BYTES = 2400;

const flagsOf = (o: Observed): number => o.packet.tcp?.flags ?? 0;
const offset = (value: number, base: number): number => (value - base) | 0;
const isPureAck = (o: Observed): boolean =>
  o.packet.tcp !== undefined && (flagsOf(o) & (TcpFlag.ACK | TcpFlag.SYN | TcpFlag.FIN | TcpFlag.RST)) === TcpFlag.ACK && o.packet.payload.length === 0;
const blocksOf = (o: Observed): Array<[number, number]> => {
  const option = findOption(o.packet.tcp?.options, OptionKind.SACK);
  const view = option && viewOption(option);
  return view?.type === 'sack' ? view.blocks : [];
};
const timestampsIf = (c: ProbeConnection, synAck: Observed): TcpOption[] =>
  findOption(synAck.packet.tcp?.options, OptionKind.TIMESTAMPS) ? [nop(), nop(), c.timestampOption()] : [];
const byArrival = (list: readonly Observed[]): Observed[] => list.map((o, i) => ({ o, i })).sort((a, b) => a.o.atUs - b.o.atUs || a.i - b.i).map((x) => x.o);

export const sackBlocks: TestCase = {
  name: 'sack-blocks',
  sends: `a handshake after which the responder sends ${RESPONDER_BYTES} bytes in two segments; then an ACK of the handshake only, with a SACK block for the second segment (a real hole)`,
  verdicts: ['passed', 'translated', 'untranslated', 'removed'],
  plan: { sendBytes: RESPONDER_BYTES },
  async run(connection) {
    const synAck = await connection.connect({ options: defaultSynOptions() });
    if (!synAck || isRst(synAck)) return;
    const start = connection.rcvNxt;
    const data: Observed[] = [];
    while (data.length < 2) {
      const o = await connection.waitFor((x) => hasData(x) && !data.some((d) => d.packet.tcp!.seq === x.packet.tcp!.seq));
      if (!o) break;
      data.push(o);
    }
    connection.notes.dataSegmentsReceived = data.length;
    // The segment furthest beyond the first byte: acknowledging only the handshake leaves a hole before it.
    const target = data.filter((o) => offset(o.packet.tcp!.seq, start) > 0).sort((a, b) => offset(b.packet.tcp!.seq, a.packet.tcp!.seq))[0];
    if (!target) {
      connection.notes.reason = 'no responder data beyond its first byte arrived, so there was no hole to describe';
      await connection.close();
      return;
    }
    const left = target.packet.tcp!.seq;
    const right = (left + target.packet.payload.length) >>> 0;
    await connection.send({ flags: TcpFlag.ACK, ack: start, options: [...timestampsIf(connection, synAck), nop(), nop(), sack([[left, right]])] });
    // Then acknowledge what arrived in order, and close.
    let end = start;
    for (const o of [...data].sort((a, b) => offset(a.packet.tcp!.seq, b.packet.tcp!.seq))) {
      const segmentEnd = (o.packet.tcp!.seq + o.packet.payload.length) >>> 0;
      if (offset(o.packet.tcp!.seq, end) <= 0 && offset(segmentEnd, end) > 0) end = segmentEnd;
    }
    connection.rcvNxt = end;
    await connection.close();
  },
  judge(obs) {
    const shared = sharedVerdict(obs, isSyn, isSynAck);
    if (shared) return shared;
    const responder = obs.responder!;
    const isnOwn = first(responder.sent, isSynAck)?.packet.tcp?.seq;
    const isnSeen = first(obs.initiator.received, isSynAck)?.packet.tcp?.seq;
    if (isnOwn === undefined || isnSeen === undefined) return { verdict: 'inconclusive', detail: { reason: 'no SYN-ACK on one side to relate sequence numbers to' } };
    const dataSent = responder.sent.filter(hasData);
    if (dataSent.length === 0) return { verdict: 'inconclusive', detail: { reason: 'the responder sent no data to acknowledge (its per-session send budget, or a plan it did not honour)' } };
    if (!obs.initiator.received.some(hasData)) return { verdict: 'reply-dropped', detail: { answersSent: dataSent.length, answersReceived: 0 } };
    const probe = first(obs.initiator.sent, (o) => blocksOf(o).length > 0);
    if (!probe) return { verdict: 'inconclusive', detail: { reason: 'the ACK with the SACK block was never sent', ...obs.notes } };
    // At the responder, the probe is an ACK received after it sent its data (its own clock): the handshake ACK came before.
    const dataAt = Math.min(...dataSent.map((o) => o.atUs));
    const acks = byArrival(responder.received.filter((o) => isPureAck(o) && o.atUs > dataAt));
    const sentDetail = {
      ack: offset(probe.packet.tcp!.ack, isnSeen),
      blocks: blocksOf(probe).map(([l, r]) => [offset(l, isnSeen), offset(r, isnSeen)]),
    };
    if (acks.length === 0) return { verdict: 'dropped', detail: { reason: 'no ACK reached the responder after its data', sent: sentDetail } };
    const received = acks.find((o) => blocksOf(o).length > 0);
    const synAckSackPermitted = findOption(first(obs.initiator.received, isSynAck)!.packet.tcp!.options, OptionKind.SACK_PERMITTED) !== undefined;
    if (!received) {
      return {
        verdict: 'removed',
        detail: {
          sent: sentDetail,
          received: { ack: offset(acks[0].packet.tcp!.ack, isnOwn), options: (acks[0].packet.tcp!.options ?? []).map((o) => optionName(o.kind)) },
          acksReceived: acks.length,
          synAckSackPermitted,
        },
      };
    }
    const sentBlocks = blocksOf(probe);
    const receivedBlocks = blocksOf(received);
    // How far the path moved the ack number, and each SACK edge (absolute, as sent vs as received).
    const ackShift = offset(received.packet.tcp!.ack, probe.packet.tcp!.ack);
    const edgeShifts = receivedBlocks.map(([l, r], i) => (sentBlocks[i] ? [offset(l, sentBlocks[i][0]), offset(r, sentBlocks[i][1])] : null));
    const consistent = receivedBlocks.length === sentBlocks.length && edgeShifts.every((s) => s !== null && s[0] === ackShift && s[1] === ackShift);
    const describesData = receivedBlocks.every(([l, r]) => dataSent.some((d) => d.packet.tcp!.seq === l && ((d.packet.tcp!.seq + d.packet.payload.length) >>> 0) === r));
    const detail = {
      sent: sentDetail,
      received: { ack: offset(received.packet.tcp!.ack, isnOwn), blocks: receivedBlocks.map(([l, r]) => [offset(l, isnOwn), offset(r, isnOwn)]) },
      ackShift,
      edgeShifts,
      blocksMatchResponderData: describesData,
      synAckSackPermitted,
    };
    const verdict = consistent ? (ackShift === 0 ? 'passed' : 'translated') : 'untranslated';
    return { verdict, detail };
  },
};
