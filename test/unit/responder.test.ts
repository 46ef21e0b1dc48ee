import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toWireOption } from '../../shared/control.js';
import { Store } from '../../shared/store.js';
import { decodePacket, encodePacket, type Packet } from '../../shared/wire/packet.js';
import { TcpFlag } from '../../shared/wire/tcp.js';
import { mss, nop, rawOption, sackPermitted, timestamps, windowScale } from '../../shared/wire/tcp-options.js';
import { formatPacket } from '../../shared/wire/format.js';
import { replyTo, responderIsn, type EngineConfig } from '../../responder/engine.js';
import { Registry } from '../../responder/registry.js';
import { BEHIND_US, ResponderService } from '../../responder/service.js';
import { startControlApi } from '../../responder/control-api.js';
import { nowUs } from '../../shared/net/capture.js';

const config: EngineConfig = { secret: new Uint8Array(32).fill(7), mss: 1460, windowScale: 7, ttl: 64, nowMs: () => 5000 };

function segment(tcp: Partial<NonNullable<Packet['tcp']>>, payload = new Uint8Array(0), src = '198.18.0.2', sport = 40000): Uint8Array {
  return encodePacket({
    ip: { version: 4, tos: 0, id: 1, flags: 2, fragmentOffset: 0, ttl: 64, protocol: 6, src, dst: '198.19.0.2' },
    tcp: { srcPort: sport, dstPort: 34343, seq: 1000, ack: 0, flags: TcpFlag.SYN, window: 64240, ...tcp },
    payload,
  });
}

describe('stateless responder engine', () => {
  it('answers a Linux-like SYN with a SYN-ACK mirroring its options and carrying the plan\'s extra option', () => {
    const syn = decodePacket(segment({ options: [mss(1460), sackPermitted(), timestamps(77, 0), nop(), windowScale(7)] }));
    const [synAck] = replyTo(syn, { synAckOptions: [toWireOption(rawOption(200, Uint8Array.of(1, 2, 3, 4, 5, 6)))] }, config);
    const line = formatPacket(decodePacket(encodePacket(synAck)));
    expect(line).toBe(`IP 198.19.0.2.34343 > 198.18.0.2.40000: Flags [S.], seq ${responderIsn(config.secret, syn.ip!, syn.tcp!, 1000)}, ack 1001, win 65535, options [mss 1460,sackOK,TS val 5000 ecr 77,nop,wscale 7,unknown-200 0x010203040506], length 0`);
  });

  it('gives a retransmitted SYN the same SYN-ACK (no state, same ISN)', () => {
    const syn = decodePacket(segment({}));
    expect(encodePacket(replyTo(syn, {}, config)[0])).toEqual(encodePacket(replyTo(syn, {}, config)[0]));
  });

  it('acknowledges data unless the plan withholds the ACK, and answers FIN with FIN-ACK', () => {
    const data = decodePacket(segment({ flags: TcpFlag.ACK | TcpFlag.PSH, seq: 1001, ack: 5 }, new Uint8Array(100)));
    expect(replyTo(data, {}, config).map((p) => [p.tcp!.flags, p.tcp!.seq, p.tcp!.ack])).toEqual([[TcpFlag.ACK, 5, 1101]]);
    expect(replyTo(data, { withholdAck: true }, config)).toEqual([]);
    const fin = decodePacket(segment({ flags: TcpFlag.ACK | TcpFlag.FIN, seq: 1101, ack: 5 }));
    expect(replyTo(fin, {}, config).map((p) => [p.tcp!.flags, p.tcp!.ack])).toEqual([[TcpFlag.FIN | TcpFlag.ACK, 1102]]);
  });

  it('ignores RSTs and never answers malformed segments', () => {
    expect(replyTo(decodePacket(segment({ flags: TcpFlag.RST })), {}, config)).toEqual([]);
    expect(replyTo(decodePacket(segment({ checksum: 0x1234 })), {}, config)).toEqual([]);
    expect(replyTo(decodePacket(segment({ options: [rawOption(200, Uint8Array.of(1), 0)] })), {}, config)).toEqual([]);
    expect(replyTo(decodePacket(segment({ dataOffset: 3, options: [] })), {}, config)).toEqual([]);
  });
});

