import { randomUUID } from 'node:crypto';
import type { RegisterTestRequest, ResponderPlan } from '../shared/control.js';
import { decodePacket, type DecodedPacket } from '../shared/wire/packet.js';
import { TcpFlag } from '../shared/wire/tcp.js';
import { tokensIn } from '../shared/token.js';

/**
 * Which test does a segment belong to? The responder keeps no TCP state, but it must attribute each
 * segment to the registered test that caused it, even when a NAT rewrote the initiator's address and
 * port, and while several tests run at once. The rule, first match wins:
 *
 *  1. flow:      the (source address, source port, test port) flow is already bound to an active test;
 *  2. isn:       among active, unbound tests on that port, exactly one registered the segment's initial
 *                sequence number (a SYN's seq); or, for a mid-flow segment, exactly one registered its
 *                source port and seq-1 is within 2^20 of that test's ISN (a segment that went past a box
 *                untranslated: the initiator's own port and ISN);
 *  3. port:      exactly one registered the SYN's source port (NAT that keeps ports);
 *  4. address:   exactly one belongs to a session whose control connection came from the segment's
 *                source address (NAT that rewrites ports but keeps the public address);
 *  5. only-test: exactly one active, unbound test waits on that port (a proxy rewrote everything),
 *                and the SYN comes from the address the test named (`from`: the box's, learned from
 *                the port's first test), if it named one;
 *  6. token:     a SYN from the box's address while tests that registered a token (shared/token.ts)
 *                wait on its port is answered as a pending flow (the responder's default behaviour,
 *                recorded apart), and given, with what was recorded of it, to the test whose token
 *                its first data carries. Its data is answered only then (by that test's plan).
 *
 * Rules 3, 4 and 5 take only a SYN, a connection's first segment, and 4 and 5 leave tests with a token
 * alone (only their token names their connection). A scanner's junk is mostly not SYNs, with random
 * ports and sequence numbers: a mid-flow segment matching a seq window alone (one in 4,096) or a port
 * alone (one in tens of thousands) came by every few seconds in a flood of 20,000 segments a second, took
 * a waiting test's place, and left the test's own SYN unanswered as its stray: a false `dropped`.
 *
 * Rule 5 takes any SYN, a stranger's too: a public responder receives scanners' SYNs on 80 and 443
 * all day, and one may come just before the test's own (and rule 3 a stranger's SYN from the test's
 * port, rule 2 a stray's mid-flow segment). So a flow bound by only-test, by port, or by a mid-flow
 * segment's ISN is the test's only until a SYN carrying exactly the test's ISN arrives: that one is
 * the test's own connection (the path keeps its ISN; its first SYN went unanswered), and it
 * displaces the stranger's flow, whose
 * segments leave the test's record. A test bound by only-test that named no box address counts the
 * SYNs from other addresses that nobody took on its port in the STRANGER_WINDOW_MS after
 * (`strangerSyns`): behind a box that rewrites everything, one of them may have been its own, and its
 * initiator runs it again. Once the port's first test showed the box's address, the others name it
 * (`from`), and only-test gives them only SYNs from there.
 *
 * Otherwise the segment is unattributed: recorded, never answered. The first attributed segment binds
 * its flow to the test until the initiator collects the test; for a minute after that the flow stays
 * known as that test's, so its late segments (a proxy closing its own connection) are never taken for
 * the next test's; only a SYN carrying exactly a waiting test's registered ISN (a new connection that
 * reused the port) takes it over. The initiator may run several tests on a port at once only while at most one of
 * them is unbound (it asks with whenBound), unless the path keeps the initiator's ISN or port.
 */
export type AttributionRule = 'flow' | 'isn' | 'port' | 'address' | 'only-test' | 'token';

export interface Session {
  id: string;
  label?: string;
  /** The initiator's address as seen on the control connection. */
  observedAddress: string;
  initiatorAddress: string;
  openedAt: number;
  lastSeen: number;
  /** Bytes the initiator sent us (control requests and attributed segments) and we sent it. */
  bytesIn: number;
  bytesOut: number;
}

/** A segment as the responder keeps it until the test is collected: its bytes, not a hex string. */
export interface RecordedSegment {
  dir: 'sent' | 'received';
  atUs: number;
  bytes: Uint8Array;
}

