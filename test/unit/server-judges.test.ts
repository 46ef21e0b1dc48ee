/**
 * The server tests' judges (initiator/catalogue/server/) on crafted observations: every verdict of
 * every test, the shared ones (unreachable, reset, inconclusive) included, and the diff rows between a
 * SYN and its SYN-ACK. The lab produces the same verdicts with real servers (test/integration/scan.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { TcpFlag } from '../../shared/wire/tcp.js';
import { encodePacket } from '../../shared/wire/packet.js';
import { experimental, fastOpen, mptcpCapable, mss, nop, rawOption, sackPermitted, timestamps, windowScale, type TcpOption } from '../../shared/wire/tcp-options.js';
import { observe, type Observed } from '../../initiator/observed.js';
import { SERVER_CATALOGUE } from '../../initiator/catalogue/server/index.js';
import { echoDiffs, serverSegmentsAndDiffs, synAnswerMatches } from '../../initiator/catalogue/server/judging.js';
import type { ConnectionObservations, ServerObservations } from '../../initiator/catalogue/server/server-test.js';

const CLIENT = '203.0.113.1';
const SERVER = '192.0.2.80';
const PORT = 80;
const test = (name: string) => SERVER_CATALOGUE.find((t) => t.name === name)!;

let clockUs = 1_700_000_000_000_000;
interface Seg { flags: number; seq: number; ack?: number; options?: TcpOption[]; payload?: Uint8Array; tos?: number }
function packet(fromClient: boolean, localPort: number, s: Seg): Observed {
  clockUs += 1000;
  const [src, dst] = fromClient ? [CLIENT, SERVER] : [SERVER, CLIENT];
  const [srcPort, dstPort] = fromClient ? [localPort, PORT] : [PORT, localPort];
  const bytes = encodePacket({
    ip: { version: 4, tos: s.tos ?? 0, id: 1, flags: 2, fragmentOffset: 0, ttl: 64, protocol: 6, src, dst },
    tcp: { srcPort, dstPort, seq: s.seq >>> 0, ack: (s.ack ?? 0) >>> 0, flags: s.flags, window: 64240, options: s.options },
    payload: s.payload ?? new Uint8Array(0),
  });
  return observe(bytes, clockUs);
}

const SYN_OPTIONS = (): TcpOption[] => [mss(1460), sackPermitted(), timestamps(1000, 0), nop(), windowScale(7)];
const REQUEST = Uint8Array.from('HEAD / HTTP/1.1\r\nHost: example.org\r\n\r\n', (c) => c.charCodeAt(0));

/**
 * One connection: `isn`, and what happened: the SYN (sent `copies` times), then the server's answer:
 * a SYN-ACK (its flags, options, and whether it acknowledges the SYN's data), a RST, nothing, or a
 * SYN-ACK for another sequence number.
 */
function connection(role: string, o: {
  synFlags?: number; synOptions?: TcpOption[]; payload?: Uint8Array; copies?: number;
  answer: 'syn-ack' | 'rst' | 'none' | 'wrong-ack'; answerFlags?: number; answerOptions?: TcpOption[]; ackData?: boolean;
  after?: (c: ConnectionObservations, serverIsn: number) => void;
}): ConnectionObservations {
  const localPort = 40000 + Math.floor(Math.random() * 20000);
  const isn = 1_000_000 + Math.floor(Math.random() * 1_000_000);
  const c: ConnectionObservations = { role, local: { address: CLIENT, port: localPort }, isn, sent: [], received: [], notes: {} };
  for (let i = 0; i < (o.copies ?? (o.answer === 'none' ? 3 : 1)); i++) {
    c.sent.push(packet(true, localPort, { flags: o.synFlags ?? TcpFlag.SYN, seq: isn, options: o.synOptions ?? SYN_OPTIONS(), payload: o.payload }));
  }
  const serverIsn = 5_000_000;
  const dataAck = (isn + 1 + (o.ackData ? o.payload?.length ?? 0 : 0)) >>> 0;
  if (o.answer === 'syn-ack') {
    c.received.push(packet(false, localPort, { flags: o.answerFlags ?? (TcpFlag.SYN | TcpFlag.ACK), seq: serverIsn, ack: dataAck, options: o.answerOptions ?? [mss(1460), sackPermitted(), timestamps(777, 1000), nop(), windowScale(9)] }));
  } else if (o.answer === 'rst') {
    c.received.push(packet(false, localPort, { flags: TcpFlag.RST | TcpFlag.ACK, seq: 0, ack: (isn + 1 + (o.payload?.length ?? 0)) >>> 0 }));
  } else if (o.answer === 'wrong-ack') {
    c.received.push(packet(false, localPort, { flags: TcpFlag.SYN | TcpFlag.ACK, seq: serverIsn, ack: (isn + 77) >>> 0, options: SYN_OPTIONS() }));
  }
  o.after?.(c, serverIsn);
  return c;
}

