import { describe, expect, it, vi } from 'vitest';
import { Registry, STRANGER_WINDOW_MS } from '../../responder/registry.js';
import { decodePacket, encodePacket } from '../../shared/wire/packet.js';
import { TcpFlag } from '../../shared/wire/tcp.js';

/** The bytes of a segment to port 34343 from `src`:`sport` with sequence number `seq`. */
const bytesOf = (src: string, sport: number, seq: number, flags = TcpFlag.SYN) => encodePacket({
  ip: { version: 4, tos: 0, id: 1, flags: 2, fragmentOffset: 0, ttl: 64, protocol: 6, src, dst: '198.19.0.2' },
  tcp: { srcPort: sport, dstPort: 34343, seq, ack: flags & TcpFlag.ACK ? 1 : 0, flags, window: 64240 },
  payload: new Uint8Array(0),
});
/** The same segment decoded. */
const seg = (src: string, sport: number, seq: number, flags = TcpFlag.SYN) => decodePacket(bytesOf(src, sport, seq, flags));

function registryWith(...tests: Array<{ id: string; port: number; isn: number }>) {
  const registry = new Registry();
  const session = registry.openSession('198.18.0.2', '198.18.0.2', 'lab', 0);
  const active = tests.map((t) => registry.register(session, { testId: t.id, name: t.id, port: 34343, initiatorPort: t.port, initiatorIsn: t.isn, plan: {} }, 0));
  return { registry, active: active as Exclude<(typeof active)[number], 'duplicate'>[] };
}