/** What attribution reads of a segment: its source address, ports, sequence number and flags. */
export interface SegmentHead {
  src: string;
  srcPort: number;
  dstPort: number;
  seq: number;
  flags: number;
}

export interface ActiveTest {
  session: Session;
  testId: string;
  name: string;
  port: number;
  initiatorPort: number;
  initiatorIsn: number;
  plan: ResponderPlan;
  registeredAt: number;
  segments: RecordedSegment[];
  attribution: string[];
  flows: Set<string>;
  /** Unattributed segments on this test's port before it registered (unattributedSince counts from here). */
  unattributedAtStart: number;
  /** The same, of SYNs from its session's own addresses only (unattributedFromSessionSince counts from here). */
  sessionUnattributedAtStart: number;
  /** Called once when the test binds its first flow. */
  onBound: Array<(rule: AttributionRule) => void>;
  /** Segments of the test recorded but not answered because the packet loop was behind (responder/service.ts). */
  behind: number;
  /** Answers to the test recorded as sent whose raw send failed (the socket's buffer was full). */
  notSent: number;
  /** Flows bound by only-test and then displaced by a SYN carrying the test's own ISN (a stranger's). */
  displaced: string[];
  /** SYNs from other addresses nobody took on the test's port in the STRANGER_WINDOW_MS after it was bound by only-test. */
  strangerSyns: number;
  /** When (Date.now()) it was bound by only-test, if it was. */
  onlyTestBoundAt?: number;
  /** Only-test gives it only a SYN from this address (RegisterTestRequest.from). */
  from?: string;
  /**
   * Its first flow that counts, and the rule that bound it: any flow, or, for a test that named the box's
   * address (`from`), only a flow from there. A segment of the test that went past the box (by ISN
   * from the initiator's address: one a box's connection tracking let through untranslated) is
   * recorded as the test's, but the test still waits for the box's connection: were it bound, the
   * test after it would be released and take that connection.
   */
  bound?: { flow: string; rule: AttributionRule };
  /** The capture's losses (all segments, anyone's) when the test registered: what it lost while the test ran is counted from here. */
  lostAtStart: number;
  /** Its connection's token (RegisterTestRequest.token): rule 6 gives it the box's connection whose data carries it. */
  token?: string;
  /**
   * Set on a pending flow's stand-in (rule 6), never on a registered test: the start of the flow's
   * data as it arrived (at most PENDING_BYTES), where its token is looked for, and when it began.
   */
  pending?: { chunks: Uint8Array[]; length: number; since: number };
  /**
   * Tokens (shared/token.ts) the data of its flows carried, from its first TOKEN_SCAN_SEGMENTS data
   * segments: behind a box, one that is not the test's own says a flow it was given is another test's.
   */
  tokensSeen: Set<string>;
  /** Data segments scanned for tokens so far. */
  dataScanned: number;
}

/** Data segments of a test scanned for tokens: a connection's token is in its first bytes. */
const TOKEN_SCAN_SEGMENTS = 8;

/** How much of a pending flow's data is searched for a token: a relayed request's first bytes carry it. */
const PENDING_BYTES = 4096;
/** How long a pending flow waits for its token before it is forgotten (its segments with it). */
const PENDING_MS = 30_000;
/** Pending flows kept at most (a flood from a box's address must not grow the responder): beyond, a SYN is nobody's. */
const MAX_PENDING_FLOWS = 4096;

const MID_FLOW_WINDOW = 1 << 20;
/**
 * How long after a stranger's SYN took a test's place by only-test the test's own connection still
 * arrives: it was sent once the test was free to start (after that SYN's arrival, at most about a
 * round trip earlier), and a proxy connects upstream once it has the handshake, or the request (squid:
 * about 4 round trips after the test's SYN), or its SYN went unanswered once (1 s). 3 s covers round
 * trips up to about 500 ms; SYNs from strangers later than that are not the test's.
 */
export const STRANGER_WINDOW_MS = 3_000;
/** How long a collected test's flows stay known (late segments are not re-attributed). */
const FINISHED_FLOW_MS = 60_000;