describe('attribution', () => {
  const register = (registry: Registry, session: ReturnType<Registry['openSession']>, testId: string, port: number, isn: number): void => {
    registry.register(session, { testId, name: testId, port: 34343, initiatorPort: port, initiatorIsn: isn, plan: {} }, 0);
  };

  it('binds a flow by ISN when a NAT rewrote address and port, and keeps it bound', () => {
    const registry = new Registry();
    const session = registry.openSession('203.0.113.9', '198.18.0.2', undefined, 0);
    register(registry, session, 'a', 40000, 1000);
    register(registry, session, 'b', 40001, 2000);
    const natted = decodePacket(segment({ seq: 2000 }, undefined, '198.19.0.1', 61000));
    expect(registry.attribute(natted)).toMatchObject({ rule: 'isn', test: { testId: 'b' } });
    expect(registry.attribute(decodePacket(segment({ flags: TcpFlag.ACK, seq: 2001 }, undefined, '198.19.0.1', 61000)))).toMatchObject({ rule: 'flow', test: { testId: 'b' } });
  });

  it('falls back to the only waiting test, and refuses to guess between two', () => {
    const registry = new Registry();
    const session = registry.openSession('198.18.0.2', '198.18.0.2', undefined, 0);
    register(registry, session, 'a', 40000, 1000);
    const proxied = decodePacket(segment({ seq: 99 }, undefined, '198.19.0.1', 50000));
    expect(registry.attribute(proxied)).toMatchObject({ rule: 'only-test' });
    register(registry, session, 'b', 40001, 2000);
    register(registry, session, 'c', 40002, 3000);
    expect(registry.attribute(decodePacket(segment({ seq: 98 }, undefined, '198.19.0.1', 50001)))).toBeUndefined();
  });
});

