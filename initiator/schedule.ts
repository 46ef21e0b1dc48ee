/**
 * When a test may start on a responder port. The responder attributes each segment to the test that
 * caused it (responder/registry.ts): by the flow once bound, by the initiator's ISN or source port
 * while the path keeps them, and, behind a box that rewrites all of them (a split-connection proxy),
 * only because exactly one test on the port is still waiting for its first flow. So:
 *
 *  - the first test on a port runs alone until the responder binds its flow: the rule that bound it
 *    tells what the path keeps (or, if it never binds, its attribution when it is collected);
 *  - on a path that keeps the ISN or the port ("identifiable"), tests on the port overlap freely;
 *  - on a path that rewrites them ("opaque"), the tests on the port form a chain: each registers
 *    naming the test before it, which the responder holds it back behind (it is no candidate for any
 *    flow until that one is bound), and sends nothing that could make a box connect to the responder
 *    (anything but a bare SYN: the handshake's ACK, data) until the test before it is bound there
 *    (the runner asks), so "the only test waiting" stays exact. Once the box's address is known
 *    (the responder then gives a test only SYNs from there), its bare SYN goes earlier, once the
 *    test before it has its SYN-ACK: a proxy answers a SYN but connects upstream only on the
 *    handshake's ACK or the request, and a box that connects on the SYN answers only once it has
 *    (and a SYN that went through was bound before its SYN-ACK left the responder). So each test
 *    costs the chain about one round trip, not two;
 *  - behind such a box whose address is known, a test that carries its run's token to the
 *    responder (TestCase.carriesToken: in its stream, or in a request before its FIN) needs no
 *    place in the chain: the responder answers the box's connections while tests with a token
 *    wait and gives each to the test its data names
 *    (responder/registry.ts rule 6). At SYN time such a connection looks like a chained test's, so
 *    the port runs one lane at a time: tests with a token start only while no chained test waits
 *    for its flow, chained tests only while no test with a token does. The tests with a token go
 *    first, all at once, and the chain follows as soon as they are all bound (their bodies, the
 *    long watches and pauses, overlap the chain). A run with a token whose connection never named
 *    it runs again alone;
 *  - a test whose run saw segments on its port that nobody could take, while it shared the port,
 *    runs again alone (exclusive).
 *
 * Different ports are independent; a global limit (--concurrency) bounds the tests in flight.
 */

/**
 * Tests in flight by default: the whole catalogue on three ports (84 tests) at once, so a long path
 * costs the round trips of its slowest test, not of the catalogue; the port gates decide the rest.
 * 84 connections and about 100 KB is a small burst for any access link.
 */
export const DEFAULT_CONCURRENCY = 100;

export type PortMode = 'unknown' | 'identifiable' | 'opaque';

/** Attribution rules that keep working whatever else runs on the port. */
const IDENTIFYING_RULES = new Set(['flow', 'isn', 'port']);

/** The mode the rule that bound a port's first flow shows. */
export function modeFromRule(rule: string): Exclude<PortMode, 'unknown'> {
  return IDENTIFYING_RULES.has(rule) ? 'identifiable' : 'opaque';
}

/** The mode a port's first test shows: every flow attributed by flow, ISN or port, or else opaque. */
export function modeFromAttribution(attribution: readonly string[]): Exclude<PortMode, 'unknown'> {
  if (attribution.length === 0) return 'opaque';
  return attribution.every((a) => IDENTIFYING_RULES.has(a.slice(a.lastIndexOf(' by ') + 4))) ? 'identifiable' : 'opaque';
}

/**
 * The address a box that rewrites everything connects from, as a test's attribution shows it: its one
 * flow, bound by only-test ("address|port|test port by only-test"); undefined otherwise.
 */
export function boxAddressOf(attribution: readonly string[]): string | undefined {
  if (attribution.length !== 1 || !attribution[0].endsWith(' by only-test')) return undefined;
  return attribution[0].slice(0, attribution[0].indexOf('|'));
}