/** Ports, seq and flags of a TCP header too short to decode: enough to attribute a truncated segment. */
function tcpPrefixOf(segment: DecodedPacket): { srcPort: number; dstPort: number; seq: number; flags: number } | undefined {
  const b = segment.payload;
  if (segment.ip?.protocol !== 6 || b.length < 8) return undefined;
  return { srcPort: (b[0] << 8) | b[1], dstPort: (b[2] << 8) | b[3], seq: ((b[4] << 24) | (b[5] << 16) | (b[6] << 8) | b[7]) >>> 0, flags: b.length >= 14 ? b[13] : 0 };
}

export class Registry {
  private readonly sessions = new Map<string, Session>();
  private readonly tests = new Map<string, ActiveTest>();
  private readonly flows = new Map<string, ActiveTest>();
  /** Active tests without a flow yet, per responder port: the candidates of rules 2-6 (no scan of every test per segment). */
  private readonly waitingByPort = new Map<number, Set<ActiveTest>>();
  /**
   * The same tests by "port|initiator ISN" and by "port|initiator port": a SYN, and a segment of a path that
   * keeps ports, find their test without a scan of the port's waiting tests (with 50 volunteers at once
   * a port has over a thousand, and the scans stalled the packet loop beyond BEHIND_US).
   */
  private readonly waitingByIsn = new Map<string, Set<ActiveTest>>();
  private readonly waitingByInitiatorPort = new Map<string, Set<ActiveTest>>();
  /** Flows of collected tests, until when they stay known. */
  private readonly finishedFlows = new Map<string, number>();
  /** Tests registered behind another that is still waiting for its flow (RegisterTestRequest.after). */
  private readonly heldBack = new Map<ActiveTest, ActiveTest[]>();
  /** Active tests by responder port and initiator source port: a second flow of a bound test is its stray. */
  private readonly byInitiatorPort = new Map<string, ActiveTest>();
  /** Segments per port that no active test could take (late segments of collected tests excluded). */
  private readonly unattributedByPort = new Map<number, number>();
  /** Addresses a test's own SYN may come from: open sessions' (observed and declared) and boxes' that tests named, each with how many hold it. */
  private readonly watchedAddresses = new Map<string, number>();
  /** Unattributed SYNs per "port|address" from those addresses: what could have been a test's own. */
  private readonly unattributedFromWatched = new Map<string, number>();
  /** Tests bound by only-test alone, by port: each counts the strangers' SYNs nobody took after it. */
  private readonly boundByOnlyTest = new Map<number, Set<ActiveTest>>();
  /** Tests whose flow a stranger's segment could have given them (only-test, port, a mid-flow segment's ISN), by "port|initiator ISN": a SYN carrying that ISN displaces it. */
  private readonly provisional = new Map<string, Set<ActiveTest>>();
  /** Registered tests by token (rule 6). */
  private readonly byToken = new Map<string, ActiveTest>();
  /** Pending flows' stand-ins, by flow (rule 6). */
  private readonly pendingFlows = new Map<string, ActiveTest>();
  private pendingCount = 0;

  openSession(observedAddress: string, initiatorAddress: string, label: string | undefined, now: number): Session {
    const session: Session = { id: randomUUID(), label, observedAddress, initiatorAddress, openedAt: now, lastSeen: now, bytesIn: 0, bytesOut: 0 };
    this.sessions.set(session.id, session);
    for (const address of addressesOf(session)) this.watchAddress(address);
    return session;
  }

