import { TcpFlag } from '../../shared/wire/tcp.js';
import { defaultSynOptions } from '../probe-scripts.js';
import { first, flagsOf, isSyn, isSynAck, sharedVerdict } from '../judge-helpers.js';
import type { Observed } from '../observed.js';
import type { TestCase } from '../test-case.js';
import { synProbe } from '../probe-segments.js';

/** An ECN-setup SYN carries ECE and CWR (RFC 3168 6.1.1); the ECN-setup SYN-ACK answers with ECE alone. */
const ECN_SETUP = TcpFlag.ECE | TcpFlag.CWR;

const bitNames = (flags: number): string[] => [...(flags & TcpFlag.ECE ? ['ECE'] : []), ...(flags & TcpFlag.CWR ? ['CWR'] : [])];
const ecnBits = (o: Observed): string[] => bitNames(flagsOf(o));
/** ECE/CWR set as sent and gone as received. */
const missingBits = (sent: Observed, received: Observed): string[] => bitNames(flagsOf(sent) & ECN_SETUP & ~flagsOf(received));

export const synEcn: TestCase = {
  name: 'syn-ecn',
  sends: 'an ECN-setup SYN (ECE and CWR set, besides the usual options); the responder answers with ECE in its SYN-ACK',
  verdicts: ['passed', 'cleared'],
  carriesToken: 'before-close',
  probe: synProbe('tcp.flags'),
  async run(connection) {
    const synAck = await connection.connect({ options: defaultSynOptions(), flags: TcpFlag.SYN | ECN_SETUP });
    if (synAck) await connection.close();
  },
  judge(obs) {
    const shared = sharedVerdict(obs, isSyn, isSynAck);
    if (shared) return shared;
    const responder = obs.responder!;
    const syn = { sent: first(obs.initiator.sent, isSyn)!, received: first(responder.received, isSyn)! };
    const synAck = { sent: first(responder.sent, isSynAck)!, received: first(obs.initiator.received, isSynAck)! };
    const sentSetup = (syn.sent.packet.tcp!.flags & ECN_SETUP) === ECN_SETUP;
    const detail = {
      syn: { sent: ecnBits(syn.sent), received: ecnBits(syn.received) },
      synAck: { sent: ecnBits(synAck.sent), received: ecnBits(synAck.received) },
    };
    if (!sentSetup) return { verdict: 'inconclusive', detail: { reason: 'the SYN was not sent with ECE and CWR', ...detail } };
    // Forward: the SYN lost ECE or CWR. Reverse: the responder's ECE did not reach the initiator.
    const cleared = [
      ...missingBits(syn.sent, syn.received).map((b) => `syn.${b}`),
      ...missingBits(synAck.sent, synAck.received).map((b) => `synAck.${b}`),
    ];
    return { verdict: cleared.length ? 'cleared' : 'passed', detail: { ...detail, cleared } };
  },
};
