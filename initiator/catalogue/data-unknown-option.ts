import { optionName, rawOption } from '../../shared/wire/tcp-options.js';
import { connectSendAndClose, UNKNOWN_OPTION_KIND } from '../probe-scripts.js';
import { first, hasData, isDataAck, judgeOption, sharedVerdict } from '../judge-helpers.js';
import type { TestCase } from '../test-case.js';
import { dataProbe } from '../probe-segments.js';

const unknownOption = (): ReturnType<typeof rawOption> => rawOption(UNKNOWN_OPTION_KIND, Uint8Array.of(0x64, 0x61, 0x74, 0x61, 0x6f, 0x70));

export const dataUnknownOption: TestCase = {
  name: 'data-unknown-option',
  sends: 'after an ordinary handshake, a data segment carrying option kind 200 (8 bytes)',
  verdicts: ['passed', 'modified', 'removed'],
  carriesToken: 'in-stream',
  probe: dataProbe(`option.${optionName(UNKNOWN_OPTION_KIND)}`),
  run: (connection, context) => connectSendAndClose(connection, context, 100, { options: [unknownOption()] }),
  judge(obs) {
    const shared = sharedVerdict(obs, hasData, isDataAck);
    if (shared) return shared;
    const sent = first(obs.initiator.sent, hasData)!;
    const received = first(obs.responder!.received, hasData)!;
    return judgeOption(sent, received, UNKNOWN_OPTION_KIND);
  },
};