const observations = (name: string, ...connections: ConnectionObservations[]): ServerObservations =>
  ({ name, target: { address: SERVER, name: 'example.org', port: PORT }, connections, notes: {} });

const judge = (name: string, ...connections: ConnectionObservations[]) => test(name).judge(observations(name, ...connections));
const plainOk = (role = 'plain') => connection(role, { answer: 'syn-ack' });

describe('shared verdicts and what answers a SYN', () => {
  it('a SYN-ACK answers when it acknowledges the SYN or the SYN and its data; a RST when it acknowledges either or nothing', () => {
    const isn = 100;
    const synAck = (ack: number) => packet(false, 1, { flags: TcpFlag.SYN | TcpFlag.ACK, seq: 9, ack });
    expect(synAnswerMatches(synAck(101), isn, 0)).toBe(true);
    expect(synAnswerMatches(synAck(111), isn, 10)).toBe(true);
    expect(synAnswerMatches(synAck(105), isn, 10)).toBe(false);
    expect(synAnswerMatches(packet(false, 1, { flags: TcpFlag.RST, seq: 0 }), isn, 0)).toBe(true);
    expect(synAnswerMatches(packet(false, 1, { flags: TcpFlag.RST | TcpFlag.ACK, seq: 0, ack: 999 }), isn, 0)).toBe(false);
    expect(synAnswerMatches(packet(false, 1, { flags: TcpFlag.ACK, seq: 9, ack: 101 }), isn, 0)).toBe(false);
  });

  for (const t of SERVER_CATALOGUE) {
    // What every test opens first with an ordinary SYN, or falls back to when its own SYN is not answered.
    const firstRole = { 'server-options': 'probe', 'server-ecn': 'plain', 'server-unknown-option': 'plain' }[t.name];
    const probeRole = { 'server-tfo': 'cookie', 'server-syn-data': 'probe', 'server-mptcp': 'probe', 'server-accecn': 'probe' }[t.name];
    const silent = (role: string) => connection(role, { answer: 'none' });
    const closed = (role: string) => connection(role, { answer: 'rst' });
    const cases: Array<[string, ConnectionObservations[]]> = firstRole
      ? [['unreachable', [silent(firstRole)]], ['reset', [closed(firstRole)]], ['inconclusive', [connection(firstRole, { answer: 'wrong-ack' })]]]
      : [['unreachable', [silent(probeRole!), silent('control')]], ['reset', [closed(probeRole!), closed('control')]], ['inconclusive', [connection(probeRole!, { answer: 'wrong-ack' })]]];
    for (const [verdict, connections] of cases) {
      it(`${t.name}: ${verdict}`, () => {
        const judged = t.judge(observations(t.name, ...connections));
        expect(judged.verdict).toBe(verdict);
      });
    }
    it(`${t.name}: inconclusive when the script sent nothing`, () => {
      expect(t.judge(observations(t.name)).verdict).toBe('inconclusive');
    });
  }
});

describe('server-options', () => {
  it('all: SACK-permitted, timestamps (echoing ours) and window scale answered', () => {
    const j = judge('server-options', connection('probe', { answer: 'syn-ack' }));
    expect(j.verdict).toBe('all');
    expect(j.detail).toMatchObject({ echoed: { mss: 1460, sackPermitted: true, timestamps: { value: 777, echo: 1000, echoesOurs: true }, windowScale: 9 }, missing: [] });
  });
  it('some: timestamps and SACK-permitted missing', () => {
    const j = judge('server-options', connection('probe', { answer: 'syn-ack', answerOptions: [mss(1400), nop(), windowScale(2)] }));
    expect(j).toMatchObject({ verdict: 'some', detail: { missing: ['sackPermitted', 'timestamps'], echoed: { mss: 1400 } } });
  });
  it('none: only the server\'s MSS (it is its own, not an answer)', () => {
    expect(judge('server-options', connection('probe', { answer: 'syn-ack', answerOptions: [mss(1400)] })).verdict).toBe('none');
    expect(judge('server-options', connection('probe', { answer: 'syn-ack', answerOptions: [] })).detail).toMatchObject({ echoed: { mss: null } });
  });
});

