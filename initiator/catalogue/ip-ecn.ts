import { ecnOf, dscpOf } from '../../shared/wire/packet.js';
import { connectSendAndClose } from '../probe-scripts.js';
import { judgeDataProbes } from '../judge-helpers.js';
import type { TestCase } from '../test-case.js';
import { dataProbe } from '../probe-segments.js';

const DATA_BYTES = 100;
const VERDICTS = ['passed', 'bleached', 'changed'] as const;
/** The ECN field's codepoints (RFC 3168 5). */
const ECN_NAMES = ['Not-ECT', 'ECT(1)', 'ECT(0)', 'CE'];
const NOT_ECT = 0;
const ECT0 = 2;
const CE = 3;

export const ipEcn: TestCase = {
  name: 'ip-ecn',
  sends: `after an ordinary handshake (no ECN negotiated), a data segment of ${DATA_BYTES} bytes marked ECT(0) in the IP header`,
  verdicts: VERDICTS,
  carriesToken: 'in-stream',
  probe: dataProbe('ip.ecn'),
  run: (connection, context) => connectSendAndClose(connection, context, DATA_BYTES, { tos: ECT0 }),
  judge(obs) {
    return judgeDataProbes(obs, VERDICTS, (sent, received) => {
      const s = ecnOf(sent.packet.ip!);
      const r = ecnOf(received.packet.ip!);
      const detail = {
        sent: ECN_NAMES[s],
        received: ECN_NAMES[r],
        // CE is what a congested AQM router sets; it is reported as `changed`, and told apart here.
        change: r === s ? null : r === NOT_ECT ? 'bleached' : r === CE ? 'ce-marked' : 'modified',
        dscp: { sent: dscpOf(sent.packet.ip!), received: dscpOf(received.packet.ip!) },
      };
      if (s !== ECT0) return { verdict: 'inconclusive', detail: { reason: 'the probe was not sent with ECT(0)', ...detail } };
      const verdict = r === s ? 'passed' : r === NOT_ECT ? 'bleached' : 'changed';
      return { verdict, detail };
    });
  },
};
