import { TcpFlag } from '../../../shared/wire/tcp.js';
import { ecnOf } from '../../../shared/wire/packet.js';
import { acks, flagsOf, hasData, isSynAck } from '../../observed.js';
import { defaultSynOptions } from '../../probe-scripts.js';
import { connection, describeOutcome, ecnFlagNames, ipEcnName, sharedServerVerdict, synOutcome } from './judging.js';
import type { ServerTest } from './server-test.js';

/** An ECN-setup SYN carries ECE and CWR (RFC 3168 6.1.1); the ECN-setup SYN-ACK answers with ECE alone. */
const ECN_SETUP = TcpFlag.ECE | TcpFlag.CWR;
/** ECT(0) in the IP header's ECN field. */
const ECT0 = 0b10;

/**
 * A/B as PATHspider does it: an ordinary SYN, then an ECN-setup SYN. When ECN is negotiated, the request
 * goes out marked ECT(0); if no ACK comes for it, once more unmarked, as RFC 3168 6.1.1.1 has a sender
 * do, so a path that drops ECT-marked packets is told apart from a server that ignores data.
 */
export const serverEcn: ServerTest = {
  name: 'server-ecn',
  sends: 'an ordinary SYN, then an ECN-setup SYN (ECE and CWR); when ECN is negotiated, the request marked ECT(0) (unmarked again if it is not acknowledged)',
  verdicts: ['negotiated', 'not-negotiated', 'ecn-broken'],
  absenceVerdicts: ['ecn-broken'],
  connections: ['ordinary SYN, then RST', 'SYN (usual options; ECE, CWR); when the SYN-ACK has ECE alone: the request with ECT(0), FIN after the answer; else RST'],
  async run(context) {
    const plain = context.open('plain');
    await plain.syn({ options: defaultSynOptions() });
    await plain.reset();
    if (!plain.synAcked) return;
    const ecn = context.open('ecn');
    await ecn.syn({ options: defaultSynOptions(), flags: TcpFlag.SYN | ECN_SETUP });
    if (!ecn.synAcked) return;
    if ((flagsOf(ecn.answer!) & ECN_SETUP) !== TcpFlag.ECE) {
      await ecn.reset();
      return;
    }
    const request = context.request();
    const start = ecn.probe.sndNxt;
    const acked = await ecn.send(request, { tos: ECT0 });
    if (!acked) {
      // RFC 3168 6.1.1.1: a retransmission goes out Not-ECT.
      ecn.probe.sndNxt = start;
      await ecn.send(request);
    }
    await ecn.finish();
  },
  judge(obs) {
    const shared = sharedServerVerdict(synOutcome(connection(obs, 'plain')), 'the ordinary SYN');
    if (shared) return shared;
    const ecn = connection(obs, 'ecn');
    const outcome = synOutcome(ecn);
    if (outcome.kind === 'none' || outcome.kind === 'rst') {
      return { verdict: 'ecn-broken', detail: { stage: 'syn', reason: 'the ECN-setup SYN got no SYN-ACK, the ordinary SYN did', ecnSyn: describeOutcome(outcome) } };
    }
    if (outcome.kind !== 'syn-ack') return sharedServerVerdict(outcome, 'the ECN-setup SYN')!;
    const synAckFlags = flagsOf(outcome.synAck) & ECN_SETUP;
    const synAckDetail = { synAckFlags: ecnFlagNames(outcome.synAck) };
    if (synAckFlags === ECN_SETUP) return { verdict: 'not-negotiated', detail: { ...synAckDetail, reflected: true, reason: 'the SYN-ACK reflects ECE and CWR (RFC 3168 says: not an ECN-setup SYN-ACK)' } };
    if (synAckFlags !== TcpFlag.ECE) return { verdict: 'not-negotiated', detail: synAckDetail };
    const data = ecn!.sent.filter(hasData);
    const marked = data.filter((o) => o.packet.ip && ecnOf(o.packet.ip) === ECT0);
    const unmarked = data.filter((o) => !marked.includes(o));
    if (marked.length === 0) return { verdict: 'inconclusive', detail: { ...synAckDetail, reason: 'ECN was negotiated but no ECT(0) data was sent (the test script stopped early)' } };
    const end = (marked[0].packet.tcp!.seq + marked[0].packet.payload.length) >>> 0;
    const after = (o: { atUs: number }) => o.atUs > outcome.synAck.atUs;
    const ack = ecn!.received.find((o) => after(o) && !isSynAck(o) && acks(o, end));
    const serverData = ecn!.received.filter(hasData);
    const detail = {
      ...synAckDetail,
      ectDataSent: marked.length,
      unmarkedDataSent: unmarked.length,
      // ECE on the ACKs: a CE mark on the way (the server echoes it until CWR).
      ceEchoed: ecn!.received.some((o) => after(o) && !isSynAck(o) && (flagsOf(o) & TcpFlag.ECE) !== 0),
      serverDataEcn: [...new Set(serverData.map(ipEcnName))],
    };
    if (!ack) return { verdict: 'inconclusive', detail: { ...detail, reason: 'the server acknowledged none of the request, marked or not' } };
    if (unmarked.length > 0 && ack.atUs > unmarked[0].atUs) {
      return { verdict: 'ecn-broken', detail: { ...detail, stage: 'data', reason: 'the request marked ECT(0) was not acknowledged, the same bytes unmarked were' } };
    }
    return { verdict: 'negotiated', detail };
  },
};
