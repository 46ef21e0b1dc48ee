import { mptcpDss, OptionKind } from '../../shared/wire/tcp-options.js';
import { connectSendAndClose } from '../probe-scripts.js';
import { judgeDataProbes, judgeOption } from '../judge-helpers.js';
import type { TestCase } from '../test-case.js';
import { dataProbe } from '../probe-segments.js';

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
  carriesToken: 'in-stream',
  probe: dataProbe('option.mptcp'),
  run: (connection, context) => connectSendAndClose(connection, context, DATA_BYTES, { options: [dss(DATA_BYTES)] }),
  judge(obs) {
    return judgeDataProbes(obs, VERDICTS, (sent, received) => judgeOption(sent, received, OptionKind.MPTCP));
  },
};
