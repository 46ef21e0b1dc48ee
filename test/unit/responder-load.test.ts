/**
 * The responder under load, without timing: what a flood may cost is bounded (memory, disk), what
 * the fast path reads of a segment is what decoding reads, and what the monitoring endpoints say.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../shared/store.js';
import { decodePacket, encodePacket } from '../../shared/wire/packet.js';
import { TcpFlag } from '../../shared/wire/tcp.js';
import { Registry } from '../../responder/registry.js';
import { headOf } from '../../responder/segment-head.js';
import { MAX_SEGMENTS_PER_TEST, ResponderService } from '../../responder/service.js';
import { UnattributedLog } from '../../responder/unattributed.js';
import { startControlApi } from '../../responder/control-api.js';
import { createMetrics } from '../../responder/metrics.js';
import { loadFixtures } from '../helpers/fixtures.js';

function syn(src: string, srcPort: number, dstPort = 34343, seq = 1000): Uint8Array {
  return encodePacket({
    ip: { version: 4, tos: 0, id: 1, flags: 2, fragmentOffset: 0, ttl: 64, protocol: 6, src, dst: '198.19.0.2' },
    tcp: { srcPort, dstPort, seq, ack: 0, flags: TcpFlag.SYN, window: 64240 },
    payload: new Uint8Array(0),
  });
}

/** The fields attribution reads, as decoding gives them (registry.ts reads a truncated header the same way). */
function decodedHead(bytes: Uint8Array): { src: string; srcPort: number; dstPort: number; seq: number; flags: number } | undefined {
  const d = decodePacket(bytes);
  if (!d.ip || !d.tcp) return undefined;
  return { src: d.ip.src, srcPort: d.tcp.srcPort, dstPort: d.tcp.dstPort, seq: d.tcp.seq, flags: d.tcp.flags & 0xff };
}

function fakeService(store: Store, unattributed = { keep: 100, sources: 10 }) {
  const source = { listener: undefined as undefined | ((p: { bytes: Uint8Array; atUs: number; truncated: boolean }) => void), onPacket(l: never) { this.listener = l; }, close() {} };
  const sent: Uint8Array[] = [];
  const service = new ResponderService({ ports: [34343, 80], source: source as never, sinks: { 4: { send: async (b: Uint8Array) => void sent.push(b), close() {} } }, store, runId: 'r', unattributed, segmentsPerSecond: 1e9, burst: 1e9 });
  const feed = (bytes: Uint8Array, atUs = 1): void => source.listener!({ bytes, atUs, truncated: false });
  return { service, feed, sent };
}

describe('reading a segment\'s head from its bytes', () => {
  it('gives what decoding gives for every real Linux segment, or leaves the segment to decoding', () => {
    let read = 0;
    for (const f of loadFixtures()) {
      const head = headOf(f.bytes);
      if (head === undefined) continue;
      read++;
      expect(head, f.name).toEqual(decodedHead(f.bytes));
    }
    expect(read).toBeGreaterThan(60);
  });

  it('never disagrees with decoding on damaged bytes (cut short, lengths changed, any byte flipped)', () => {
    const fixtures = loadFixtures();
    fc.assert(fc.property(fc.integer({ min: 0, max: fixtures.length - 1 }), fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 120 }), (i, at, value, cut) => {
      const bytes = fixtures[i].bytes.slice(0, Math.max(0, fixtures[i].bytes.length - cut));
      if (at < bytes.length) bytes[at] = value;
      const head = headOf(bytes);
      if (head !== undefined) expect(head).toEqual(decodedHead(bytes));
    }), { numRuns: 3000 });
  });
});