  session(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  allSessions(): Session[] {
    return [...this.sessions.values()];
  }

  register(session: Session, request: RegisterTestRequest, now: number): ActiveTest | 'duplicate' {
    const key = `${session.id}/${request.testId}`;
    if (this.tests.has(key)) return 'duplicate';
    const { testId, name, port, initiatorPort, initiatorIsn, plan } = request;
    const test = activeTest({
      session, testId, name, port, initiatorPort, initiatorIsn, plan, registeredAt: now, unattributedAtStart: this.unattributedByPort.get(port) ?? 0,
      ...(request.from ? { from: request.from } : {}), ...(request.token ? { token: request.token } : {}),
    });
    if (test.token !== undefined) {
      // Tokens are random (60 bits): a clash is a replay, which gets no test of anyone else's.
      if (this.byToken.has(test.token)) return 'duplicate';
      this.byToken.set(test.token, test);
    }
    this.tests.set(key, test);
    if (test.from !== undefined) this.watchAddress(test.from);
    test.sessionUnattributedAtStart = this.unattributedFrom(addressesOfTest(test), port);
    this.byInitiatorPort.set(`${port}|${initiatorPort}`, test);
    // Held back behind a test of the session that is still waiting for its flow, until that one has one.
    const before = request.after ? this.tests.get(`${session.id}/${request.after}`) : undefined;
    if (before && before.bound === undefined) this.heldBack.set(before, [...(this.heldBack.get(before) ?? []), test]);
    else this.addWaiting(test);
    return test;
  }

  test(sessionId: string, testId: string): ActiveTest | undefined {
    return this.tests.get(`${sessionId}/${testId}`);
  }

  /** Removes a test (collected, or its session closed); its flows are unbound. */
  finish(test: ActiveTest, now = Date.now()): void {
    if (!this.tests.delete(`${test.session.id}/${test.testId}`)) return;
    if (test.token !== undefined && this.byToken.get(test.token) === test) this.byToken.delete(test.token);
    if (test.from !== undefined) this.unwatchAddress(test.from);
    this.removeWaiting(test);
    this.release(test);
    for (const held of this.heldBack.values()) if (held.includes(test)) held.splice(held.indexOf(test), 1);
    if (this.byInitiatorPort.get(`${test.port}|${test.initiatorPort}`) === test) this.byInitiatorPort.delete(`${test.port}|${test.initiatorPort}`);
    for (const flow of test.flows) {
      this.flows.delete(flow);
      this.finishedFlows.set(flow, now + FINISHED_FLOW_MS);
    }
    for (const waiter of test.onBound.splice(0)) waiter('only-test');
    this.settleProvisional(test);
    if (this.finishedFlows.size > 100_000) this.forgetFinishedFlows(now);
  }

  /** The test no longer holds a flow a stranger could have given it (collected, or its own connection arrived). */
  private settleProvisional(test: ActiveTest): void {
    this.boundByOnlyTest.get(test.port)?.delete(test);
    removeFrom(this.provisional, `${test.port}|${test.initiatorIsn}`, test);
  }

  private forgetFinishedFlows(now: number): void {
    for (const [flow, until] of this.finishedFlows) if (until < now) this.finishedFlows.delete(flow);
  }

  /** Segments on the test's port that no active test could take since it registered: were any its own? */
  unattributedSince(test: ActiveTest): number {
    return (this.unattributedByPort.get(test.port) ?? 0) - test.unattributedAtStart;
  }

  /**
   * Of those, the SYNs from its session's own addresses, and from the box's address it named (`from`):
   * on a path that keeps the initiator's ISN or port (a test's own SYN is attributed by them), or
   * behind a box whose address is known, a stranger's SYN cannot have been the test's, and a public
   * responder receives scanners' SYNs all day.
   */
  unattributedFromSessionSince(test: ActiveTest): number {
    return this.unattributedFrom(addressesOfTest(test), test.port) - test.sessionUnattributedAtStart;
  }

  private unattributedFrom(addresses: readonly string[], port: number): number {
    return addresses.reduce((n, address) => n + (this.unattributedFromWatched.get(`${port}|${address}`) ?? 0), 0);
  }

  /** Counts the SYNs nobody took from an address (a session's, or a box's a test named), while anything needs it. */
  private watchAddress(address: string): void {
    this.watchedAddresses.set(address, (this.watchedAddresses.get(address) ?? 0) + 1);
  }

  private unwatchAddress(address: string): void {
    const left = (this.watchedAddresses.get(address) ?? 1) - 1;
    if (left > 0) {
      this.watchedAddresses.set(address, left);
      return;
    }
    this.watchedAddresses.delete(address);
    for (const key of this.unattributedFromWatched.keys()) if (key.endsWith(`|${address}`)) this.unattributedFromWatched.delete(key);
  }

  /** Notes the tokens a data segment of the test carries (its first few data segments only). */
  noteData(test: ActiveTest, payload: Uint8Array): void {
    if (payload.length === 0 || test.dataScanned >= TOKEN_SCAN_SEGMENTS) return;
    test.dataScanned++;
    for (const token of tokensIn(payload)) test.tokensSeen.add(token);
  }

  /** The source address of the flow that bound the test, if it is bound. */
  boundFrom(test: ActiveTest): string | undefined {
    return test.bound?.flow.slice(0, test.bound.flow.indexOf('|'));
  }

  /** Resolves with the rule once the test binds a flow (at once if it has), or undefined after `waitMs`. */
  whenBound(test: ActiveTest, waitMs: number): Promise<AttributionRule | undefined> {
    if (test.bound !== undefined) return Promise.resolve(test.bound.rule);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        test.onBound.splice(test.onBound.indexOf(done), 1);
        resolve(undefined);
      }, waitMs);
      const done = (r: AttributionRule): void => {
        clearTimeout(timer);
        resolve(test.bound !== undefined ? r : undefined);
      };
      test.onBound.push(done);
    });
  }

  closeSession(session: Session): ActiveTest[] {
    const leftovers = [...this.tests.values()].filter((t) => t.session === session);
    leftovers.forEach((t) => this.finish(t));
    for (const stand of [...this.pendingFlows.values()]) if (stand.session === session) this.forgetPending(stand);
    if (this.sessions.delete(session.id)) for (const address of addressesOf(session)) this.unwatchAddress(address);
    return leftovers;
  }

  /** Sessions idle for longer than `idleMs`, for the caller to close. */
  idleSessions(now: number, idleMs: number): Session[] {
    return [...this.sessions.values()].filter((s) => now - s.lastSeen > idleMs);
  }

  /** The tests held back behind `test` become candidates (it has its flow, or is gone). */
  private release(test: ActiveTest): void {
    for (const held of this.heldBack.get(test) ?? []) if (this.tests.has(`${held.session.id}/${held.testId}`)) this.addWaiting(held);
    this.heldBack.delete(test);
  }

  private addWaiting(test: ActiveTest): void {
    addTo(this.waitingByPort, test.port, test);
    addTo(this.waitingByIsn, `${test.port}|${test.initiatorIsn}`, test);
    addTo(this.waitingByInitiatorPort, `${test.port}|${test.initiatorPort}`, test);
  }

  private removeWaiting(test: ActiveTest): void {
    removeFrom(this.waitingByPort, test.port, test);
    removeFrom(this.waitingByIsn, `${test.port}|${test.initiatorIsn}`, test);
    removeFrom(this.waitingByInitiatorPort, `${test.port}|${test.initiatorPort}`, test);
  }

  attribute(segment: DecodedPacket): { test: ActiveTest; rule: AttributionRule | 'pending' } | undefined {
    const ip = segment.ip;
    const tcp = segment.tcp ?? tcpPrefixOf(segment);
    if (!ip || !tcp) return undefined;
    return this.attributeHead({ src: ip.src, srcPort: tcp.srcPort, dstPort: tcp.dstPort, seq: tcp.seq, flags: tcp.flags });
  }

  /** attribute() on what it reads of a segment, for callers that have not decoded it (responder/service.ts). */
  attributeHead(tcp: SegmentHead): { test: ActiveTest; rule: AttributionRule | 'pending' } | undefined {
    const ip = { src: tcp.src };
    const flow = `${ip.src}|${tcp.srcPort}|${tcp.dstPort}`;
    const bound = this.flows.get(flow);
    if (bound) return { test: bound, rule: 'flow' };
    const isSyn = (tcp.flags & (TcpFlag.SYN | TcpFlag.ACK)) === TcpFlag.SYN;
    const finishedUntil = this.finishedFlows.get(flow);
    if (finishedUntil !== undefined) {
      if (finishedUntil >= Date.now()) {
        // A flow collected within the last minute is nobody else's (its proxy may still close it late),
        // except for a new connection that names its test: a SYN carrying exactly one waiting test's
        // ISN (an initiator that reused the port: a volunteer's second run with a new database).
        const named = isSyn ? sole(this.waitingByIsn.get(`${tcp.dstPort}|${tcp.seq}`)) : undefined;
        if (!named) return undefined;
        this.finishedFlows.delete(flow);
        return this.bind(named, flow, 'isn');
      }
      this.finishedFlows.delete(flow);
    }
    // The test's own connection, whose SYN came after a stranger's segment took its place (only-test, port, a mid-flow seq).
    const own = isSyn ? sole(this.provisional.get(`${tcp.dstPort}|${tcp.seq}`)) : undefined;
    if (own) return this.displace(own, flow);
    const isnMatches = (t: ActiveTest): boolean =>
      ((tcp.flags & (TcpFlag.SYN | TcpFlag.ACK)) === TcpFlag.SYN ? tcp.seq === t.initiatorIsn : ((tcp.seq - t.initiatorIsn) >>> 0) - 1 < MID_FLOW_WINDOW);
    // A second flow of a test that already has one (a segment that slipped past a NAT or proxy, with the
    // initiator's own port and ISN) is that test's stray: never another test's, never answered.
    const sameTest = this.byInitiatorPort.get(`${tcp.dstPort}|${tcp.srcPort}`);
    if (sameTest && sameTest.flows.size > 0 && isnMatches(sameTest)) return undefined;
    const waiting = this.waitingByPort.get(tcp.dstPort);
    // A connection starts with a SYN: a mid-flow segment of a flow nobody knows (an old proxy
    // connection closing late) is nobody's new connection, and only a SYN can be a waiting test's.
    const none = (): undefined => {
      if (!isSyn) return undefined;
      this.unattributedByPort.set(tcp.dstPort, (this.unattributedByPort.get(tcp.dstPort) ?? 0) + 1);
      if (this.watchedAddresses.has(ip.src)) {
        const key = `${tcp.dstPort}|${ip.src}`;
        this.unattributedFromWatched.set(key, (this.unattributedFromWatched.get(key) ?? 0) + 1);
      }
      const onPort = this.boundByOnlyTest.get(tcp.dstPort);
      if (onPort?.size) {
        const now = Date.now();
        for (const test of onPort) {
          if (now - (test.onlyTestBoundAt ?? 0) > STRANGER_WINDOW_MS) onPort.delete(test);
          else if (![...test.flows].some((f) => f.startsWith(`${ip.src}|`))) test.strangerSyns++;
        }
      }
      return undefined;
    };
    if (!waiting?.size) return none();
    // First rule with exactly one candidate wins; each is looked at only if those before it had none or several.
    const fromInitiatorPort = this.waitingByInitiatorPort.get(`${tcp.dstPort}|${tcp.srcPort}`);
    if (!isSyn) {
      // Only a stray of a test (its own port and ISN) is anybody's: a scanner's junk has neither.
      const stray = soleWhere(fromInitiatorPort ?? [], isnMatches);
      return stray ? this.bind(stray, flow, 'isn', true) : none();
    }
    const byIsn = sole(this.waitingByIsn.get(`${tcp.dstPort}|${tcp.seq}`));
    if (byIsn) return this.bind(byIsn, flow, 'isn');
    const byPort = sole(fromInitiatorPort);
    if (byPort) return this.bind(byPort, flow, 'port', true);
    // Rules that name no field of ours take only a connection's first segment, and never a test's
    // with a token.
    const byAddress = soleWhere(waiting, (t) => t.token === undefined && (t.session.observedAddress === ip.src || t.session.initiatorAddress === ip.src));
    if (byAddress) return this.bind(byAddress, flow, 'address');
    // From the box's address when the initiator knows it: never a stranger's SYN.
    const onlyTest = soleWhere(waiting, (t) => t.token === undefined && (t.from === undefined || t.from === ip.src));
    if (onlyTest) return this.bind(onlyTest, flow, 'only-test');
    // A box's connection for a test with a token: answered, and given away once its data names the test.
    if (this.pendingFlows.size < MAX_PENDING_FLOWS) {
      for (const t of waiting) if (t.token !== undefined && t.from === ip.src) return { test: this.pendingFlow(t.session, flow, tcp.dstPort), rule: 'pending' };
    }
    return none();
  }

  /** A stand-in for a box's connection not yet known to be any test's (rule 6): the responder's default behaviour. */
  private pendingFlow(session: Session, flow: string, port: number): ActiveTest {
    const now = Date.now();
    // Oldest first (a Map keeps insertion order): stop at the first still young.
    for (const stand of this.pendingFlows.values()) {
      if (now - stand.pending!.since <= PENDING_MS) break;
      this.forgetPending(stand);
    }
    const stand = activeTest({
      session, testId: `pending-${++this.pendingCount}`, name: 'pending', port, initiatorPort: 0, initiatorIsn: 0, plan: {}, registeredAt: now, unattributedAtStart: 0,
      pending: { chunks: [], length: 0, since: now },
    });
    stand.flows.add(flow);
    this.pendingFlows.set(flow, stand);
    this.flows.set(flow, stand);
    return stand;
  }

  /** A pending flow nobody's token claimed in PENDING_MS, or whose session closed: its late segments stay nobody's. */
  private forgetPending(stand: ActiveTest): void {
    stand.pending = undefined;
    for (const flow of stand.flows) {
      this.pendingFlows.delete(flow);
      if (this.flows.get(flow) === stand) this.flows.delete(flow);
      this.finishedFlows.set(flow, Date.now() + FINISHED_FLOW_MS);
    }
  }

  /**
   * Data on a pending flow (rule 6): once the flow's data so far carries the token of a registered
   * test (from the address it named), the flow and all that was recorded of it become that test's,
   * which is returned (its plan answers this segment). Undefined while no token is known: the
   * segment stays recorded on the stand-in, unanswered.
   */
  claim(stand: ActiveTest, payload: Uint8Array): ActiveTest | undefined {
    const pending = stand.pending;
    if (!pending || payload.length === 0) return undefined;
    if (pending.length < PENDING_BYTES) {
      const piece = payload.subarray(0, PENDING_BYTES - pending.length);
      pending.chunks.push(piece);
      pending.length += piece.length;
    }
    const flow = [...stand.flows][0];
    const start = new Uint8Array(pending.length);
    let at = 0;
    for (const chunk of pending.chunks) {
      start.set(chunk, at);
      at += chunk.length;
    }
    const tokens = tokensIn(start);
    const owner = tokens.map((t) => this.byToken.get(t)).find((t) => t !== undefined && t.port === stand.port && (t.from === undefined || flow.startsWith(`${t.from}|`)));
    if (!owner) return undefined;
    this.pendingFlows.delete(flow);
    this.flows.delete(flow);
    // What was recorded of the flow before its token came is the test's, in the order it happened.
    owner.segments = [...stand.segments, ...owner.segments].sort((a, b) => a.atUs - b.atUs);
    owner.behind += stand.behind;
    owner.notSent += stand.notSent;
    for (const token of tokens) owner.tokensSeen.add(token);
    return this.bind(owner, flow, 'token').test;
  }

  /**
   * The test's own connection arrived (a SYN with its ISN) after only-test gave it a stranger's: the
   * stranger's flows, and what was recorded of them, leave the test, and the new flow is bound by ISN.
   */
  private displace(test: ActiveTest, flow: string): { test: ActiveTest; rule: AttributionRule } {
    const strangers = [...test.flows];
    for (const f of strangers) this.flows.delete(f);
    test.flows.clear();
    test.displaced.push(...strangers);
    test.attribution = test.attribution.filter((a) => !strangers.includes(a.slice(0, a.lastIndexOf(' by '))));
    test.segments = test.segments.filter((s) => !strangers.includes(flowOfRecorded(s) ?? ''));
    this.settleProvisional(test);
    test.strangerSyns = 0;
    test.bound = undefined;
    return this.bind(test, flow, 'isn');
  }

  /**
   * The flow is the test's from now on; `displaceable` (only-test, port, a mid-flow segment's ISN: a
   * stranger's segment could have matched) until a SYN carrying exactly the test's ISN comes.
   */
  private bind(test: ActiveTest, flow: string, rule: AttributionRule, displaceable = rule === 'only-test'): { test: ActiveTest; rule: AttributionRule } {
    const first = test.flows.size === 0;
    test.flows.add(flow);
    test.attribution.push(`${flow} by ${rule}`);
    this.flows.set(flow, test);
    // Behind a box whose address the test named, only the box's connection binds it.
    if (test.bound !== undefined || (test.from !== undefined && !flow.startsWith(`${test.from}|`))) return { test, rule };
    test.bound = { flow, rule };
    // A test that named the box's address took no stranger's SYN: nothing to displace (a SYN with its
    // ISN is one that went past the box, recorded as its stray), and no SYN of a stranger is its own.
    if (first && displaceable && test.from === undefined) addTo(this.provisional, `${test.port}|${test.initiatorIsn}`, test);
    if (first && rule === 'only-test') {
      test.onlyTestBoundAt = Date.now();
      if (test.from === undefined) addTo(this.boundByOnlyTest, test.port, test);
    }
    this.removeWaiting(test);
    this.release(test);
    for (const waiter of test.onBound.splice(0)) waiter(rule);
    return { test, rule };
  }
}