/** A test's permission to run on a port: release it when the test's flow is bound, and when the test is done. */
export interface Ticket {
  /** The test has the port to itself (a run again alone, or the port's first test until the path is known). */
  readonly exclusive: boolean;
  /** On an opaque port with the box's address known: the test registers its token and takes no place in the chain. */
  readonly token: boolean;
  /**
   * On an opaque port, the test started just before this one and not yet bound, if any: this test
   * registers once that one has (naming it, so the responder holds this one back until that one is
   * bound), sends its bare SYN once that one has its SYN-ACK (or is bound, or done), and anything
   * else only once that one is bound (or done).
   */
  readonly predecessor?: Ticket;
  /** The test registered at the responder under this id. */
  registered(testId: string): void;
  /** Resolves with the test's id once it has registered. */
  whenRegistered(): Promise<string>;
  /** Resolves once the test's flow is bound (or the test is done). */
  whenBound(): Promise<void>;
  /** A SYN-ACK answered the test's SYN: on an opaque port, the next test may send its own SYN. */
  answered(): void;
  /** Resolves once the test's SYN was answered, or its flow is bound, or the test is done. */
  whenAnswered(): Promise<void>;
  /** The responder has bound a flow to this test: on an opaque port, the next test may start. */
  bound(): void;
  done(): void;
}

type Want = 'shared' | 'exclusive';

/** On an opaque port, how many tests of the chain may be under way and not yet bound. */
export const OPAQUE_CHAIN_AHEAD = 3;

export class PortGate {
  mode: PortMode = 'unknown';

  /**
   * Whether tests here may take the token lane once the path shows a box whose address is known: the
   * responder takes connection tokens (its hello lists the feature). Unless told otherwise, it does.
   */
  readonly tokens: boolean;

  constructor(options: { tokens?: boolean } = {}) {
    this.tokens = options.tokens !== false;
  }

  /**
   * On an opaque port, the address the box connects to the responder from, as the port's first test
   * showed (bound by only-test, no stranger's SYN near it): later tests name it when they register, so
   * the responder never gives them a stranger's SYN. Undefined when not known.
   */
  from?: string;
  private inFlight = 0;
  /** Tickets on an opaque port whose test is not yet bound, oldest first. */
  private readonly unbound: Ticket[] = [];
  private exclusiveHeld = false;
  /** Tickets with a token whose test is not yet bound. */
  private readonly tokenUnbound = new Set<Ticket>();
  private readonly waiting: Array<{ want: Want; grant: (t: Ticket | undefined) => void; again?: boolean; tokenable: boolean }> = [];

  /**
   * Waits until a test of this kind may start; the first test on a port always runs alone. `again`: a
   * further run of a test already under way (a confirmation), which goes before the tests waiting to
   * start: on an opaque port, where tests start one after another, it would otherwise wait for all of
   * them, and the run would end a whole chain later. `tokenable`: the test can name its connection
   * by a token (TestCase.carriesToken): behind a box whose address is known it takes the token lane.
   */
  enter(want: Want = 'shared', again = false, tokenable = false): Promise<Ticket> {
    return this.queue(want, again, tokenable).ticket as Promise<Ticket>;
  }

  /**
   * enter() for a run started before anyone knows it is needed (the early confirming run, a run
   * again): `withdraw` takes it out of the queue if it has not started yet (its ticket is then
   * undefined), when it turns out not to be needed.
   */
  enterSpeculative(want: Want, tokenable: boolean): { ticket: Promise<Ticket | undefined>; withdraw(): void } {
    return this.queue(want, true, tokenable);
  }

  private queue(want: Want, again: boolean, tokenable: boolean): { ticket: Promise<Ticket | undefined>; withdraw(): void } {
    let entry!: (typeof this.waiting)[number];
    const ticket = new Promise<Ticket | undefined>((grant) => {
      entry = { want, grant, again, tokenable };
      // After the runs again already waiting, before every first run.
      const firstRun = again ? this.waiting.findIndex((w) => !w.again) : -1;
      this.waiting.splice(firstRun < 0 ? this.waiting.length : firstRun, 0, entry);
      this.pump();
    });
    return {
      ticket,
      withdraw: () => {
        const at = this.waiting.indexOf(entry);
        if (at < 0) return;
        this.waiting.splice(at, 1);
        entry.grant(undefined);
        this.pump();
      },
    };
  }

  /** Whether a test that can carry a token takes the token lane now. */
  private tokenLane(want: Want, tokenable: boolean): boolean {
    return tokenable && this.tokens && want === 'shared' && this.mode === 'opaque' && this.from !== undefined;
  }

  private known!: () => void;
  private readonly knownP = new Promise<void>((r) => (this.known = r));

  /** Resolves once the port's first test has shown what the path keeps (learn). */
  whenKnown(): Promise<void> {
    return this.knownP;
  }

  /** The port's first test, alone only because the path is not known yet. */
  private first?: { release(): void };