describe('server-tfo', () => {
  const cookie = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
  const withCookie = () => connection('cookie', { synOptions: [...SYN_OPTIONS(), fastOpen()], answer: 'syn-ack', answerOptions: [mss(1460), fastOpen(cookie)] });
  const data = (answer: 'syn-ack' | 'none' | 'rst', ackData = false) => connection('data', { synOptions: [...SYN_OPTIONS(), fastOpen(cookie)], payload: REQUEST, answer, ackData });
  it('data-accepted: the SYN-ACK acknowledges the data', () => {
    expect(judge('server-tfo', withCookie(), data('syn-ack', true))).toMatchObject({ verdict: 'data-accepted', detail: { cookie: '0102030405060708', dataBytes: REQUEST.length } });
  });
  it('cookie-only: the SYN-ACK acknowledges the SYN alone', () => {
    expect(judge('server-tfo', withCookie(), data('syn-ack', false)).verdict).toBe('cookie-only');
  });
  it('not-supported: no cookie; or the cookie request unanswered while an ordinary SYN is', () => {
    expect(judge('server-tfo', connection('cookie', { answer: 'syn-ack' })).verdict).toBe('not-supported');
    // A malformed cookie (3 bytes) is no cookie.
    expect(judge('server-tfo', connection('cookie', { answer: 'syn-ack', answerOptions: [fastOpen(Uint8Array.of(1, 2, 3))] })).verdict).toBe('not-supported');
    expect(judge('server-tfo', connection('cookie', { answer: 'none' }), plainOk('control'))).toMatchObject({ verdict: 'not-supported', detail: { cookieRequest: { answer: 'none' } } });
  });
  it('syn-data-broken: the cookied SYN with data gets no SYN-ACK (or a RST), an ordinary SYN does', () => {
    expect(judge('server-tfo', withCookie(), data('none'), plainOk('control')).verdict).toBe('syn-data-broken');
    expect(judge('server-tfo', withCookie(), data('rst'), plainOk('control')).verdict).toBe('syn-data-broken');
    // ... and when nothing answers at all any more: unreachable.
    expect(judge('server-tfo', withCookie(), data('none'), connection('control', { answer: 'none' })).verdict).toBe('unreachable');
  });
});

describe('server-mptcp', () => {
  const mptcpSyn = () => [...SYN_OPTIONS(), mptcpCapable({ version: 1, flags: 1 })];
  it('supported: MP_CAPABLE in the SYN-ACK', () => {
    expect(judge('server-mptcp', connection('probe', { synOptions: mptcpSyn(), answer: 'syn-ack', answerOptions: [mss(1460), mptcpCapable({ version: 1, flags: 1, senderKey: 42n })] })))
      .toMatchObject({ verdict: 'supported', detail: { version: 1, serverKey: true } });
  });
  it('not-supported: no MP_CAPABLE; or the MPTCP SYN unanswered while an ordinary one is', () => {
    expect(judge('server-mptcp', connection('probe', { synOptions: mptcpSyn(), answer: 'syn-ack' })).verdict).toBe('not-supported');
    expect(judge('server-mptcp', connection('probe', { synOptions: mptcpSyn(), answer: 'none' }), plainOk('control')).verdict).toBe('not-supported');
  });
});