describe('attribution while tests share a port (responder/registry.ts)', () => {
  it('never gives a second flow of a bound test (a segment that slipped past a NAT or proxy) to another test', () => {
    const { registry } = registryWith({ id: 'a', port: 40000, isn: 1000 }, { id: 'b', port: 40001, isn: 5000 });
    // a's flow, through a proxy: attributed by ISN? no, the proxy rewrote it; by port? no; b also waits: nothing yet.
    expect(registry.attribute(seg('198.18.0.2', 40000, 1000))).toMatchObject({ rule: 'isn', test: { testId: 'a' } });
    // the same test's segment with its own port and ISN on another flow (its source address was not translated)
    expect(registry.attribute(seg('10.0.0.9', 40000, 1001, TcpFlag.ACK))).toBeUndefined();
    // and it is not counted as a segment nobody could take
    expect(registry.unattributedSince(registry.test(registry.allSessions()[0].id, 'b')!)).toBe(0);
  });

  it('lets the test\'s own SYN (its ISN) displace a stranger\'s flow that only-test gave it first, and drops what was recorded of the stranger', () => {
    const { registry, active: [a] } = registryWith({ id: 'a', port: 40000, isn: 1000 });
    // a scanner's SYN reaches the public responder just before the test's own
    expect(registry.attribute(seg('203.0.113.7', 51644, 424242))).toMatchObject({ rule: 'only-test', test: { testId: 'a' } });
    // what the responder recorded of it: the SYN, and its SYN-ACK to the scanner
    a.segments.push({ dir: 'received', atUs: 1, bytes: bytesOf('203.0.113.7', 51644, 424242) });
    const synAck = encodePacket({
      ip: { version: 4, tos: 0, id: 1, flags: 2, fragmentOffset: 0, ttl: 64, protocol: 6, src: '198.19.0.2', dst: '203.0.113.7' },
      tcp: { srcPort: 34343, dstPort: 51644, seq: 9, ack: 424243, flags: TcpFlag.SYN | TcpFlag.ACK, window: 65535 },
      payload: new Uint8Array(0),
    });
    a.segments.push({ dir: 'sent', atUs: 2, bytes: synAck });
    // the test's SYN, resent with its ISN (its first went unanswered as the stranger's flow's stray)
    expect(registry.attribute(seg('198.18.0.2', 40000, 1000))).toMatchObject({ rule: 'isn', test: { testId: 'a' } });
    expect(a.attribution).toEqual(['198.18.0.2|40000|34343 by isn']);
    expect(a.displaced).toEqual(['203.0.113.7|51644|34343']);
    expect(a.segments).toEqual([]);
    // the stranger's flow is nobody's now; the test's flow is the test's
    expect(registry.attribute(seg('203.0.113.7', 51644, 424243, TcpFlag.ACK))).toBeUndefined();
    expect(registry.attribute(seg('198.18.0.2', 40000, 1001, TcpFlag.ACK))).toMatchObject({ rule: 'flow', test: { testId: 'a' } });
    expect(a.strangerSyns).toBe(0);
  });

  it('gives a waiting test none of a scanner\'s junk: a mid-flow segment whose seq falls near the test\'s ISN, or whose port is the test\'s, is nobody\'s; the test\'s own SYN is then answered (the CI flood\'s false dropped)', () => {
    const { registry, active: [a] } = registryWith({ id: 'a', port: 40000, isn: 0x082127dd });
    // a stranger's ACK, seq 400 KB past the test's ISN (1 in 4,096 of a flood's random seqs), from another port
    expect(registry.attribute(seg('203.0.113.3', 42301, 0x08276137, TcpFlag.ACK | TcpFlag.PSH))).toBeUndefined();
    // a stranger's RST from the test's own port, seq unrelated
    expect(registry.attribute(seg('203.0.113.4', 40000, 77, TcpFlag.RST))).toBeUndefined();
    expect(a.flows.size).toBe(0);
    expect(registry.attribute(seg('198.18.0.2', 40000, 0x082127dd))).toMatchObject({ rule: 'isn', test: { testId: 'a' } });
    expect(a.attribution).toEqual(['198.18.0.2|40000|34343 by isn']);
  });

  it('lets the test\'s own SYN displace a stranger\'s SYN that came from the test\'s port (bound by port), and a stray mid-flow segment (its port and ISN) bound first', () => {
    const { registry, active: [a, b] } = registryWith({ id: 'a', port: 40000, isn: 1000 }, { id: 'b', port: 40001, isn: 5000 });
    expect(registry.attribute(seg('203.0.113.7', 40000, 424242))).toMatchObject({ rule: 'port', test: { testId: 'a' } });
    expect(registry.attribute(seg('198.18.0.2', 40000, 1000))).toMatchObject({ rule: 'isn', test: { testId: 'a' } });
    expect(a.displaced).toEqual(['203.0.113.7|40000|34343']);
    expect(a.attribution).toEqual(['198.18.0.2|40000|34343 by isn']);
    // b's mid-flow segment with its port and ISN, untranslated, before its SYN through a NAT: b's until that SYN
    expect(registry.attribute(seg('198.18.0.2', 40001, 5001, TcpFlag.ACK))).toMatchObject({ rule: 'isn', test: { testId: 'b' } });
    expect(registry.attribute(seg('198.51.100.1', 61000, 5000))).toMatchObject({ rule: 'isn', test: { testId: 'b' } });
    expect(b.displaced).toEqual(['198.18.0.2|40001|34343']);
  });

  it('counts, for a test only-test bound, the SYNs from other addresses nobody took afterwards (one may have been its own), not its proxy\'s', () => {
    const { registry, active: [a] } = registryWith({ id: 'a', port: 40000, isn: 1000 });
    expect(registry.attribute(seg('198.19.0.1', 50000, 77))).toMatchObject({ rule: 'only-test', test: { testId: 'a' } });
    // the proxy's second connection: same address, not a stranger
    expect(registry.attribute(seg('198.19.0.1', 50001, 78))).toBeUndefined();
    expect(a.strangerSyns).toBe(0);
    // a SYN from elsewhere nobody took: this test's own may have been it, and the flow bound a stranger's
    expect(registry.attribute(seg('203.0.113.9', 50002, 79))).toBeUndefined();
    expect(a.strangerSyns).toBe(1);
    // past the window, a stranger's SYN is not the test's own connection arriving late
    const now = Date.now();
    const clock = vi.spyOn(Date, 'now').mockReturnValue(now + STRANGER_WINDOW_MS + 1);
    try {
      expect(registry.attribute(seg('203.0.113.10', 50003, 80))).toBeUndefined();
      expect(a.strangerSyns).toBe(1);
    } finally {
      clock.mockRestore();
    }
    // a test bound by its ISN counts nothing
    const { registry: other, active: [b] } = registryWith({ id: 'b', port: 40000, isn: 1000 });
    expect(other.attribute(seg('198.18.0.2', 40000, 1000))).toMatchObject({ rule: 'isn' });
    expect(other.attribute(seg('203.0.113.9', 50002, 79))).toBeUndefined();
    expect(b.strangerSyns).toBe(0);
  });

  it('tells, of the SYNs nobody took on a test\'s port, those from its own session\'s address (the only ones that could be its own on a path keeping ISN or port)', () => {
    const { registry, active: [a, b] } = registryWith({ id: 'a', port: 40000, isn: 1000 }, { id: 'b', port: 40001, isn: 5000 });
    expect(registry.attribute(seg('198.18.0.2', 40000, 1000))).toMatchObject({ rule: 'isn', test: { testId: 'a' } });
    expect(registry.attribute(seg('198.18.0.2', 40001, 5000))).toMatchObject({ rule: 'isn', test: { testId: 'b' } });
    expect(registry.attribute(seg('203.0.113.9', 50002, 79))).toBeUndefined(); // a scanner
    expect(registry.attribute(seg('198.18.0.2', 40007, 31337))).toBeUndefined(); // from our address, naming no test
    for (const test of [a, b]) {
      expect(registry.unattributedSince(test)).toBe(2);
      expect(registry.unattributedFromSessionSince(test)).toBe(1);
    }
    // once the session is gone, its address's counts go with it
    const session = registry.allSessions()[0];
    registry.closeSession(session);
    const again = registry.openSession('198.18.0.2', '198.18.0.2', 'lab', 0);
    const c = registry.register(again, { testId: 'c', name: 'c', port: 34343, initiatorPort: 40002, initiatorIsn: 9000, plan: {} }, 0) as Exclude<ReturnType<Registry['register']>, 'duplicate'>;
    expect(registry.attribute(seg('198.18.0.2', 40008, 31338, TcpFlag.SYN))).toMatchObject({ rule: 'address', test: { testId: 'c' } });
    expect(registry.unattributedFromSessionSince(c)).toBe(0);
  });

  it('gives a test that names the box\'s address (from) only a SYN from there by only-test, never a stranger\'s', () => {
    const registry = new Registry();
    const session = registry.openSession('198.18.0.2', '198.18.0.2', 'lab', 0);
    const a = registry.register(session, { testId: 'a', name: 'a', port: 34343, initiatorPort: 40000, initiatorIsn: 1000, plan: {}, from: '198.19.0.1' }, 0) as Exclude<ReturnType<Registry['register']>, 'duplicate'>;
    expect(registry.attribute(seg('203.0.113.9', 50002, 79))).toBeUndefined();
    expect(a.flows.size).toBe(0);
    expect(registry.attribute(seg('198.19.0.1', 50003, 80))).toMatchObject({ rule: 'only-test', test: { testId: 'a' } });
    expect(registry.boundFrom(a)).toBe('198.19.0.1');
    // of the SYNs nobody took, only the box's could have been the test's: the stranger's is not counted
    expect(registry.attribute(seg('198.19.0.1', 50004, 81))).toBeUndefined();
    expect(registry.unattributedSince(a)).toBe(2);
    expect(registry.unattributedFromSessionSince(a)).toBe(1);
  });

  it('keeps a collected test\'s flows known for a while: its late segments are not the next test\'s', () => {
    const { registry, active } = registryWith({ id: 'a', port: 40000, isn: 1000 });
    expect(registry.attribute(seg('198.19.0.1', 50000, 77))).toMatchObject({ rule: 'only-test', test: { testId: 'a' } });
    registry.finish(active[0]);
    const session = registry.allSessions()[0];
    registry.register(session, { testId: 'b', name: 'b', port: 34343, initiatorPort: 40001, initiatorIsn: 9000, plan: {} }, 0);
    expect(registry.attribute(seg('198.19.0.1', 50000, 78, TcpFlag.ACK | TcpFlag.FIN))).toBeUndefined();
    expect(registry.attribute(seg('198.19.0.1', 50001, 500))).toMatchObject({ rule: 'only-test', test: { testId: 'b' } });
  });

  it('gives a recently collected flow to a new connection that names its test by ISN (a second run reusing the port), and to nothing else', () => {
    const { registry, active } = registryWith({ id: 'a', port: 40000, isn: 1000 });
    expect(registry.attribute(seg('198.18.0.2', 40000, 1000))).toMatchObject({ rule: 'isn', test: { testId: 'a' } });
    registry.finish(active[0]);
    const session = registry.allSessions()[0];
    registry.register(session, { testId: 'b', name: 'b', port: 34343, initiatorPort: 40000, initiatorIsn: 9000, plan: {} }, 0);
    // the old flow's late segments, and a SYN naming no waiting test, stay nobody's
    expect(registry.attribute(seg('198.18.0.2', 40000, 1001, TcpFlag.ACK | TcpFlag.FIN))).toBeUndefined();
    expect(registry.attribute(seg('198.18.0.2', 40000, 1000))).toBeUndefined();
    // b's SYN on the same flow, with b's ISN, is b's, and the flow stays b's
    expect(registry.attribute(seg('198.18.0.2', 40000, 9000))).toMatchObject({ rule: 'isn', test: { testId: 'b' } });
    expect(registry.attribute(seg('198.18.0.2', 40000, 9001, TcpFlag.ACK))).toMatchObject({ rule: 'flow', test: { testId: 'b' } });
  });

  it('gives a waiting test a new connection only: a mid-flow segment of a flow nobody knows (an old proxy connection closing late) is nobody\'s', () => {
    const { registry, active: [a] } = registryWith({ id: 'a', port: 40000, isn: 1000 });
    expect(registry.attribute(seg('198.19.0.1', 50000, 77, TcpFlag.ACK | TcpFlag.FIN))).toBeUndefined();
    expect(registry.unattributedSince(a)).toBe(0);
    expect(registry.attribute(seg('198.19.0.1', 50001, 78))).toMatchObject({ rule: 'only-test', test: { testId: 'a' } });
  });

  it('counts the segments nobody could take while a test was registered', () => {
    const { registry, active } = registryWith({ id: 'a', port: 40000, isn: 1000 }, { id: 'b', port: 40001, isn: 5000 });
    // two tests wait and neither ISN nor port matches: ambiguous, unattributed
    expect(registry.attribute(seg('198.19.0.1', 50000, 77))).toBeUndefined();
    expect(registry.unattributedSince(active[0])).toBe(1);
  });

  it('tells tests of different volunteers apart by ISN though they chose the same local port, and by port though they chose the same ISN; neither when both match twice', () => {
    const registry = new Registry();
    const one = registry.openSession('198.18.0.10', '198.18.0.10', 'one', 0);
    const two = registry.openSession('198.18.0.11', '198.18.0.11', 'two', 0);
    const reg = (session: typeof one, testId: string, initiatorPort: number, initiatorIsn: number) => registry.register(session, { testId, name: testId, port: 34343, initiatorPort, initiatorIsn, plan: {} }, 0);
    reg(one, 'a', 40000, 1000);
    reg(two, 'b', 40000, 2000);
    reg(one, 'c', 41000, 3000);
    reg(two, 'd', 41001, 3000);
    // same initiator port, different ISNs: the ISN names each
    expect(registry.attribute(seg('198.19.0.1', 50000, 2000))).toMatchObject({ rule: 'isn', test: { testId: 'b' } });
    expect(registry.attribute(seg('198.19.0.1', 50001, 1000))).toMatchObject({ rule: 'isn', test: { testId: 'a' } });
    // same ISN, different ports (a path that rewrote the ISN but kept the port): the port names each
    expect(registry.attribute(seg('198.19.0.1', 41001, 999))).toMatchObject({ rule: 'port', test: { testId: 'd' } });
    expect(registry.attribute(seg('198.19.0.1', 41000, 999))).toMatchObject({ rule: 'port', test: { testId: 'c' } });
    // both gone: a SYN with that ISN or from that port is nobody's now
    expect(registry.attribute(seg('198.19.0.2', 41000, 3000))).toBeUndefined();
    reg(one, 'e', 42000, 4000);
    reg(two, 'f', 42000, 4000);
    // two waiting tests with the same ISN and the same port: neither rule names one (both volunteers' SYNs look alike)
    expect(registry.attribute(seg('198.19.0.1', 42000, 4000))).toBeUndefined();
  });

  it('finds a held-back test by its ISN once it is released, and no longer once it is collected', () => {
    const { registry } = registryWith({ id: 'a', port: 40000, isn: 1000 });
    const session = registry.allSessions()[0];
    registry.register(session, { testId: 'b', name: 'b', port: 34343, initiatorPort: 40001, initiatorIsn: 5000, plan: {}, after: 'a' }, 0);
    // b is held back: a SYN with its ISN is a's, the only one waiting (by its session's address)
    expect(registry.attribute(seg('198.18.0.2', 40001, 5000))).toMatchObject({ rule: 'address', test: { testId: 'a' } });
    // a is bound, b released: now b's ISN names b
    expect(registry.attribute(seg('198.18.0.2', 40002, 5000))).toMatchObject({ rule: 'isn', test: { testId: 'b' } });
    registry.finish(registry.test(session.id, 'b')!);
    registry.register(session, { testId: 'c', name: 'c', port: 34343, initiatorPort: 40003, initiatorIsn: 6000, plan: {} }, 0);
    registry.register(session, { testId: 'd', name: 'd', port: 34343, initiatorPort: 40004, initiatorIsn: 7000, plan: {} }, 0);
    // b's ISN on a new flow is nobody's (b collected; c and d both wait), c's names c
    expect(registry.attribute(seg('198.18.0.2', 40005, 5000))).toBeUndefined();
    expect(registry.attribute(seg('198.18.0.2', 40006, 6000))).toMatchObject({ rule: 'isn', test: { testId: 'c' } });
  });

  it('holds a test registered behind one still waiting for its flow back until that one is bound', () => {
    const { registry, active: [a] } = registryWith({ id: 'a', port: 40000, isn: 1000 });
    const session = registry.allSessions()[0];
    registry.register(session, { testId: 'b', name: 'b', port: 34343, initiatorPort: 40001, initiatorIsn: 5000, plan: {}, after: 'a' }, 0);
    // a proxy's connection (nothing of ours in it): only a can take it, though b is registered
    expect(registry.attribute(seg('198.19.0.1', 50000, 77))).toMatchObject({ rule: 'only-test', test: { testId: 'a' } });
    // now b is the one waiting
    expect(registry.attribute(seg('198.19.0.1', 50001, 78))).toMatchObject({ rule: 'only-test', test: { testId: 'b' } });
    void a;
  });

  it('behind a box the test named, records a segment of the test that went past the box, but holds the chain until the box\'s connection comes', async () => {
    const registry = new Registry();
    const session = registry.openSession('198.18.0.2', '198.18.0.2', 'lab', 0);
    const box = '198.19.0.1';
    const a = registry.register(session, { testId: 'a', name: 'a', port: 34343, initiatorPort: 40000, initiatorIsn: 1000, plan: {}, from: box }, 0) as Exclude<ReturnType<Registry['register']>, 'duplicate'>;
    registry.register(session, { testId: 'b', name: 'b', port: 34343, initiatorPort: 40001, initiatorIsn: 5000, plan: {}, after: 'a', from: box }, 0);
    let bound: string | undefined;
    void registry.whenBound(a, 5000).then((r) => (bound = r));
    // a's probe, out of the proxy's window, let through untranslated: a's (by its ISN), recorded
    expect(registry.attribute(seg('198.18.0.2', 40000, 1001, TcpFlag.ACK))).toMatchObject({ rule: 'isn', test: { testId: 'a' } });
    await Promise.resolve();
    expect(bound).toBeUndefined();
    expect(registry.boundFrom(a)).toBeUndefined();
    // the proxy's connection for a is still a's, not b's
    expect(registry.attribute(seg(box, 50000, 77))).toMatchObject({ rule: 'only-test', test: { testId: 'a' } });
    await Promise.resolve();
    expect(bound).toBe('only-test');
    expect(a.attribution).toEqual(['198.18.0.2|40000|34343 by isn', `${box}|50000|34343 by only-test`]);
    // and only now is b the one waiting
    expect(registry.attribute(seg(box, 50001, 78))).toMatchObject({ rule: 'only-test', test: { testId: 'b' } });
  });

  it('never lets a SYN with the test\'s ISN displace the box\'s connection of a test that named the box (it went past the box)', () => {
    const registry = new Registry();
    const session = registry.openSession('198.18.0.2', '198.18.0.2', 'lab', 0);
    const box = '198.19.0.1';
    const a = registry.register(session, { testId: 'a', name: 'a', port: 34343, initiatorPort: 40000, initiatorIsn: 1000, plan: {}, from: box }, 0) as Exclude<ReturnType<Registry['register']>, 'duplicate'>;
    expect(registry.attribute(seg(box, 50000, 77))).toMatchObject({ rule: 'only-test', test: { testId: 'a' } });
    // the test's own SYN, untranslated: a stray of the test, not a reason to drop the box's connection
    expect(registry.attribute(seg('198.18.0.2', 40000, 1000))).toBeUndefined();
    expect(a.displaced).toEqual([]);
    expect(a.bound).toEqual({ flow: `${box}|50000|34343`, rule: 'only-test' });
  });

  it('releases a held-back test when the one before it is collected without ever binding', () => {
    const { registry, active: [a] } = registryWith({ id: 'a', port: 40000, isn: 1000 });
    const session = registry.allSessions()[0];
    registry.register(session, { testId: 'b', name: 'b', port: 34343, initiatorPort: 40001, initiatorIsn: 5000, plan: {}, after: 'a' }, 0);
    registry.finish(a);
    expect(registry.attribute(seg('198.19.0.1', 50001, 78))).toMatchObject({ rule: 'only-test', test: { testId: 'b' } });
  });

  it('tells a waiting caller when a test binds its first flow, and by which rule', async () => {
    const { registry, active } = registryWith({ id: 'a', port: 40000, isn: 1000 });
    const bound = registry.whenBound(active[0], 5000);
    registry.attribute(seg('198.19.0.1', 50000, 77));
    await expect(bound).resolves.toBe('only-test');
    await expect(registry.whenBound(active[0], 0)).resolves.toBe('only-test');
    const { registry: r2, active: [lonely] } = registryWith({ id: 'x', port: 40000, isn: 1000 });
    await expect(r2.whenBound(lonely, 10)).resolves.toBeUndefined();
  });
});

