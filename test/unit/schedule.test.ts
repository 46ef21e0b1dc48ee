import { describe, expect, it } from 'vitest';
import { boxAddressOf, modeFromAttribution, PathRtt, PortGate, type Ticket } from '../../initiator/schedule.js';
import { startOrder } from '../../initiator/runner.js';
import type { TestCase } from '../../initiator/test-case.js';

/** Enters the gate and reports when the ticket was granted (granted stays false while it waits). */
function enter(gate: PortGate, want: 'shared' | 'exclusive' = 'shared', again = false, tokenable = false): { granted: () => Ticket | undefined } {
  let ticket: Ticket | undefined;
  void gate.enter(want, again, tokenable).then((t) => (ticket = t));
  return { granted: () => ticket };
}
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

/** A port whose first test showed an opaque path (and, with `from`, the box's address) and is done. */
async function opaqueGate(from?: string, tokens = true): Promise<PortGate> {
  const gate = new PortGate({ tokens });
  const first = enter(gate);
  await tick();
  if (from) gate.from = from;
  gate.learn('opaque');
  first.granted()!.done();
  return gate;
}

/** Two tests enter a port whose path is not known yet: the first runs alone, the second waits. */
async function firstAlone(gate: PortGate): Promise<{ first: ReturnType<typeof enter>; second: ReturnType<typeof enter> }> {
  const first = enter(gate);
  const second = enter(gate);
  await tick();
  expect(first.granted()?.exclusive).toBe(true);
  expect(second.granted()).toBeUndefined();
  return { first, second };
}

