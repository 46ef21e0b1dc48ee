import { connectAndClose } from '../probe-scripts.js';
import { first, isSyn, isSynAck, sharedVerdict } from '../judge-helpers.js';
import type { TestCase } from '../test-case.js';

export const nat: TestCase = {
  name: 'nat',
  sends: 'an ordinary SYN; the initiator\'s address and port are compared with what the responder saw',
  verdicts: ['none', 'address', 'port', 'address+port'],
  run: connectAndClose,
  judge(obs) {
    const shared = sharedVerdict(obs, isSyn, isSynAck);
    if (shared) return shared;
    const sent = first(obs.initiator.sent, isSyn)!.packet;
    const received = first(obs.responder!.received, isSyn)!.packet;
    const addressChanged = sent.ip!.src !== received.ip!.src;
    const portChanged = sent.tcp!.srcPort !== received.tcp!.srcPort;
    const detail = { sent: `${sent.ip!.src}:${sent.tcp!.srcPort}`, received: `${received.ip!.src}:${received.tcp!.srcPort}` };
    const verdict = addressChanged && portChanged ? 'address+port' : addressChanged ? 'address' : portChanged ? 'port' : 'none';
    return { verdict, detail };
  },
};
