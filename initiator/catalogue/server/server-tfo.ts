import { fastOpen } from '../../../shared/wire/tcp-options.js';
import { toHex } from '../../../shared/wire/bytes.js';
import { hasData } from '../../observed.js';
import { defaultSynOptions } from '../../probe-scripts.js';
import { connection, describeOutcome, optionNames, sharedServerVerdict, synOutcome, tfoCookieOf } from './judging.js';
import type { ServerTest } from './server-test.js';

/**
 * TCP Fast Open (RFC 7413) as a client uses it: a SYN asking for a cookie, then, on a new connection,
 * a SYN carrying the cookie and the request. The second SYN-ACK says whether the server took the data
 * (its ACK covers it) or only the SYN.
 */
export const serverTfo: ServerTest = {
  name: 'server-tfo',
  sends: 'a SYN with a TFO cookie request; when a cookie comes, a SYN with that cookie and the request as data (an ordinary SYN as well when a SYN gets no SYN-ACK)',
  verdicts: ['data-accepted', 'cookie-only', 'not-supported', 'syn-data-broken'],
  absenceVerdicts: ['not-supported', 'syn-data-broken'],
  connections: [
    'SYN (usual options + TFO cookie request), then RST',
    'if a cookie came: SYN (usual options + the cookie) with the request as data; FIN after the answer when the data was acknowledged, else RST',
    'only if a SYN got no SYN-ACK: ordinary SYN, then RST',
  ],
  async run(context) {
    const cookieRequest = context.open('cookie');
    await cookieRequest.syn({ options: [...defaultSynOptions(), fastOpen()] });
    await cookieRequest.reset();
    const cookie = cookieRequest.synAcked ? tfoCookieOf(cookieRequest.answer!) : undefined;
    if (cookieRequest.synAcked && !cookie) return;
    if (cookie) {
      const data = context.open('data');
      const request = context.request();
      await data.syn({ options: [...defaultSynOptions(), fastOpen(cookie)], payload: request });
      if (data.synAcked) {
        const tcp = data.answer!.packet.tcp!;
        // The data was acknowledged: a TFO connection with a request under way, ended as a client would.
        if (tcp.ack === ((data.probe.isn + 1 + request.length) >>> 0)) await data.finish();
        else await data.reset();
        return;
      }
    }
    const control = context.open('control');
    await control.syn({ options: defaultSynOptions() });
    await control.reset();
  },
  judge(obs) {
    const request = synOutcome(connection(obs, 'cookie'));
    if (request.kind === 'wrong-ack' || request.kind === 'not-sent') return sharedServerVerdict(request, 'the cookie request')!;
    if (request.kind !== 'syn-ack') {
      const control = synOutcome(connection(obs, 'control'));
      const shared = sharedServerVerdict(control, 'an ordinary SYN');
      if (shared) return { ...shared, detail: { ...shared.detail, cookieRequest: describeOutcome(request) } };
      return { verdict: 'not-supported', detail: { reason: 'the SYN asking for a cookie got no SYN-ACK, an ordinary one did', cookieRequest: describeOutcome(request) } };
    }
    const cookie = tfoCookieOf(request.synAck);
    if (!cookie) return { verdict: 'not-supported', detail: { reason: 'the SYN-ACK carries no TFO cookie', synAckOptions: optionNames(request.synAck) } };
    const cookieDetail = { cookie: toHex(cookie), cookieLength: cookie.length };
    const data = connection(obs, 'data');
    const withData = synOutcome(data);
    if (withData.kind === 'not-sent' || withData.kind === 'wrong-ack') {
      const judged = sharedServerVerdict(withData, 'the SYN with cookie and data')!;
      return { ...judged, detail: { ...judged.detail, ...cookieDetail } };
    }
    if (withData.kind === 'syn-ack') {
      const dataLength = withData.syn.packet.payload.length;
      const received = data!.received.filter(hasData).reduce((n, o) => n + o.packet.payload.length, 0);
      const sameCookie = tfoCookieOf(withData.synAck);
      const detail = { ...cookieDetail, dataBytes: dataLength, responseBytes: received, ...(sameCookie ? { newCookie: toHex(sameCookie) } : {}) };
      return withData.dataAcked ? { verdict: 'data-accepted', detail } : { verdict: 'cookie-only', detail };
    }
    // The cookied SYN with data got no SYN-ACK: broken, if an ordinary SYN still gets one.
    const control = synOutcome(connection(obs, 'control'));
    const shared = sharedServerVerdict(control, 'an ordinary SYN');
    if (shared) return { ...shared, detail: { ...shared.detail, ...cookieDetail, synWithData: describeOutcome(withData) } };
    return { verdict: 'syn-data-broken', detail: { reason: 'the SYN with the cookie and data got no SYN-ACK, an ordinary SYN did', ...cookieDetail, synWithData: describeOutcome(withData) } };
  },
};
