import { defaultSynOptions } from '../syn-options.js';
import { first, hasData, isSyn, isSynAck, sharedVerdict } from '../judge-helpers.js';
import type { TestCase } from '../test-case.js';

const delta = (a: number, b: number): number => ((b - a) | 0);

export const seqRewrite: TestCase = {
  name: 'seq-rewrite',
  sends: 'a handshake and one data segment; sequence numbers are compared as sent and as received, both ways',
  verdicts: ['unchanged', 'rewritten-forward', 'rewritten-reverse', 'rewritten-both'],
  async run(connection, context) {
    const synAck = await connection.connect({ options: defaultSynOptions() });
    if (!synAck) return;
    await connection.sendData(context.payload(100));
    await connection.close();
  },
  judge(obs) {
    const shared = sharedVerdict(obs, isSyn, isSynAck);
    if (shared) return shared;
    const responder = obs.responder!;
    const forward = delta(first(obs.initiator.sent, isSyn)!.packet.tcp!.seq, first(responder.received, isSyn)!.packet.tcp!.seq);
    const reverse = delta(first(responder.sent, isSynAck)!.packet.tcp!.seq, first(obs.initiator.received, isSynAck)!.packet.tcp!.seq);
    // The data segment confirms the forward offset is consistent, not a one-off on the SYN.
    const dataSent = first(obs.initiator.sent, hasData);
    const dataReceived = first(responder.received, hasData);
    const dataOffset = dataSent && dataReceived ? delta(dataSent.packet.tcp!.seq, dataReceived.packet.tcp!.seq) : null;
    const detail = { forwardOffset: forward, reverseOffset: reverse, dataForwardOffset: dataOffset };
    const verdict = forward !== 0 && reverse !== 0 ? 'rewritten-both' : forward !== 0 ? 'rewritten-forward' : reverse !== 0 ? 'rewritten-reverse' : 'unchanged';
    return { verdict, detail };
  },
};
