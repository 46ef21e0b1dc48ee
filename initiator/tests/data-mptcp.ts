import { mptcpDss, OptionKind } from '../../shared/wire/tcp-options.js';
import { defaultSynOptions } from '../syn-options.js';
import { isRst } from '../judge-helpers.js';
import type { TestCase } from '../test-case.js';
import { judgeDataProbes, judgeSentOption } from './data-timestamp.js';

const DATA_BYTES = 100;
const VERDICTS = ['passed', 'modified', 'removed'] as const;

/**
 * A DSS option as an MPTCP subflow's first data segment would carry it: a 4-byte data ACK and a
 * mapping of the segment's bytes (RFC 8684 3.3). The handshake negotiates no MPTCP (the responder
 * does not speak it): the question is only whether a box passes the option on a data segment.
 */
const dss = (length: number) => mptcpDss({ dataAck: 1, dataSequence: 1, subflowSequence: 1, dataLength: length });

export const dataMptcp: TestCase = {
  name: 'data-mptcp',
  sends: `after an ordinary handshake, a data segment of ${DATA_BYTES} bytes carrying an MPTCP DSS option (option 30: data ACK and mapping, 20 bytes)`,
  verdicts: VERDICTS,
  async run(connection, context) {
    const synAck = await connection.connect({ options: defaultSynOptions() });
    if (!synAck || isRst(synAck)) return;
    await connection.sendData(context.payload(DATA_BYTES), { options: [dss(DATA_BYTES)] });
    await connection.close();
  },
  judge(obs) {
    return judgeDataProbes(obs, VERDICTS, (sent, received) => judgeSentOption(sent, received, OptionKind.MPTCP));
  },
};