describe('control API', () => {
  let api: Awaited<ReturnType<typeof startControlApi>>;
  let base: string;
  let store: Store;
  const sent: Uint8Array[] = [];
  let service: ResponderService;
  /** The raw socket's buffer is full: every send fails. */
  let failSends = false;
  const source = {
    listener: undefined as undefined | ((p: { bytes: Uint8Array; atUs: number; truncated: boolean }) => void), onPacket(l: never) { this.listener = l; }, close() {},
    /** How far behind the packet loop is, and what the capture lost, as a live capture reports them. */
    lag: 0, lostSoFar: 0, lagUs() { return this.lag; }, lost() { return this.lostSoFar; },
  };

  beforeAll(async () => {
    store = Store.open(':memory:');
    store.insertRun({ id: 'r', startedAt: new Date().toISOString(), toolVersion: 'test' });
    const sink = { send: async (b: Uint8Array) => { if (failSends) throw new Error('No buffer space available'); sent.push(b); }, close() {} };
    service = new ResponderService({ ports: [34343], source: source as never, sinks: { 4: sink }, store, runId: 'r' });
    api = await startControlApi({ port: 0, host: '127.0.0.1', service, ports: [34343] });
    base = `http://127.0.0.1:${api.port}/v1`;
  });
  afterAll(async () => {
    await api.close();
    store.close();
  });

  const post = (path: string, body: unknown): Promise<Response> => fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });

  it('runs a session: register, receive a SYN, answer it, hand over exactly that test\'s segments', async () => {
    const opened = await (await post('/sessions', { initiatorAddress: '198.18.0.2', toolVersion: 't' })).json() as { sessionId: string; observedAddress: string };
    expect(opened.observedAddress).toBe('127.0.0.1');
    expect((await post(`/sessions/${opened.sessionId}/tests`, { testId: 't1', name: 'syn-baseline', port: 34343, initiatorPort: 40000, initiatorIsn: 1000, plan: {} })).status).toBe(201);
    source.listener!({ bytes: segment({}), atUs: 1, truncated: false });
    source.listener!({ bytes: segment({}, undefined, '198.18.0.77', 1234), atUs: 2, truncated: false }); // someone else's SYN: not ours
    const collected = await (await post(`/sessions/${opened.sessionId}/tests/t1/collect?settleMs=0`, {})).json() as { segments: Array<{ dir: string }>; attribution: string[] };
    expect(collected.segments.map((s) => s.dir)).toEqual(['received', 'sent']);
    expect(collected.attribution).toEqual(['198.18.0.2|40000|34343 by isn']);
    expect(sent).toHaveLength(1);
    expect(store.tests('r').map((t) => t.name)).toEqual(['syn-baseline']);
  });

  it('behind a box that rewrites everything, answers its connections while tests with a token wait, answers data only once it names its test, then by that test\'s plan', async () => {
    const BOX = '198.19.0.1';
    const opened = await (await post('/sessions', { initiatorAddress: '198.18.0.2', toolVersion: 't' })).json() as { sessionId: string };
    const tokenA = 'mbp-aaaaaaaaaaa2';
    const tokenB = 'mbp-bbbbbbbbbbb2';
    expect((await post(`/sessions/${opened.sessionId}/tests`, { testId: 'ta', name: 'seq-rewrite', port: 34343, initiatorPort: 41000, initiatorIsn: 7000, plan: {}, from: BOX, token: tokenA })).status).toBe(201);
    expect((await post(`/sessions/${opened.sessionId}/tests`, { testId: 'tb', name: 'proactive-ack', port: 34343, initiatorPort: 41001, initiatorIsn: 8000, plan: { withholdAck: true }, from: BOX, token: tokenB })).status).toBe(201);
    const bound = post(`/sessions/${opened.sessionId}/tests/tb/bound?waitMs=5000`, {});
    const before = sent.length;
    const ascii = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0));
    const fromBox = (port: number, tcp: Partial<NonNullable<Packet['tcp']>>, payload?: Uint8Array): void =>
      source.listener!({ bytes: segment({ seq: 900, ...tcp }, payload, BOX, port), atUs: nowUs(), truncated: false });
    // The box's connection for b: its SYN answered before anyone knows whose it is.
    fromBox(52000, {});
    expect(sent.length - before).toBe(1);
    expect(decodePacket(sent.at(-1)!).tcp!.flags).toBe(TcpFlag.SYN | TcpFlag.ACK);
    fromBox(52000, { flags: TcpFlag.ACK, seq: 901, ack: 1 });
    // data that names nobody yet is recorded, not answered
    fromBox(52000, { flags: TcpFlag.ACK | TcpFlag.PSH, seq: 901, ack: 1 }, ascii('abcdefghijklmnop'));
    expect(sent.length - before).toBe(1);
    // b's token: the flow is b's, and b's plan withholds the ACK
    fromBox(52000, { flags: TcpFlag.ACK | TcpFlag.PSH, seq: 917, ack: 1 }, ascii(`${tokenB}qrstuvwxyzabcdef`));
    expect(sent.length - before).toBe(1);
    expect(await (await bound).json()).toMatchObject({ bound: true, rule: 'token', from: BOX });
    // a's connection: a's plan acknowledges its data
    fromBox(52001, {});
    fromBox(52001, { flags: TcpFlag.ACK | TcpFlag.PSH, seq: 901, ack: 1 }, ascii(`abcdefghijklmnop${tokenA}`));
    expect(sent.length - before).toBe(3);
    expect(decodePacket(sent.at(-1)!).tcp!.flags).toBe(TcpFlag.ACK);
    const collected = await (await post(`/sessions/${opened.sessionId}/tests/tb/collect?settleMs=0`, {})).json() as { segments: Array<{ dir: string }>; attribution: string[]; tokens?: string[] };
    expect(collected.attribution).toEqual([`${BOX}|52000|34343 by token`]);
    // everything of the flow, from its SYN on, in order
    expect(collected.segments.map((x) => x.dir)).toEqual(['received', 'sent', 'received', 'received', 'received']);
    expect(collected.tokens).toEqual([tokenB]);
    await post(`/sessions/${opened.sessionId}/tests/ta/collect?settleMs=0`, {});
  });

  it('holds its answer about a binding by only-test when asked, and gives the rule that holds after it (the test\'s own SYN displaced a stranger\'s)', async () => {
    const opened = await (await post('/sessions', { initiatorAddress: '198.18.0.2', toolVersion: 't' })).json() as { sessionId: string };
    expect((await post(`/sessions/${opened.sessionId}/tests`, { testId: 'held', name: 'syn-baseline', port: 34343, initiatorPort: 42000, initiatorIsn: 9000, plan: {} })).status).toBe(201);
    const answer = post(`/sessions/${opened.sessionId}/tests/held/bound?waitMs=2000&holdMs=200`, {});
    await new Promise((r) => setTimeout(r, 20));
    // a stranger's SYN first (only-test takes it), then the test's own, with its ISN, untranslated
    source.listener!({ bytes: segment({ seq: 123 }, undefined, '203.0.113.50', 51000), atUs: nowUs(), truncated: false });
    await new Promise((r) => setTimeout(r, 20));
    source.listener!({ bytes: segment({ seq: 9000 }, undefined, '198.18.0.2', 42000), atUs: nowUs(), truncated: false });
    expect(await (await answer).json()).toEqual({ bound: true, rule: 'isn', from: '198.18.0.2', held: true });
    await post(`/sessions/${opened.sessionId}/tests/held/collect?settleMs=0`, {});
  });

  it('behind a flood, records a test\'s segments without answering them, and tells its initiator so, with what the capture lost meanwhile', async () => {
    const opened = await (await post('/sessions', { initiatorAddress: '198.18.0.2', toolVersion: 't' })).json() as { sessionId: string };
    source.lostSoFar = 40;
    expect((await post(`/sessions/${opened.sessionId}/tests`, { testId: 'late', name: 'syn-baseline', port: 34343, initiatorPort: 40100, initiatorIsn: 5000, plan: {} })).status).toBe(201);
    const before = { sent: sent.length, behind: service.stats.behind };
    source.lag = BEHIND_US + 1;
    source.listener!({ bytes: segment({ seq: 5000 }, undefined, '198.18.0.2', 40100), atUs: 1, truncated: false });
    source.lag = BEHIND_US; // caught up: answered again
    source.listener!({ bytes: segment({ seq: 5000 }, undefined, '198.18.0.2', 40100), atUs: 2, truncated: false });
    source.lostSoFar = 43;
    const collected = await (await post(`/sessions/${opened.sessionId}/tests/late/collect?settleMs=0`, {})).json() as { segments: Array<{ dir: string }>; behind?: number; captureLost?: number };
    expect(collected.segments.map((s) => s.dir)).toEqual(['received', 'received', 'sent']);
    expect(sent.length - before.sent).toBe(1);
    expect(service.stats.behind - before.behind).toBe(1);
    expect(collected.behind).toBe(1);
    expect(collected.captureLost).toBe(3);
    // a test the responder kept up with, and whose run lost nothing, is told nothing
    source.lag = 0;
    expect((await post(`/sessions/${opened.sessionId}/tests`, { testId: 'calm', name: 'syn-baseline', port: 34343, initiatorPort: 40101, initiatorIsn: 6000, plan: {} })).status).toBe(201);
    source.listener!({ bytes: segment({ seq: 6000 }, undefined, '198.18.0.2', 40101), atUs: 3, truncated: false });
    const calm = await (await post(`/sessions/${opened.sessionId}/tests/calm/collect?settleMs=0`, {})).json() as Record<string, unknown>;
    expect(calm.behind).toBeUndefined();
    expect(calm.notSent).toBeUndefined();
    expect(calm.captureLost).toBeUndefined();
  });

  it('tells an initiator of answers recorded as sent that never left (the socket\'s buffer full): the missing answer is not the path\'s doing', async () => {
    const opened = await (await post('/sessions', { initiatorAddress: '198.18.0.2', toolVersion: 't' })).json() as { sessionId: string };
    expect((await post(`/sessions/${opened.sessionId}/tests`, { testId: 'unsent', name: 'syn-baseline', port: 34343, initiatorPort: 40200, initiatorIsn: 7000, plan: {} })).status).toBe(201);
    failSends = true;
    try {
      source.listener!({ bytes: segment({ seq: 7000 }, undefined, '198.18.0.2', 40200), atUs: 1, truncated: false });
      await new Promise((r) => setTimeout(r, 0));
    } finally {
      failSends = false;
    }
    const collected = await (await post(`/sessions/${opened.sessionId}/tests/unsent/collect?settleMs=0`, {})).json() as { segments: Array<{ dir: string }>; notSent?: number };
    expect(collected.segments.map((s) => s.dir)).toEqual(['received', 'sent']);
    expect(collected.notSent).toBe(1);
  });

  it.each([
    ['not JSON', '/sessions', '{nope', 400, /not valid JSON/],
    ['missing field', '/sessions', { toolVersion: 't' }, 400, /initiatorAddress/],
    ['unknown session', '/sessions/nope/tests', {}, 404, /unknown session/],
    ['oversized', '/sessions', { initiatorAddress: 'x'.repeat(70_000), toolVersion: 't' }, 413, /exceeds/],
  ])('refuses %s with a reason', async (_what, path, body, status, reason) => {
    const response = await post(path, body);
    expect(response.status).toBe(status);
    expect(((await response.json()) as { error: string }).error).toMatch(reason);
  });

  it('refuses a plan it does not understand, and a port it does not serve', async () => {
    const { sessionId } = await (await post('/sessions', { initiatorAddress: '198.18.0.2', toolVersion: 't' })).json() as { sessionId: string };
    const base = { testId: 'x', name: 'n', port: 34343, initiatorPort: 1, initiatorIsn: 1 };
    expect((await post(`/sessions/${sessionId}/tests`, { ...base, plan: { explode: true } })).status).toBe(400);
    expect((await post(`/sessions/${sessionId}/tests`, { ...base, port: 22, plan: {} })).status).toBe(400);
  });
});
