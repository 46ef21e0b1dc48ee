import { rawOption } from '../../shared/wire/tcp-options.js';
import { defaultSynOptions, UNKNOWN_OPTION_KIND } from '../syn-options.js';
import { first, hasData, isSynAck, judgeOption, sharedVerdict } from '../judge-helpers.js';
import type { TestCase } from '../test-case.js';

const unknownOption = (): ReturnType<typeof rawOption> => rawOption(UNKNOWN_OPTION_KIND, Uint8Array.of(0x64, 0x61, 0x74, 0x61, 0x6f, 0x70));

export const dataUnknownOption: TestCase = {
  name: 'data-unknown-option',
  sends: 'after an ordinary handshake, a data segment carrying option kind 200 (8 bytes)',
  verdicts: ['passed', 'modified', 'removed'],
  async run(connection, context) {
    const synAck = await connection.connect({ options: defaultSynOptions() });
    if (!synAck) return;
    await connection.sendData(context.payload(100), { options: [unknownOption()] });
    await connection.close();
  },
  judge(obs) {
    const shared = sharedVerdict(obs, hasData, (o) => !isSynAck(o) && o.packet.tcp !== undefined && o.packet.payload.length === 0 && (o.packet.tcp.flags & 0x10) !== 0);
    if (shared) return shared;
    const sent = first(obs.initiator.sent, hasData)!;
    const received = first(obs.responder!.received, hasData)!;
    return judgeOption(sent, received, UNKNOWN_OPTION_KIND);
  },
};
