import { TcpFlag } from '../../../shared/wire/tcp.js';
import { flagsOf } from '../../observed.js';
import { defaultSynOptions } from '../../probe-scripts.js';
import { connection, describeOutcome, ecnFlagNames, optionNames, sharedServerVerdict, synOutcome } from './judging.js';
import type { ServerTest } from './server-test.js';

/** An AccECN SYN sets AE, CWR and ECE (RFC 9768 3.1.1). */
const ACCECN_SETUP = TcpFlag.AE | TcpFlag.CWR | TcpFlag.ECE;

/**
 * What the (AE, CWR, ECE) of a SYN-ACK to an AccECN SYN say (RFC 9768 3.1.1, Table 2): an AccECN
 * server reports the IP-ECN field its SYN arrived with; a classic ECN server answers with ECE alone (an
 * ECN-nonce one, RFC 3540, with AE and ECE); all three back is a server that reflects the flags.
 */
const ACE_MEANINGS: Readonly<Record<number, { verdict: string; meaning: string }>> = {
  0b000: { verdict: 'not-negotiated', meaning: 'no ECN' },
  0b001: { verdict: 'classic-ecn', meaning: 'classic ECN (RFC 3168)' },
  0b010: { verdict: 'negotiated', meaning: 'AccECN; the SYN arrived Not-ECT' },
  0b011: { verdict: 'negotiated', meaning: 'AccECN; the SYN arrived ECT(1)' },
  0b100: { verdict: 'negotiated', meaning: 'AccECN; the SYN arrived ECT(0)' },
  0b101: { verdict: 'classic-ecn', meaning: 'classic ECN with the ECN nonce (RFC 3540)' },
  0b110: { verdict: 'negotiated', meaning: 'AccECN; the SYN arrived CE' },
  0b111: { verdict: 'broken', meaning: 'the SYN\'s flags reflected: a broken server or middlebox, no ECN' },
};

/** AE, CWR, ECE as a 3-bit number. */
const aceOf = (flags: number): number => ((flags & TcpFlag.AE) ? 4 : 0) | ((flags & TcpFlag.CWR) ? 2 : 0) | ((flags & TcpFlag.ECE) ? 1 : 0);

export const serverAccecn: ServerTest = {
  name: 'server-accecn',
  sends: 'an AccECN SYN (AE, CWR and ECE set, besides the usual options); an ordinary SYN as well when it gets no SYN-ACK',
  verdicts: ['negotiated', 'classic-ecn', 'not-negotiated', 'broken'],
  absenceVerdicts: ['broken'],
  connections: ['SYN (usual options; AE, CWR, ECE), then RST', 'only if no SYN-ACK came: ordinary SYN, then RST'],
  async run(context) {
    const probe = context.open('probe');
    await probe.syn({ options: defaultSynOptions(), flags: TcpFlag.SYN | ACCECN_SETUP });
    await probe.reset();
    if (probe.synAcked) return;
    const control = context.open('control');
    await control.syn({ options: defaultSynOptions() });
    await control.reset();
  },
  judge(obs) {
    const outcome = synOutcome(connection(obs, 'probe'));
    if (outcome.kind === 'syn-ack') {
      if ((flagsOf(outcome.syn) & ACCECN_SETUP) !== ACCECN_SETUP) return { verdict: 'inconclusive', detail: { reason: 'the SYN was not sent with AE, CWR and ECE' } };
      const ace = aceOf(flagsOf(outcome.synAck));
      const { verdict, meaning } = ACE_MEANINGS[ace];
      // An AccECN option (kinds 172, 174) in the SYN-ACK: the server also feeds back byte counts.
      const accecnOption = optionNames(outcome.synAck).filter((n) => n === 'kind-172' || n === 'kind-174' || n.startsWith('accecn'));
      return { verdict, detail: { synAckFlags: ecnFlagNames(outcome.synAck), ace: ace.toString(2).padStart(3, '0'), meaning, ...(accecnOption.length ? { accecnOption } : {}) } };
    }
    if (outcome.kind === 'wrong-ack' || outcome.kind === 'not-sent') return sharedServerVerdict(outcome, 'the AccECN SYN')!;
    const control = synOutcome(connection(obs, 'control'));
    const shared = sharedServerVerdict(control, 'an ordinary SYN');
    if (shared) return { ...shared, detail: { ...shared.detail, accecnSyn: describeOutcome(outcome) } };
    return { verdict: 'broken', detail: { reason: 'the AccECN SYN got no SYN-ACK, an ordinary SYN did', accecnSyn: describeOutcome(outcome) } };
  },
};