describe('server-ecn', () => {
  const ecnSyn = TcpFlag.SYN | TcpFlag.ECE | TcpFlag.CWR;
  /** The ECN connection, negotiated, then its data: ECT(0) copies, unmarked copies, and which of them the server acknowledged. */
  const negotiated = (o: { marked: number; unmarked: number; ackOf?: 'marked' | 'unmarked' | 'none' }) => connection('ecn', {
    synFlags: ecnSyn, answer: 'syn-ack', answerFlags: TcpFlag.SYN | TcpFlag.ACK | TcpFlag.ECE,
    after: (c, serverIsn) => {
      const data = (tos: number) => packet(true, c.local.port, { flags: TcpFlag.ACK | TcpFlag.PSH, seq: c.isn + 1, ack: serverIsn + 1, payload: REQUEST, tos });
      const ack = () => packet(false, c.local.port, { flags: TcpFlag.ACK, seq: serverIsn + 1, ack: c.isn + 1 + REQUEST.length });
      for (let i = 0; i < o.marked; i++) c.sent.push(data(2));
      if (o.ackOf === 'marked') c.received.push(ack());
      for (let i = 0; i < o.unmarked; i++) c.sent.push(data(0));
      if (o.ackOf === 'unmarked') c.received.push(ack());
    },
  });
  it('negotiated: ECE alone in the SYN-ACK, and the ECT(0) request acknowledged', () => {
    expect(judge('server-ecn', plainOk(), negotiated({ marked: 1, unmarked: 0, ackOf: 'marked' }))).toMatchObject({ verdict: 'negotiated', detail: { ectDataSent: 1, synAckFlags: ['ECE'] } });
  });
  it('not-negotiated: no ECE; or ECE and CWR reflected', () => {
    expect(judge('server-ecn', plainOk(), connection('ecn', { synFlags: ecnSyn, answer: 'syn-ack' })).verdict).toBe('not-negotiated');
    expect(judge('server-ecn', plainOk(), connection('ecn', { synFlags: ecnSyn, answer: 'syn-ack', answerFlags: TcpFlag.SYN | TcpFlag.ACK | TcpFlag.ECE | TcpFlag.CWR })))
      .toMatchObject({ verdict: 'not-negotiated', detail: { reflected: true } });
  });
  it('ecn-broken: the ECN-setup SYN unanswered (or reset), the plain one answered; or the marked request lost and the unmarked one acknowledged', () => {
    expect(judge('server-ecn', plainOk(), connection('ecn', { synFlags: ecnSyn, answer: 'none' }))).toMatchObject({ verdict: 'ecn-broken', detail: { stage: 'syn' } });
    expect(judge('server-ecn', plainOk(), connection('ecn', { synFlags: ecnSyn, answer: 'rst' }))).toMatchObject({ verdict: 'ecn-broken', detail: { stage: 'syn' } });
    expect(judge('server-ecn', plainOk(), negotiated({ marked: 3, unmarked: 1, ackOf: 'unmarked' }))).toMatchObject({ verdict: 'ecn-broken', detail: { stage: 'data' } });
  });
  it('inconclusive: negotiated, but nothing of the request acknowledged, marked or not; or no request sent', () => {
    expect(judge('server-ecn', plainOk(), negotiated({ marked: 3, unmarked: 3, ackOf: 'none' })).verdict).toBe('inconclusive');
    expect(judge('server-ecn', plainOk(), negotiated({ marked: 0, unmarked: 0 })).verdict).toBe('inconclusive');
  });
});

describe('server-accecn', () => {
  const accecnSyn = TcpFlag.SYN | TcpFlag.AE | TcpFlag.CWR | TcpFlag.ECE;
  const answered = (flags: number) => judge('server-accecn', connection('probe', { synFlags: accecnSyn, answer: 'syn-ack', answerFlags: TcpFlag.SYN | TcpFlag.ACK | flags }));
  it('negotiated: any AccECN code (the SYN arrived Not-ECT, ECT(1), ECT(0), CE)', () => {
    expect(answered(TcpFlag.CWR)).toMatchObject({ verdict: 'negotiated', detail: { ace: '010' } });
    expect(answered(TcpFlag.CWR | TcpFlag.ECE).verdict).toBe('negotiated');
    expect(answered(TcpFlag.AE).verdict).toBe('negotiated');
    expect(answered(TcpFlag.AE | TcpFlag.CWR).verdict).toBe('negotiated');
  });
  it('classic-ecn: ECE alone (or AE and ECE, an ECN-nonce server)', () => {
    expect(answered(TcpFlag.ECE).verdict).toBe('classic-ecn');
    expect(answered(TcpFlag.AE | TcpFlag.ECE).verdict).toBe('classic-ecn');
  });
  it('not-negotiated: none of the three', () => {
    expect(answered(0).verdict).toBe('not-negotiated');
  });
  it('broken: all three reflected; or the AccECN SYN unanswered while an ordinary one is', () => {
    expect(answered(TcpFlag.AE | TcpFlag.CWR | TcpFlag.ECE).verdict).toBe('broken');
    expect(judge('server-accecn', connection('probe', { synFlags: accecnSyn, answer: 'none' }), plainOk('control')).verdict).toBe('broken');
  });
  it('inconclusive when the SYN did not ask for AccECN', () => {
    expect(answered(TcpFlag.CWR).verdict).toBe('negotiated');
    expect(judge('server-accecn', connection('probe', { answer: 'syn-ack' })).verdict).toBe('inconclusive');
  });
});