  /**
   * What the port's first test showed (only the first answer counts): the others may start, beside it
   * if it is still under way.
   */
  learn(mode: Exclude<PortMode, 'unknown'>): void {
    if (this.mode !== 'unknown') return;
    this.mode = mode;
    this.known();
    this.first?.release();
    this.first = undefined;
    this.pump();
  }

  private allowed(want: Want, tokenable: boolean): boolean {
    if (this.exclusiveHeld) return false;
    if (want === 'exclusive' || this.mode === 'unknown') return this.inFlight === 0;
    if (this.mode === 'identifiable') return true;
    // Opaque, one lane at a time: tests with a token all at once while no chained test waits for its flow.
    if (this.tokenLane(want, tokenable)) return this.unbound.length === 0;
    // The chain: a few tests under way at once (one waiting to be bound, the next with its SYN
    // answered, the next registering), so no test waits for the one before it to start.
    return this.tokenUnbound.size === 0 && this.unbound.length < OPAQUE_CHAIN_AHEAD;
  }

  private pump(): void {
    // First come, first served: a waiting exclusive test holds back the shared ones behind it.
    while (this.waiting.length > 0 && this.allowed(this.waiting[0].want, this.waiting[0].tokenable)) {
      const { want, grant, tokenable } = this.waiting.shift()!;
      grant(this.ticket(want === 'exclusive' || this.mode === 'unknown', this.tokenLane(want, tokenable)));
    }
  }

  private ticket(alone: boolean, token: boolean): Ticket {
    this.inFlight++;
    let exclusive = alone;
    if (exclusive) this.exclusiveHeld = true;
    // On an identifiable port a test never blocks others while it waits for its flow.
    const opaque = !exclusive && this.mode === 'opaque';
    const chained = opaque && !token;
    const predecessor = chained ? this.unbound.at(-1) : undefined;
    let finished = false;
    let resolveRegistered!: (id: string) => void;
    const registered = new Promise<string>((r) => (resolveRegistered = r));
    let resolveBound!: () => void;
    const boundP = new Promise<void>((r) => (resolveBound = r));
    let resolveAnswered!: () => void;
    const answeredP = new Promise<void>((r) => (resolveAnswered = r));
    const ticket: Ticket = {
      get exclusive() {
        return exclusive;
      },
      token,
      ...(predecessor ? { predecessor } : {}),
      registered: (id) => resolveRegistered(id),
      whenRegistered: () => registered,
      whenBound: () => boundP,
      answered: () => resolveAnswered(),
      whenAnswered: () => answeredP,
      bound: () => {
        resolveBound();
        resolveAnswered();
        if (this.tokenUnbound.delete(ticket)) return this.pump();
        const at = this.unbound.indexOf(ticket);
        if (at < 0) return;
        this.unbound.splice(at, 1);
        this.pump();
      },
      done: () => {
        if (finished) return;
        finished = true;
        // A test that ends without registering (interrupted) lets its successor register alone.
        resolveRegistered('');
        ticket.bound();
        this.inFlight--;
        if (exclusive) this.exclusiveHeld = false;
        exclusive = false;
        this.pump();
      },
    };
    // Alone only until the path is known: then it shares the port like any other test (already bound).
    if (alone && this.mode === 'unknown') {
      this.first = {
        release: () => {
          if (!exclusive || finished) return;
          exclusive = false;
          this.exclusiveHeld = false;
        },
      };
    }
    if (chained) this.unbound.push(ticket);
    else if (opaque) this.tokenUnbound.add(ticket);
    else {
      resolveBound();
      resolveAnswered();
    }
    return ticket;
  }
}

/**
 * The path's round trip as the handshakes measured it, for waits chosen from it instead of
 * constants: the largest sample so far (a jittery path's slow moments matter more than its fast ones).
 */
export class PathRtt {
  private maxMs: number | undefined;

  add(sampleMs: number | undefined): void {
    if (sampleMs === undefined || !Number.isFinite(sampleMs) || sampleMs < 0) return;
    this.maxMs = Math.max(this.maxMs ?? 0, sampleMs);
  }

  get ms(): number | undefined {
    return this.maxMs;
  }

  /** How long to wait for an answer before resending, before a connection measured its own round trip: 3 RTT, 200 ms at least, `ceiling` at most. */
  initialWaitMs(ceiling: number): number {
    return this.maxMs === undefined ? ceiling : Math.min(ceiling, Math.max(200, Math.ceil(3 * this.maxMs)));
  }
}
