import { describe, expect, it } from 'vitest';
import { Registry } from '../../responder/registry.js';
import { decodePacket, encodePacket } from '../../shared/wire/packet.js';
import { TcpFlag } from '../../shared/wire/tcp.js';

/** A segment to port 34343 from `src`:`sport` with sequence number `seq`. */
const seg = (src: string, sport: number, seq: number, flags = TcpFlag.SYN) => decodePacket(encodePacket({
  ip: { version: 4, tos: 0, id: 1, flags: 2, fragmentOffset: 0, ttl: 64, protocol: 6, src, dst: '198.19.0.2' },
  tcp: { srcPort: sport, dstPort: 34343, seq, ack: flags & TcpFlag.ACK ? 1 : 0, flags, window: 64240 },
  payload: new Uint8Array(0),
}));

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