describe('when a test may start on a port (initiator/schedule.ts)', () => {
  it('reads the path from the first test\'s attribution', () => {
    expect(modeFromAttribution(['198.18.0.2|40000|80 by isn'])).toBe('identifiable');
    expect(modeFromAttribution(['198.19.0.1|41000|80 by port', '198.19.0.1|41000|80 by flow'])).toBe('identifiable');
    expect(modeFromAttribution(['198.19.0.1|41000|80 by only-test'])).toBe('opaque');
    expect(modeFromAttribution(['198.19.0.1|41000|80 by address'])).toBe('opaque');
    expect(modeFromAttribution([])).toBe('opaque');
  });

  it('reads the box\'s address from a first test bound by only-test alone, and from nothing else', () => {
    expect(boxAddressOf(['198.19.0.1|41000|80 by only-test'])).toBe('198.19.0.1');
    expect(boxAddressOf(['2001:db8::1|41000|80 by only-test'])).toBe('2001:db8::1');
    expect(boxAddressOf(['198.18.0.2|41000|80 by isn'])).toBeUndefined();
    expect(boxAddressOf(['198.19.0.1|41000|80 by only-test', '198.19.0.1|41001|80 by flow'])).toBeUndefined();
    expect(boxAddressOf([])).toBeUndefined();
  });

  it('runs the first test on a port alone, then lets tests overlap freely on an identifiable path', async () => {
    const gate = new PortGate();
    const { first, second } = await firstAlone(gate);
    gate.learn('identifiable');
    first.granted()!.done();
    const third = enter(gate);
    await tick();
    expect(second.granted()?.exclusive).toBe(false);
    expect(third.granted()).toBeDefined();
  });

  it('lets the others start beside the first test as soon as its flow is bound and the path is known, the first no longer alone', async () => {
    const gate = new PortGate();
    const { first, second } = await firstAlone(gate);
    gate.learn('identifiable');
    await tick();
    expect(second.granted()?.exclusive).toBe(false);
    expect(first.granted()?.exclusive).toBe(false);
    // a later answer does not change what the first one said
    gate.learn('opaque');
    expect(gate.mode).toBe('identifiable');
    // an exclusive run still waits for both to end
    const alone = enter(gate, 'exclusive');
    await tick();
    expect(alone.granted()).toBeUndefined();
    first.granted()!.done();
    second.granted()!.done();
    await tick();
    expect(alone.granted()?.exclusive).toBe(true);
  });

  it('on an opaque path chains the tests: each registers behind the one before, sends its bare SYN once that one is answered, the rest once it is bound', async () => {
    const gate = await opaqueGate();
    const a = enter(gate);
    const b = enter(gate);
    const c = enter(gate);
    const d = enter(gate);
    await tick();
    expect(a.granted()?.predecessor).toBeUndefined();
    expect(b.granted()?.predecessor).toBe(a.granted());
    expect(c.granted()?.predecessor).toBe(b.granted());
    // OPAQUE_CHAIN_AHEAD tests under way and unbound: the next one waits
    expect(d.granted()).toBeUndefined();
    // b registers only after a has, naming a
    let bRegisteredBehind: string | undefined;
    void b.granted()!.predecessor!.whenRegistered().then((id) => (bRegisteredBehind = id));
    let bSyn = false;
    let bRest = false;
    void b.granted()!.predecessor!.whenAnswered().then(() => (bSyn = true));
    void b.granted()!.predecessor!.whenBound().then(() => (bRest = true));
    await tick();
    expect(bRegisteredBehind).toBeUndefined();
    a.granted()!.registered('test-a');
    await tick();
    expect(bRegisteredBehind).toBe('test-a');
    expect(bSyn).toBe(false);
    // a's SYN answered (by the proxy): b's SYN may go, nothing else of b's yet
    a.granted()!.answered();
    await tick();
    expect(bSyn).toBe(true);
    expect(bRest).toBe(false);
    expect(d.granted()).toBeUndefined();
    a.granted()!.bound();
    await tick();
    expect(bRest).toBe(true);
    expect(d.granted()?.predecessor).toBe(c.granted());
    // A test that never binds (its proxy never connects) holds the rest of the next one until it is done.
    let cRest = false;
    void c.granted()!.predecessor!.whenBound().then(() => (cRest = true));
    const e = enter(gate);
    await tick();
    expect(e.granted()).toBeUndefined();
    b.granted()!.answered();
    await tick();
    expect(cRest).toBe(false);
    b.granted()!.done();
    await tick();
    expect(cRest).toBe(true);
    expect(e.granted()?.predecessor).toBe(d.granted());
  });

  it('behind a box whose address is known, lets the tests with a token go all at once, but only while no chained test waits for its flow, and the chain only once they are all bound', async () => {
    const gate = await opaqueGate('198.19.0.1');
    const t1 = enter(gate, 'shared', false, true);
    const t2 = enter(gate, 'shared', false, true);
    const t3 = enter(gate, 'shared', false, true);
    const t4 = enter(gate, 'shared', false, true);
    const c1 = enter(gate);
    const t5 = enter(gate, 'shared', false, true);
    await tick();
    // more than OPAQUE_CHAIN_AHEAD at once, none chained behind another
    for (const t of [t1, t2, t3, t4]) {
      expect(t.granted()?.token).toBe(true);
      expect(t.granted()?.predecessor).toBeUndefined();
    }
    // the chain waits for every one of them to be bound (at SYN time their connections look alike), and holds back who came after it
    expect(c1.granted()).toBeUndefined();
    expect(t5.granted()).toBeUndefined();
    for (const t of [t1, t2, t3]) t.granted()!.bound();
    await tick();
    expect(c1.granted()).toBeUndefined();
    t4.granted()!.done();
    await tick();
    expect(c1.granted()?.token).toBe(false);
    expect(c1.granted()?.predecessor).toBeUndefined();
    // and tests with a token wait while a chained test is unbound
    expect(t5.granted()).toBeUndefined();
    c1.granted()!.bound();
    await tick();
    expect(t5.granted()?.token).toBe(true);
  });

  it('without the box\'s address no test takes the token lane', async () => {
    const gate = await opaqueGate();
    const a = enter(gate, 'shared', false, true);
    const b = enter(gate, 'shared', false, true);
    await tick();
    expect(a.granted()?.token).toBe(false);
    expect(b.granted()?.predecessor).toBe(a.granted());
  });

  it('with a responder that takes no tokens (an older one: its hello lists no "token") no test takes the token lane, box known or not', async () => {
    const gate = await opaqueGate('198.19.0.1', false);
    const a = enter(gate, 'shared', false, true);
    const b = enter(gate, 'shared', false, true);
    await tick();
    expect(a.granted()?.token).toBe(false);
    expect(b.granted()?.predecessor).toBe(a.granted());
    expect(startOrder([{ name: 't', carriesToken: 'in-stream' } as unknown as TestCase, { name: 'l', long: true } as unknown as TestCase], gate).map((t) => t.name)).toEqual(['l', 't']);
  });

  it('withdraws a speculative run that has not started (its ticket is undefined), and lets whoever waited behind it go', async () => {
    const gate = await opaqueGate();
    const a = enter(gate);
    const b = enter(gate);
    const c = enter(gate);
    await tick();
    const early = gate.enterSpeculative('shared', false);
    const d = enter(gate);
    let ticket: Ticket | undefined | 'waiting' = 'waiting';
    void early.ticket.then((t) => (ticket = t));
    await tick();
    expect(ticket).toBe('waiting');
    early.withdraw();
    await tick();
    expect(ticket).toBeUndefined();
    a.granted()!.bound();
    await tick();
    expect(d.granted()?.predecessor).toBe(c.granted());
    expect(b.granted()).toBeDefined();
  });

  it('gives an exclusive run the port to itself, and holds back whoever came after it', async () => {
    const gate = new PortGate();
    gate.learn('identifiable');
    const a = enter(gate);
    await tick();
    const alone = enter(gate, 'exclusive');
    const later = enter(gate);
    await tick();
    expect(alone.granted()).toBeUndefined();
    expect(later.granted()).toBeUndefined();
    a.granted()!.done();
    await tick();
    expect(alone.granted()?.exclusive).toBe(true);
    expect(later.granted()).toBeUndefined();
    alone.granted()!.done();
    await tick();
    expect(later.granted()).toBeDefined();
  });

  it('on an opaque path a test\'s run again goes before the tests waiting to start, after the runs again before it', async () => {
    const gate = new PortGate();
    gate.learn('opaque');
    const a = enter(gate);
    const b = enter(gate);
    const c = enter(gate);
    const waitingFirst = enter(gate);
    const waitingSecond = enter(gate);
    await tick();
    expect(waitingFirst.granted()).toBeUndefined();
    const againOfA = enter(gate, 'shared', true);
    const againOfB = enter(gate, 'shared', true);
    await tick();
    a.granted()!.done();
    await tick();
    // the chain moves on by one: a's run again, behind c
    expect(againOfA.granted()?.predecessor).toBe(c.granted());
    expect(againOfB.granted()).toBeUndefined();
    expect(waitingFirst.granted()).toBeUndefined();
    b.granted()!.done();
    await tick();
    expect(againOfB.granted()?.predecessor).toBe(againOfA.granted());
    expect(waitingFirst.granted()).toBeUndefined();
    c.granted()!.done();
    await tick();
    expect(waitingFirst.granted()?.predecessor).toBe(againOfB.granted());
    expect(waitingSecond.granted()).toBeUndefined();
  });

  it('a ticket released twice counts once', async () => {
    const gate = new PortGate();
    gate.learn('opaque');
    const a = enter(gate);
    await tick();
    a.granted()!.done();
    a.granted()!.done();
    const b = enter(gate);
    const c = enter(gate);
    const d = enter(gate);
    const e = enter(gate);
    await tick();
    expect(b.granted()).toBeDefined();
    expect(c.granted()).toBeDefined();
    expect(d.granted()).toBeDefined();
    expect(e.granted()).toBeUndefined();
  });

  it('waits three round trips (200 ms at least, the user\'s ceiling at most) once a handshake measured one', () => {
    const rtt = new PathRtt();
    expect(rtt.initialWaitMs(1000)).toBe(1000);
    rtt.add(20);
    expect(rtt.initialWaitMs(1000)).toBe(200);
    rtt.add(100);
    rtt.add(60);
    expect(rtt.initialWaitMs(1000)).toBe(300);
    rtt.add(500);
    expect(rtt.initialWaitMs(1000)).toBe(1000);
    rtt.add(undefined);
    rtt.add(Number.NaN);
    expect(rtt.ms).toBe(500);
  });
});

