import { hasData } from '../../observed.js';
import { defaultSynOptions } from '../../probe-scripts.js';
import { connection, describeOutcome, sharedServerVerdict, synOutcome } from './judging.js';
import type { ServerTest } from './server-test.js';

/**
 * Data in a SYN without a TFO cookie (RFC 793 allows it; servers must not hand it to the application
 * before the handshake completes, RFC 7413 2.1): ignored (the SYN-ACK acknowledges the SYN alone, the
 * data must be sent again), acked (a server that takes data without a cookie), or broken (the SYN gets
 * no SYN-ACK, while an ordinary one does).
 */
export const serverSynData: ServerTest = {
  name: 'server-syn-data',
  sends: 'a SYN carrying the request as data, without a TFO cookie (an ordinary SYN as well when it gets no SYN-ACK)',
  verdicts: ['ignored', 'acked', 'broken'],
  absenceVerdicts: ['broken'],
  connections: ['SYN (usual options) with the request as data; FIN after the answer when the data was acknowledged, else RST', 'only if no SYN-ACK came: ordinary SYN, then RST'],
  async run(context) {
    const probe = context.open('probe');
    const request = context.request();
    await probe.syn({ options: defaultSynOptions(), payload: request });
    if (probe.synAcked) {
      if (probe.answer!.packet.tcp!.ack === ((probe.probe.isn + 1 + request.length) >>> 0)) await probe.finish();
      else await probe.reset();
      return;
    }
    const control = context.open('control');
    await control.syn({ options: defaultSynOptions() });
    await control.reset();
  },
  judge(obs) {
    const probe = connection(obs, 'probe');
    const outcome = synOutcome(probe);
    if (outcome.kind === 'syn-ack') {
      const detail = { dataBytes: outcome.syn.packet.payload.length, responseBytes: probe!.received.filter(hasData).reduce((n, o) => n + o.packet.payload.length, 0) };
      return { verdict: outcome.dataAcked ? 'acked' : 'ignored', detail };
    }
    if (outcome.kind === 'wrong-ack' || outcome.kind === 'not-sent') return sharedServerVerdict(outcome, 'the SYN with data')!;
    const control = synOutcome(connection(obs, 'control'));
    const shared = sharedServerVerdict(control, 'an ordinary SYN');
    if (shared) return { ...shared, detail: { ...shared.detail, synWithData: describeOutcome(outcome) } };
    return { verdict: 'broken', detail: { reason: 'the SYN with data got no SYN-ACK, an ordinary SYN did', synWithData: describeOutcome(outcome) } };
  },
};
