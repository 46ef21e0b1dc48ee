import { dscpOf, ecnOf } from '../../shared/wire/packet.js';
import { defaultSynOptions } from '../probe-scripts.js';
import { first, isRst, isSyn, isSynAck, judgeDataProbes, sharedVerdict } from '../judge-helpers.js';
import type { Observed } from '../observed.js';
import type { TestCase } from '../test-case.js';
import { dataProbe } from '../probe-segments.js';

const DATA_BYTES = 100;
const VERDICTS = ['passed', 'bleached', 'remarked'] as const;
/** Expedited Forwarding (RFC 3246): DSCP 46, the TOS byte / traffic class 0xb8 with ECN Not-ECT. */
const DSCP_EF = 46;
const TOS_EF = DSCP_EF << 2;

/** The usual name of a codepoint: EF, AFxy, CSx, LE, else its number. */
function dscpName(dscp: number): string {
  if (dscp === 46) return 'EF';
  if (dscp === 44) return 'VOICE-ADMIT';
  if (dscp === 1) return 'LE';
  if ((dscp & 0x07) === 0) return `CS${dscp >> 3}`;
  const klass = dscp >> 3;
  const drop = (dscp >> 1) & 0x03;
  if (klass >= 1 && klass <= 4 && (dscp & 1) === 0 && drop >= 1) return `AF${klass}${drop}`;
  return String(dscp);
}

const dscp = (o: Observed | undefined): { value: number; name: string } | null => {
  if (!o?.packet.ip) return null;
  const value = dscpOf(o.packet.ip);
  return { value, name: dscpName(value) };
};

export const ipDscp: TestCase = {
  name: 'ip-dscp',
  sends: `a SYN and, after the handshake, a data segment of ${DATA_BYTES} bytes, both marked DSCP EF (46) in the IP header`,
  verdicts: VERDICTS,
  carriesToken: 'in-stream',
  probe: dataProbe('ip.dscp'),
  async run(connection, context) {
    // Marked like an application's socket would mark them (IP_TOS): the SYN too.
    const synAck = await connection.connect({ options: defaultSynOptions(), tos: TOS_EF });
    if (!synAck || isRst(synAck)) return;
    await connection.sendData(context.payload(DATA_BYTES), { tos: TOS_EF });
    await connection.close();
  },
  judge(obs) {
    // A marked SYN that never arrives is this test's probe dropped, not a script that stopped early.
    const synShared = sharedVerdict(obs, isSyn, isSynAck);
    if (synShared) return synShared;
    const syn = { sent: dscp(first(obs.initiator.sent, isSyn)), received: dscp(first(obs.responder!.received, isSyn)) };
    return judgeDataProbes(obs, VERDICTS, (sent, received) => {
      const s = dscpOf(sent.packet.ip!);
      const r = dscpOf(received.packet.ip!);
      const detail = {
        sent: s,
        received: r,
        sentName: dscpName(s),
        receivedName: dscpName(r),
        ecn: { sent: ecnOf(sent.packet.ip!), received: ecnOf(received.packet.ip!) },
        syn,
      };
      if (s !== DSCP_EF) return { verdict: 'inconclusive', detail: { reason: 'the probe was not sent with DSCP EF', ...detail } };
      return { verdict: r === s ? 'passed' : r === 0 ? 'bleached' : 'remarked', detail };
    });
  },
};
