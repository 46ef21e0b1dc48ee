import { TcpFlag } from '../../shared/wire/tcp.js';
import { findOption, nop, OptionKind, optionName, sack } from '../../shared/wire/tcp-options.js';
import { handshake, timestampsIfOffered } from '../probe-scripts.js';
import { ackOffset, byArrival, first, hasData, isPureAck, isSyn, isSynAck, responderIsns, sackBlocksOf, seqOffset, sharedVerdict } from '../judge-helpers.js';
import type { Observed } from '../observed.js';
import type { TestCase } from '../test-case.js';
import { probeWhere } from '../probe-segments.js';

/** What the responder sends after the handshake: two segments (the engine cuts its data into 1200-byte segments). */
const RESPONDER_BYTES = 2400;

export const sackBlocks: TestCase = {
  name: 'sack-blocks',
  sends: `a handshake after which the responder sends ${RESPONDER_BYTES} bytes in two segments; then an ACK of the handshake only, with a SACK block for the second segment (a real hole), sent twice`,
  verdicts: ['passed', 'translated', 'untranslated', 'removed'],
  long: true,
  // what a lost segment (and its lost copies) would also look like
  absenceVerdicts: ['removed'],
  probe: probeWhere((o) => findOption(o.packet.tcp?.options, OptionKind.SACK) !== undefined, 'option.sack', 'tcp.ack'),
  plan: { sendBytes: RESPONDER_BYTES },
  async run(connection) {
    const synAck = await handshake(connection);
    if (!synAck) return;
    const start = connection.rcvNxt;
    const data: Observed[] = [];
    // The responder sends its data when the handshake's ACK arrives; if some is lost on the way, the
    // same ACK again makes the (stateless) responder send it all again.
    for (let round = 0; round < connection.timing.attempts && data.length < 2; round++) {
      if (round > 0) {
        connection.resends++;
        await connection.send({ flags: TcpFlag.ACK, ack: start });
      }
      while (data.length < 2) {
        const o = await connection.waitFor((x) => hasData(x) && !data.some((d) => d.packet.tcp!.seq === x.packet.tcp!.seq));
        if (!o) break;
        data.push(o);
      }
    }
    connection.notes.dataSegmentsReceived = data.length;
    // The segment furthest beyond the first byte: acknowledging only the handshake leaves a hole before it.
    const target = data.filter((o) => seqOffset(o.packet.tcp!.seq, start) > 0).sort((a, b) => seqOffset(b.packet.tcp!.seq, a.packet.tcp!.seq))[0];
    if (!target) {
      connection.notes.reason = 'no responder data beyond its first byte arrived, so there was no hole to describe';
      await connection.close();
      return;
    }
    const left = target.packet.tcp!.seq;
    const right = (left + target.packet.payload.length) >>> 0;
    // Sent twice, a few milliseconds apart: a pure ACK is never answered, so a lost one would go unnoticed.
    for (let copy = 0; copy < 2; copy++) {
      if (copy > 0) await connection.linger(5);
      await connection.send({ flags: TcpFlag.ACK, ack: start, options: [...timestampsIfOffered(connection, synAck), nop(), nop(), sack([[left, right]])] });
    }
    // Then acknowledge what arrived in order, and close.
    let end = start;
    for (const o of [...data].sort((a, b) => seqOffset(a.packet.tcp!.seq, b.packet.tcp!.seq))) {
      const segmentEnd = (o.packet.tcp!.seq + o.packet.payload.length) >>> 0;
      if (seqOffset(o.packet.tcp!.seq, end) <= 0 && seqOffset(segmentEnd, end) > 0) end = segmentEnd;
    }
    connection.rcvNxt = end;
    await connection.close();
  },
  judge(obs) {
    const shared = sharedVerdict(obs, isSyn, isSynAck);
    if (shared) return shared;
    const responder = obs.responder!;
    const { sent: isnOwn, received: isnSeen } = responderIsns(obs);
    if (isnOwn === undefined || isnSeen === undefined) return { verdict: 'inconclusive', detail: { reason: 'no SYN-ACK on one side to relate sequence numbers to' } };
    const dataSent = responder.sent.filter(hasData);
    if (dataSent.length === 0) return { verdict: 'inconclusive', detail: { reason: 'the responder sent no data to acknowledge (its per-session send budget, or a plan it did not honour)' } };
    if (!obs.initiator.received.some(hasData)) return { verdict: 'reply-dropped', detail: { answersSent: dataSent.length, answersReceived: 0 } };
    const probe = first(obs.initiator.sent, (o) => sackBlocksOf(o).length > 0);
    if (!probe) return { verdict: 'inconclusive', detail: { reason: 'the ACK with the SACK block was never sent', ...obs.notes } };
    // At the responder, the probe is an ACK received after it sent its data (its own clock): the handshake ACK came before.
    const dataAt = Math.min(...dataSent.map((o) => o.atUs));
    const acks = byArrival(responder.received.filter((o) => isPureAck(o) && o.atUs > dataAt));
    const sentDetail = {
      ack: ackOffset(probe, isnSeen),
      blocks: sackBlocksOf(probe).map(([l, r]) => [seqOffset(l, isnSeen), seqOffset(r, isnSeen)]),
    };
    if (acks.length === 0) return { verdict: 'dropped', detail: { reason: 'no ACK reached the responder after its data', sent: sentDetail } };
    // The probe at the responder: an ACK of the same (relative) number. None arrived: lost, unless the
    // responder's data was acknowledged by someone else (a split-connection proxy acknowledges it
    // itself, and no block of ours can cross it).
    const probeCopies = acks.filter((o) => ackOffset(o, isnOwn) === sentDetail.ack);
    const ourAcks = new Set(obs.initiator.sent.filter(isPureAck).map((o) => ackOffset(o, isnSeen)));
    const ackedByPath = acks.some((o) => !ourAcks.has(ackOffset(o, isnOwn)));
    if (probeCopies.length === 0 && !ackedByPath) {
      return { verdict: 'dropped', detail: { reason: 'the ACK carrying the SACK block never reached the responder (both copies lost?)', sent: sentDetail, acksReceived: acks.map((o) => ackOffset(o, isnOwn)) } };
    }
    const candidates = probeCopies.length ? probeCopies : acks;
    const received = candidates.find((o) => sackBlocksOf(o).length > 0);
    const synAckSackPermitted = findOption(first(obs.initiator.received, isSynAck)!.packet.tcp!.options, OptionKind.SACK_PERMITTED) !== undefined;
    if (!received) {
      return {
        verdict: 'removed',
        detail: {
          sent: sentDetail,
          received: { ack: ackOffset(candidates[0], isnOwn), options: (candidates[0].packet.tcp!.options ?? []).map((o) => optionName(o.kind)) },
          acksReceived: acks.length,
          probeCopiesReceived: probeCopies.length,
          synAckSackPermitted,
        },
      };
    }
    const sentBlocks = sackBlocksOf(probe);
    const receivedBlocks = sackBlocksOf(received);
    // How far the path moved the ack number, and each SACK edge (absolute, as sent vs as received).
    const ackShift = seqOffset(received.packet.tcp!.ack, probe.packet.tcp!.ack);
    const edgeShifts = receivedBlocks.map(([l, r], i) => (sentBlocks[i] ? [seqOffset(l, sentBlocks[i][0]), seqOffset(r, sentBlocks[i][1])] : null));
    const consistent = receivedBlocks.length === sentBlocks.length && edgeShifts.every((s) => s !== null && s[0] === ackShift && s[1] === ackShift);
    const describesData = receivedBlocks.every(([l, r]) => dataSent.some((d) => d.packet.tcp!.seq === l && ((d.packet.tcp!.seq + d.packet.payload.length) >>> 0) === r));
    const detail = {
      sent: sentDetail,
      received: { ack: ackOffset(received, isnOwn), blocks: receivedBlocks.map(([l, r]) => [seqOffset(l, isnOwn), seqOffset(r, isnOwn)]) },
      ackShift,
      edgeShifts,
      blocksMatchResponderData: describesData,
      synAckSackPermitted,
    };
    const verdict = consistent ? (ackShift === 0 ? 'passed' : 'translated') : 'untranslated';
    return { verdict, detail };
  },
};