describe('a flood costs bounded memory and disk', () => {
  let store: Store;
  beforeAll(() => {
    store = Store.open(':memory:');
    store.insertRun({ id: 'r', startedAt: new Date().toISOString(), toolVersion: 'test' });
  });
  afterAll(() => store.close());

  it('keeps the last N unattributed segments and counts the rest per source /24 and port, then "other"', () => {
    const { service, feed, sent } = fakeService(store, { keep: 100, sources: 10 });
    for (let i = 0; i < 5000; i++) feed(syn(`203.0.${i % 20}.${1 + (i % 200)}`, 1024 + i, i % 2 ? 80 : 34343), i);
    expect(sent).toHaveLength(0);
    expect(service.stats.unattributed).toBe(5000);
    expect(service.unattributed.kept).toBe(100);
    expect(service.unattributed.segments().map((s) => s.atUs)).toEqual(Array.from({ length: 100 }, (_, i) => 4900 + i));
    const sources = service.unattributed.sources();
    expect(sources.filter((s) => s.source !== 'other')).toHaveLength(10);
    expect(sources.reduce((n, s) => n + s.segments, 0)).toBe(5000);
    expect(sources.find((s) => s.source === '203.0.0.0/24')).toMatchObject({ port: '34343', segments: 250 });
  });

  it('writes them as one pseudo-test that each flush replaces: the database holds at most N however long it runs', () => {
    const { service, feed } = fakeService(store, { keep: 50, sources: 10 });
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 400; i++) feed(syn('203.0.113.9', 2000 + i), round * 1000 + i);
      service.flushUnattributed();
      const stored = store.tests('r').filter((t) => t.name === 'unattributed');
      expect(stored).toHaveLength(1);
      expect(store.segments(stored[0].id)).toHaveLength(50);
      expect(stored[0].detail).toMatchObject({ segments: 400 * (round + 1), bySource: [{ source: '203.0.113.0/24', port: '34343', segments: 400 * (round + 1) }] });
    }
  });

  it('keeps at most MAX_SEGMENTS_PER_TEST segments of a flooded test, and says so when storing it', () => {
    const { service, feed } = fakeService(store);
    const session = service.openSession('198.18.0.2', '198.18.0.2', undefined);
    service.creditSession(session, 1e9);
    const test = service.registerTest(session, { testId: 't', name: 'flooded', port: 34343, initiatorPort: 40000, initiatorIsn: 7, plan: {} });
    if (test === 'duplicate') throw new Error('duplicate');
    for (let i = 0; i < MAX_SEGMENTS_PER_TEST; i++) feed(syn('198.18.0.2', 40000, 34343, 7));
    expect(test.segments).toHaveLength(MAX_SEGMENTS_PER_TEST);
    expect(service.stats.answered).toBe(MAX_SEGMENTS_PER_TEST);
    expect(service.stats.notKept).toBe(MAX_SEGMENTS_PER_TEST); // each answer not kept either
    service.collect(test);
    service.flushTests();
    const stored = store.tests('r').find((t) => t.name === 'flooded')!;
    expect(stored.detail).toMatchObject({ segmentsKept: MAX_SEGMENTS_PER_TEST });
    expect(store.segments(stored.id)).toHaveLength(MAX_SEGMENTS_PER_TEST);
  });

  it('writes the tests collected in one event-loop turn in one transaction', async () => {
    const { service } = fakeService(store);
    const session = service.openSession('198.18.0.3', '198.18.0.3', undefined);
    const before = store.tests('r').length;
    for (let i = 0; i < 5; i++) {
      const test = service.registerTest(session, { testId: `b${i}`, name: 'batched', port: 80, initiatorPort: 41000 + i, initiatorIsn: i, plan: {} });
      if (test !== 'duplicate') service.collect(test);
    }
    expect(store.tests('r')).toHaveLength(before); // not yet: they wait for the end of this turn
    await new Promise((resolve) => setImmediate(resolve));
    expect(store.tests('r').filter((t) => t.name === 'batched')).toHaveLength(5);
  });

  it('finds a waiting test among many without looking at the others (per-port index), and forgets it once bound', () => {
    const registry = new Registry();
    const session = registry.openSession('198.18.0.2', '198.18.0.2', undefined, 0);
    for (let i = 0; i < 100; i++) registry.register(session, { testId: `p80-${i}`, name: 'x', port: 80, initiatorPort: 20000 + i, initiatorIsn: 1000 * i, plan: {} }, 0);
    registry.register(session, { testId: 'only', name: 'x', port: 443, initiatorPort: 30000, initiatorIsn: 5, plan: {} }, 0);
    const match = registry.attributeHead({ src: '192.0.2.1', srcPort: 1, dstPort: 443, seq: 99, flags: TcpFlag.SYN });
    expect(match).toMatchObject({ rule: 'only-test', test: { testId: 'only' } });
    // Bound: another flow to 443 finds no waiting test.
    expect(registry.attributeHead({ src: '192.0.2.2', srcPort: 1, dstPort: 443, seq: 99, flags: TcpFlag.SYN })).toBeUndefined();
    expect(registry.attributeHead({ src: '198.18.0.2', srcPort: 20042, dstPort: 80, seq: 42000, flags: TcpFlag.SYN })).toMatchObject({ rule: 'isn', test: { testId: 'p80-42' } });
  });
});