/**
 * A test as registered (or a pending flow's stand-in): what names it, and everything it will record, empty.
 * Every field is written here, in one order, absent ones as undefined: all tests share one object shape,
 * which keeps the packet loop's reads of them fast (a spread of the caller's fields gave each
 * combination of optional fields its own shape, and the loop slowed enough to fall behind a crowd).
 */
function activeTest(named: Pick<ActiveTest, 'session' | 'testId' | 'name' | 'port' | 'initiatorPort' | 'initiatorIsn' | 'plan' | 'registeredAt' | 'unattributedAtStart'> & Partial<Pick<ActiveTest, 'from' | 'token' | 'pending'>>): ActiveTest {
  return {
    session: named.session, testId: named.testId, name: named.name, port: named.port, initiatorPort: named.initiatorPort, initiatorIsn: named.initiatorIsn, plan: named.plan,
    registeredAt: named.registeredAt, segments: [], attribution: [], flows: new Set(), unattributedAtStart: named.unattributedAtStart, sessionUnattributedAtStart: 0, onBound: [],
    behind: 0, notSent: 0, displaced: [], strangerSyns: 0, onlyTestBoundAt: undefined, from: named.from, bound: undefined, lostAtStart: 0, token: named.token,
    pending: named.pending, tokensSeen: new Set(), dataScanned: 0,
  };
}

