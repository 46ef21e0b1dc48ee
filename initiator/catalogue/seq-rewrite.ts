import { connectSendAndClose } from '../probe-scripts.js';
import { first, hasData, isSyn, isSynAck, seqOffset, sharedVerdict } from '../judge-helpers.js';
import type { TestCase } from '../test-case.js';
import { dataProbe } from '../probe-segments.js';

export const seqRewrite: TestCase = {
  name: 'seq-rewrite',
  sends: 'a handshake and one data segment; sequence numbers are compared as sent and as received, both ways',
  verdicts: ['unchanged', 'rewritten-forward', 'rewritten-reverse', 'rewritten-both'],
  carriesToken: 'in-stream',
  probe: dataProbe('tcp.seq', 'tcp.ack'),
  run: (connection, context) => connectSendAndClose(connection, context, 100),
  judge(obs) {
    const shared = sharedVerdict(obs, isSyn, isSynAck);
    if (shared) return shared;
    const responder = obs.responder!;
    // How far the path moved each side's sequence numbers: as received, relative to as sent.
    const forward = seqOffset(first(responder.received, isSyn)!.packet.tcp!.seq, first(obs.initiator.sent, isSyn)!.packet.tcp!.seq);
    const reverse = seqOffset(first(obs.initiator.received, isSynAck)!.packet.tcp!.seq, first(responder.sent, isSynAck)!.packet.tcp!.seq);
    // The data segment confirms the forward offset is consistent, not a one-off on the SYN.
    const dataSent = first(obs.initiator.sent, hasData);
    const dataReceived = first(responder.received, hasData);
    const dataOffset = dataSent && dataReceived ? seqOffset(dataReceived.packet.tcp!.seq, dataSent.packet.tcp!.seq) : null;
    const detail = { forwardOffset: forward, reverseOffset: reverse, dataForwardOffset: dataOffset };
    const verdict = forward !== 0 && reverse !== 0 ? 'rewritten-both' : forward !== 0 ? 'rewritten-forward' : reverse !== 0 ? 'rewritten-reverse' : 'unchanged';
    return { verdict, detail };
  },
};
