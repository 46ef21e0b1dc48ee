import { toWireOption } from '../../shared/control.js';
import { rawOption } from '../../shared/wire/tcp-options.js';
import { connectAndClose, UNKNOWN_OPTION_KIND } from '../probe-scripts.js';
import { first, isSyn, isSynAck, judgeOption, sharedVerdict } from '../judge-helpers.js';
import type { TestCase } from '../test-case.js';
import { reversePathProbe } from '../probe-segments.js';

const unknownOption = rawOption(UNKNOWN_OPTION_KIND, Uint8Array.of(0x72, 0x73, 0x70, 0x6f, 0x6e, 0x64));

export const synackUnknownOption: TestCase = {
  name: 'synack-unknown-option',
  sends: 'an ordinary SYN; the responder answers with a SYN-ACK carrying option kind 200 (8 bytes)',
  verdicts: ['passed', 'modified', 'removed'],
  plan: { synAckOptions: [toWireOption(unknownOption)] },
  probe: reversePathProbe(),
  run: connectAndClose,
  judge(obs) {
    const shared = sharedVerdict(obs, isSyn, isSynAck);
    if (shared) return shared;
    const sent = first(obs.responder!.sent, isSynAck)!;
    const received = first(obs.initiator.received, isSynAck)!;
    return judgeOption(sent, received, UNKNOWN_OPTION_KIND);
  },
};