/** The set's only member, if it has exactly one. */
function sole<T>(set: Set<T> | undefined): T | undefined {
  if (set?.size !== 1) return undefined;
  for (const only of set) return only;
  return undefined;
}

/** The only member of the set that `matches`, if exactly one does (stops at the second). */
function soleWhere<T>(set: Iterable<T>, matches: (t: T) => boolean): T | undefined {
  let found: T | undefined;
  for (const t of set) {
    if (!matches(t)) continue;
    if (found !== undefined) return undefined;
    found = t;
  }
  return found;
}

function addTo<K, T>(index: Map<K, Set<T>>, key: K, t: T): void {
  let set = index.get(key);
  if (!set) index.set(key, (set = new Set()));
  set.add(t);
}

function removeFrom<K, T>(index: Map<K, Set<T>>, key: K, t: T): void {
  const set = index.get(key);
  if (set?.delete(t) && set.size === 0) index.delete(key);
}

/** The flow ("initiator address|port|test port") a recorded segment belongs to, whichever way it went. */
function flowOfRecorded(segment: RecordedSegment): string | undefined {
  const { ip, tcp } = decodePacket(segment.bytes);
  if (!ip || !tcp) return undefined;
  return segment.dir === 'received' ? `${ip.src}|${tcp.srcPort}|${tcp.dstPort}` : `${ip.dst}|${tcp.dstPort}|${tcp.srcPort}`;
}

/** A session's addresses: as its control connection came, and as its initiator said (once if the same). */
function addressesOf(session: Session): string[] {
  return session.observedAddress === session.initiatorAddress ? [session.observedAddress] : [session.observedAddress, session.initiatorAddress];
}

/** The addresses a test's own SYN can come from, as far as the responder knows: its session's, and the box's it named. */
function addressesOfTest(test: ActiveTest): string[] {
  const session = addressesOf(test.session);
  return test.from === undefined || session.includes(test.from) ? session : [...session, test.from];
}
