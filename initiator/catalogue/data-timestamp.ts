import { OptionKind } from '../../shared/wire/tcp-options.js';
import { handshake, timestampOptions } from '../probe-scripts.js';
import { forwardPairs, hasData, isRst, isSynAck, judgeDataProbes, judgeOption, timestampsOf } from '../judge-helpers.js';
import type { Observed } from '../observed.js';
import type { Judgement, TestCase } from '../test-case.js';
import { dataProbe } from '../probe-segments.js';

const DATA_SEGMENTS = 2;
const SEGMENT_BYTES = 100;
const VERDICTS = ['passed', 'modified', 'removed'] as const;

/** judgeOption, plus how far the value and echo moved (a box re-basing timestamps shows a constant offset). */
function judgeTimestamps(sent: Observed, received: Observed): Judgement {
  const judgement = judgeOption(sent, received, OptionKind.TIMESTAMPS);
  const s = timestampsOf(sent);
  const r = timestampsOf(received);
  if (judgement.verdict !== 'modified' || !s || !r) return judgement;
  return { ...judgement, detail: { ...judgement.detail, valueOffset: (r.value - s.value) | 0, echoOffset: (r.echo - s.echo) | 0 } };
}

export const dataTimestamp: TestCase = {
  name: 'data-timestamp',
  sends: `after a handshake negotiating timestamps, ${DATA_SEGMENTS} data segments of ${SEGMENT_BYTES} bytes, each with a timestamps option`,
  verdicts: VERDICTS,
  carriesToken: 'in-stream',
  probe: dataProbe('option.timestamps'),
  async run(connection, context) {
    const synAck = await handshake(connection);
    if (!synAck) return;
    for (let i = 0; i < DATA_SEGMENTS; i++) {
      // A new value per segment, echoing the responder's latest, as a real sender's would.
      const ack = await connection.sendData(context.payload(SEGMENT_BYTES), { options: timestampOptions(connection) });
      if (!ack || isRst(ack)) break;
    }
    await connection.close();
  },
  judge(obs) {
    const judgement = judgeDataProbes(obs, VERDICTS, judgeTimestamps);
    if (!(VERDICTS as readonly string[]).includes(judgement.verdict)) return judgement;
    // Both segments are the evidence: one segment passing unchanged is not "passed".
    const paired = forwardPairs(obs, hasData).pairs.length;
    if (judgement.verdict === 'passed' && paired < DATA_SEGMENTS) {
      return { verdict: 'inconclusive', detail: { reason: `only ${paired} of the ${DATA_SEGMENTS} data segments were sent and received`, ...judgement.detail } };
    }
    // Did the handshake negotiate timestamps as the initiator saw it (a box stripping them from the SYN or SYN-ACK)?
    const synAck = obs.initiator.received.find(isSynAck);
    return { verdict: judgement.verdict, detail: { option: 'timestamps', synAckTimestamps: synAck ? timestampsOf(synAck) !== undefined : null, ...judgement.detail } };
  },
};
