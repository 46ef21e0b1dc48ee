import { mptcpCapable, OptionKind, viewOption } from '../../../shared/wire/tcp-options.js';
import { defaultSynOptions } from '../../probe-scripts.js';
import { connection, describeOutcome, optionNames, optionOf, sharedServerVerdict, synOutcome } from './judging.js';
import type { ServerTest } from './server-test.js';

/** MP_CAPABLE as a Linux client sends it (RFC 8684 version 1: no key in the SYN; H = HMAC-SHA256, no checksum). */
const mpCapableSyn = () => mptcpCapable({ version: 1, flags: 0x01 });

export const serverMptcp: ServerTest = {
  name: 'server-mptcp',
  sends: 'a SYN with MP_CAPABLE (MPTCP v1) besides the usual options; an ordinary SYN as well when that one gets no SYN-ACK',
  verdicts: ['supported', 'not-supported'],
  absenceVerdicts: ['not-supported'],
  connections: ['SYN (usual options + MP_CAPABLE v1), then RST', 'only if no SYN-ACK came: ordinary SYN, then RST'],
  async run(context) {
    const probe = context.open('probe');
    await probe.syn({ options: [...defaultSynOptions(), mpCapableSyn()] });
    await probe.reset();
    if (probe.synAcked) return;
    const control = context.open('control');
    await control.syn({ options: defaultSynOptions() });
    await control.reset();
  },
  judge(obs) {
    const outcome = synOutcome(connection(obs, 'probe'));
    if (outcome.kind === 'syn-ack') {
      const option = optionOf(outcome.synAck, OptionKind.MPTCP);
      const view = option && viewOption(option);
      const capable = view?.type === 'mptcp' && view.subtype === 0 ? view.mpCapable : undefined;
      if (capable) return { verdict: 'supported', detail: { version: capable.version, flags: capable.flags, serverKey: capable.senderKey !== undefined, synAckOptions: optionNames(outcome.synAck) } };
      return { verdict: 'not-supported', detail: { synAckOptions: optionNames(outcome.synAck), ...(view?.type === 'mptcp' ? { mptcpSubtype: view.subtypeName } : {}) } };
    }
    if (outcome.kind === 'wrong-ack' || outcome.kind === 'not-sent') return sharedServerVerdict(outcome, 'the MP_CAPABLE SYN')!;
    // No SYN-ACK to the MPTCP SYN: what an ordinary SYN got says whether it was MPTCP or the server.
    const control = synOutcome(connection(obs, 'control'));
    const shared = sharedServerVerdict(control, 'an ordinary SYN');
    if (shared) return { ...shared, detail: { ...shared.detail, probe: describeOutcome(outcome) } };
    return { verdict: 'not-supported', detail: { reason: 'the SYN with MP_CAPABLE got no SYN-ACK, an ordinary one did', probe: describeOutcome(outcome) } };
  },
};