describe('monitoring: /metrics and /healthz', () => {
  let store: Store;
  let api: Awaited<ReturnType<typeof startControlApi>>;
  let base: string;
  let problems: string[] = [];
  let fake: ReturnType<typeof fakeService>;
  beforeAll(async () => {
    store = Store.open(':memory:');
    store.insertRun({ id: 'r', startedAt: new Date().toISOString(), toolVersion: 'test' });
    fake = fakeService(store);
    const capture = () => ({ delivered: 12, queueDropped: 3, kernel: { packets: 20, drops: 5 } });
    api = await startControlApi({ port: 0, host: '127.0.0.1', service: fake.service, ports: [34343, 80], collection: store, metrics: createMetrics({ service: fake.service, capture }), health: () => problems });
    base = `http://127.0.0.1:${api.port}`;
  });
  afterAll(async () => {
    await api.close();
    store.close();
  });

  it('exports the packet loop\'s counts, capture drops, sessions and uploads by status in Prometheus text format', async () => {
    for (let i = 0; i < 7; i++) fake.feed(syn('203.0.113.1', 5000 + i));
    await fetch(`${base}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ initiatorAddress: '198.18.0.2', toolVersion: 't' }) });
    await fetch(`${base}/v1/runs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"format":' });
    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    const value = (series: string): number => Number(new RegExp(`^${series.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('mbprobe_responder_segments_total{outcome="received"}')).toBe(7);
    expect(value('mbprobe_responder_segments_total{outcome="unattributed"}')).toBe(7);
    expect(value('mbprobe_responder_segments_total{outcome="answered"}')).toBe(0);
    expect(value('mbprobe_responder_capture_dropped_total{where="kernel"}')).toBe(5);
    expect(value('mbprobe_responder_capture_dropped_total{where="queue"}')).toBe(3);
    expect(value('mbprobe_responder_sessions')).toBe(1);
    expect(value('mbprobe_responder_uploads_total{status="400"}')).toBe(1);
    expect(text).toMatch(/^# TYPE mbprobe_responder_segments_total counter$/m);
    expect(text).toMatch(/^mbprobe_responder_process_resident_memory_bytes \d+/m);
  });

  it('says healthy, or 503 with what is wrong', async () => {
    problems = [];
    expect(await (await fetch(`${base}/healthz`)).json()).toMatchObject({ status: 'ok' });
    problems = ['the capture is closed'];
    const failing = await fetch(`${base}/healthz`);
    expect(failing.status).toBe(503);
    expect(await failing.json()).toEqual({ status: 'failing', problems: ['the capture is closed'] });
  });
});

describe('many volunteers behind one address (a campus NAT): request budgets per session', () => {
  const open = async (base: string): Promise<string> => ((await (await fetch(`${base}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ initiatorAddress: '198.18.0.2', toolVersion: 't' }) })).json()) as { sessionId: string }).sessionId;
  const register = (base: string, session: string, i: number) => fetch(`${base}/v1/sessions/${session}/tests`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ testId: `t${i}`, name: 'syn-mss', port: 80, initiatorPort: 20000 + i, initiatorIsn: i, plan: {} }),
  });
  /** A control API with these limits over a fake service, for the duration of `use`. */
  async function withApi(limits: { requestsPerSecond?: number; sessionsPerAddress?: number }, use: (base: string) => Promise<void>): Promise<void> {
    const store = Store.open(':memory:');
    store.insertRun({ id: 'r', startedAt: new Date().toISOString(), toolVersion: 'test' });
    const api = await startControlApi({ port: 0, host: '127.0.0.1', service: fakeService(store).service, ports: [34343, 80], ...limits });
    try {
      await use(`http://127.0.0.1:${api.port}`);
    } finally {
      await api.close();
      store.close();
    }
  }

  it('gives each session of an address its own budget, refuses beyond it with Retry-After, and spends the address\'s only outside sessions', async () => {
    // 2 requests per second: a burst of 8 per budget
    await withApi({ requestsPerSecond: 2 }, async (base) => {
      const [a, b] = [await open(base), await open(base)];
      const statuses = async (session: string, from: number) => Promise.all(Array.from({ length: 9 }, async (_, i) => (await register(base, session, from + i)).status));
      // a's ninth is refused, with when to come back; b, same address, still has all of its own
      expect((await statuses(a, 0)).filter((s) => s === 201)).toHaveLength(8);
      const refused = await register(base, a, 100);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect((await statuses(b, 200)).filter((s) => s === 201)).toHaveLength(8);
      // the two sessions' opens and a's and b's requests left the address's own budget at 6 of 8
      const hellos = await Promise.all(Array.from({ length: 7 }, async () => (await fetch(`${base}/v1/hello`)).status));
      expect(hellos.filter((s) => s === 200)).toHaveLength(6);
      // an unknown session's requests spend the address's budget (a made-up id buys nothing)
      expect((await register(base, 'no-such-session', 0)).status).toBe(429);
    });
  });

  it('holds at most sessionsPerAddress sessions open from one address', async () => {
    await withApi({ sessionsPerAddress: 2 }, async (base) => {
      const first = await open(base);
      await open(base);
      const third = await fetch(`${base}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ initiatorAddress: '198.18.0.2', toolVersion: 't' }) });
      expect(third.status).toBe(429);
      expect(await third.json()).toMatchObject({ error: expect.stringMatching(/2 sessions are open from this address \(at most 2\)/) });
      expect((await fetch(`${base}/v1/sessions/${first}`, { method: 'DELETE' })).status).toBe(204);
      expect(await open(base)).toMatch(/^[0-9a-f-]{36}$/);
    });
  });
});

describe('UnattributedLog', () => {
  it('keeps nothing whole with keep 0, and still counts', () => {
    const log = new UnattributedLog({ keep: 0, sources: 2 });
    for (let i = 0; i < 10; i++) log.add(syn(`192.0.${i}.1`, 1), i, headOf(syn(`192.0.${i}.1`, 1)));
    expect(log.kept).toBe(0);
    expect(log.sources()).toEqual([
      expect.objectContaining({ source: 'other', segments: 8 }),
      expect.objectContaining({ source: '192.0.0.0/24', segments: 1 }),
      expect.objectContaining({ source: '192.0.1.0/24', segments: 1 }),
    ]);
  });
});