describe('server-unknown-option', () => {
  const k200 = (answer: 'syn-ack' | 'none' | 'rst', answerOptions?: TcpOption[]) => connection('kind-200', { synOptions: [...SYN_OPTIONS(), rawOption(200, Uint8Array.of(1, 2, 3, 4, 5, 6))], answer, answerOptions });
  const k253 = (answer: 'syn-ack' | 'none' | 'rst') => connection('kind-253', { synOptions: [...SYN_OPTIONS(), experimental(0x6d62, Uint8Array.of(1, 2, 3, 4), 253)], answer });
  it('works: both option SYNs answered (an echoed unknown option is noted)', () => {
    expect(judge('server-unknown-option', plainOk(), k200('syn-ack'), k253('syn-ack')).verdict).toBe('works');
    expect(judge('server-unknown-option', plainOk(), k200('syn-ack', [mss(1460), rawOption(200, Uint8Array.of(1, 2, 3, 4, 5, 6))]), k253('syn-ack')).detail)
      .toMatchObject({ options: { 'kind-200': { echoed: true } } });
  });
  it('broken: one of them unanswered or reset while the ordinary SYN is answered', () => {
    expect(judge('server-unknown-option', plainOk(), k200('none'), k253('syn-ack'))).toMatchObject({ verdict: 'broken', detail: { failed: ['kind-200'] } });
    expect(judge('server-unknown-option', plainOk(), k200('syn-ack'), k253('rst'))).toMatchObject({ verdict: 'broken', detail: { failed: ['kind-253'] } });
  });
});

describe('server-syn-data', () => {
  const probe = (answer: 'syn-ack' | 'none' | 'rst', ackData = false) => connection('probe', { payload: REQUEST, answer, ackData });
  it('ignored, acked, broken', () => {
    expect(judge('server-syn-data', probe('syn-ack')).verdict).toBe('ignored');
    expect(judge('server-syn-data', probe('syn-ack', true)).verdict).toBe('acked');
    expect(judge('server-syn-data', probe('none'), plainOk('control')).verdict).toBe('broken');
    expect(judge('server-syn-data', probe('rst'), plainOk('control')).verdict).toBe('broken');
  });
});

describe('diff rows: a SYN and the options its SYN-ACK answered with', () => {
  it('one row per option not echoed, answered differently or added; timestamps only when our value is not echoed; the ECN flags', () => {
    const syn = packet(true, 1, { flags: TcpFlag.SYN | TcpFlag.ECE | TcpFlag.CWR, seq: 1, options: [...SYN_OPTIONS(), fastOpen()] });
    const synAck = packet(false, 1, { flags: TcpFlag.SYN | TcpFlag.ACK | TcpFlag.ECE, seq: 9, ack: 2, options: [mss(1400), timestamps(5, 1000), nop(), windowScale(7), mptcpCapable({ version: 1, flags: 1, senderKey: 1n })] });
    expect(echoDiffs(syn, synAck, 0, 1).map((d) => [d.layer, d.field, d.change, d.class])).toEqual([
      ['option', 'mss', 'answered-differently', 'expected'],
      ['option', 'sack-permitted', 'not-echoed', 'expected'],
      ['option', 'tfo', 'not-echoed', 'expected'],
      ['option', 'mptcp', 'added', 'expected'],
      ['tcp', 'ecnFlags', 'answered-differently', 'expected'],
    ]);
    const wrongEcho = packet(false, 1, { flags: TcpFlag.SYN | TcpFlag.ACK, seq: 9, ack: 2, options: [timestamps(5, 999)] });
    expect(echoDiffs(syn, wrongEcho, 0, 1).find((d) => d.field === 'timestamps')?.change).toBe('echo-differs');
  });
  it('the store rows: every segment of every connection, diffs pointing into them', () => {
    const rows = serverSegmentsAndDiffs(observations('server-ecn', plainOk(), connection('ecn', { answer: 'syn-ack', answerOptions: [mss(1400)] })));
    expect(rows.segments.map((s) => [s.side, s.dir])).toEqual([['initiator', 'sent'], ['initiator', 'received'], ['initiator', 'sent'], ['initiator', 'received']]);
    expect(new Set(rows.diffs.map((d) => `${d.sentSegment}>${d.receivedSegment}`))).toEqual(new Set(['0>1', '2>3']));
  });
});