describe('the order tests start in on a port (initiator/runner.ts startOrder)', () => {
  const test = (name: string, extra: Partial<TestCase> = {}): TestCase => ({ name, sends: '', verdicts: ['ok'], run: async () => undefined, judge: () => ({ verdict: 'ok', detail: {} }), ...extra });
  const tests = [
    test('syn', { carriesToken: 'before-close' }),
    test('sack', { long: true }),
    test('hole', { long: true, secondRunBehindRelay: true }),
    test('data', { carriesToken: 'in-stream' }),
    test('synack', { carriesToken: 'before-close', plan: { synAckOptions: [] } }),
    test('watch', { long: true, carriesToken: 'in-stream' }),
  ];
  it('starts the long tests first; behind a box whose address is known, the chain\'s with two runs at once, those with a token, then the chain', () => {
    const gate = new PortGate();
    expect(startOrder(tests, gate).map((t) => t.name)).toEqual(['sack', 'hole', 'watch', 'syn', 'data', 'synack']);
    gate.learn('opaque');
    expect(startOrder(tests, gate).map((t) => t.name)).toEqual(['sack', 'hole', 'watch', 'syn', 'data', 'synack']);
    gate.from = '198.19.0.1';
    // a plan that shapes the SYN-ACK keeps a test in the chain whatever it carries
    expect(startOrder(tests, gate).map((t) => t.name)).toEqual(['hole', 'watch', 'syn', 'data', 'sack', 'synack']);
  });
});