describe('connections named by a token behind a box that rewrites everything (responder/registry.ts rule 6)', () => {
  const BOX = '198.19.0.1';
  const tokenA = 'mbp-aaaaaaaaaaaa';
  const tokenB = 'mbp-bbbbbbbbbbbb';
  const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
  function tokenTests() {
    const registry = new Registry();
    const session = registry.openSession('198.18.0.2', '198.18.0.2', 'lab', 0);
    const reg = (id: string, token: string | undefined, isn: number) =>
      registry.register(session, { testId: id, name: id, port: 34343, initiatorPort: 40000 + isn, initiatorIsn: isn, plan: {}, from: BOX, ...(token ? { token } : {}) }, 0) as Exclude<ReturnType<Registry['register']>, 'duplicate'>;
    return { registry, session, reg };
  }

  it('answers the box\'s SYNs as pending flows while tests with a token wait, and gives each, with what was recorded of it, to the test its data names', async () => {
    const { registry, reg } = tokenTests();
    const a = reg('a', tokenA, 1);
    const b = reg('b', tokenB, 2);
    const bound = registry.whenBound(b, 1000);
    // Two of the box's connections: neither test's yet, both answered (a stand-in per flow).
    const first = registry.attribute(seg(BOX, 50000, 77));
    const second = registry.attribute(seg(BOX, 50001, 78));
    expect(first).toMatchObject({ rule: 'pending', test: { name: 'pending', plan: {} } });
    expect(second?.test).not.toBe(first?.test);
    const stand = second!.test;
    stand.segments.push({ dir: 'received', atUs: 5, bytes: bytesOf(BOX, 50001, 78) });
    // Its next segments are the stand-in's too (by flow), until its data names b.
    expect(registry.attribute(seg(BOX, 50001, 79, TcpFlag.ACK))).toMatchObject({ rule: 'flow', test: stand });
    expect(registry.claim(stand, ascii('abcdefghijklmnop'))).toBeUndefined();
    // the token split across two segments, as a box may relay it
    expect(registry.claim(stand, ascii(tokenB.slice(0, 7)))).toBeUndefined();
    expect(registry.claim(stand, ascii(`${tokenB.slice(7)}qrstuvwxyz`))).toBe(b);
    expect(b.attribution).toEqual([`${BOX}|50001|34343 by token`]);
    expect(b.segments).toHaveLength(1);
    expect(b.tokensSeen).toEqual(new Set([tokenB]));
    expect(await bound).toBe('token');
    expect(registry.boundFrom(b)).toBe(BOX);
    expect(registry.attribute(seg(BOX, 50001, 80, TcpFlag.ACK))).toMatchObject({ rule: 'flow', test: b });
    // a is still waiting: its connection is the other one
    expect(a.bound).toBeUndefined();
    expect(registry.claim(first!.test, ascii(`xxxxxxxxxxxxxxxx${tokenA}`))).toBe(a);
  });

  it('never gives a test with a token a flow by only-test or address, nor a stranger\'s SYN a pending flow', () => {
    const { registry, reg } = tokenTests();
    reg('a', tokenA, 1);
    // the only test waiting, but it has a token: the box's SYN is pending, not a's
    expect(registry.attribute(seg(BOX, 50000, 77))).toMatchObject({ rule: 'pending' });
    // a stranger's SYN is nobody's (never answered)
    expect(registry.attribute(seg('203.0.113.9', 50002, 79))).toBeUndefined();
    // and from the session's own address (a box that connects from the volunteer's public address) it is not taken by address either
    expect(registry.attribute(seg('198.18.0.2', 50003, 80))).toBeUndefined();
  });

  it('gives a pending flow only to a test of its port that named the box it came from; a token nobody registered leaves it pending', () => {
    const { registry, reg } = tokenTests();
    reg('a', tokenA, 1);
    const stand = registry.attribute(seg(BOX, 50000, 77))!.test;
    expect(registry.claim(stand, ascii(`................${tokenB}`))).toBeUndefined();
    expect(stand.pending).toBeDefined();
  });

  it('forgets a pending flow no token claimed in 30 s: its late segments are nobody\'s', () => {
    vi.useFakeTimers();
    try {
      vi.setSystemTime(1_000_000);
      const { registry, reg } = tokenTests();
      reg('a', tokenA, 1);
      const old = registry.attribute(seg(BOX, 50000, 77))!.test;
      vi.setSystemTime(1_000_000 + 31_000);
      registry.attribute(seg(BOX, 50001, 78));
      expect(registry.attribute(seg(BOX, 50000, 78, TcpFlag.ACK))).toBeUndefined();
      expect(registry.claim(old, ascii(`................${tokenA}`))).toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses a second registration of a token (a replay names nobody else\'s test)', () => {
    const { reg } = tokenTests();
    reg('a', tokenA, 1);
    expect(reg('b', tokenA, 2)).toBe('duplicate');
  });

  it('notes the tokens the first data segments of a test carry: another run\'s says the flow was another test\'s', () => {
    const { registry } = registryWith({ id: 'a', port: 40000, isn: 1000 });
    const a = registry.test(registry.allSessions()[0].id, 'a')!;
    registry.noteData(a, ascii(`GET /${tokenB} HTTP/1.1\r\n`));
    for (let i = 0; i < 20; i++) registry.noteData(a, ascii('abcdefghijklmnopqrstuvwxyz'));
    // only the first few data segments are read: a flood costs nothing
    registry.noteData(a, ascii(tokenA));
    expect([...a.tokensSeen]).toEqual([tokenB]);
  });
});
