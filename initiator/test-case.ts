import type { ResponderPlan } from '../shared/control.js';
import type { Observed } from './observed.js';
import type { ProbeConnection } from './probe.js';

/** Verdicts every test can give besides its own (design contract). */
export const SHARED_VERDICTS = ['dropped', 'intercepted', 'reply-dropped', 'reset', 'inconclusive'] as const;

/** Everything both ends saw of one test: the input of a pure judge. */
export interface TestObservations {
  name: string;
  port: number;
  /** The initiator's address and port as it sent them, and the responder's as it addressed them. */
  local: { address: string; port: number };
  remote: { address: string; port: number };
  isn: number;
  initiator: { sent: Observed[]; received: Observed[] };
  /** Undefined when the responder's view could not be collected (the verdict is then inconclusive). */
  responder?: { sent: Observed[]; received: Observed[] };
  /** Facts the script recorded while running (e.g. which segment was the probe). */
  notes: Record<string, unknown>;
}

export interface Judgement {
  verdict: string;
  /** The evidence: which fields changed, from what to what, how many pieces, ... */
  detail: Record<string, unknown>;
}

export interface RunContext {
  /** The responder's port this test runs on (34343, 80, 443). */
  port: number;
  /** Payload shaping for ports whose middleboxes only act on their protocol (HTTP on 80, TLS on 443). */
  payload(length: number): Uint8Array;
}

/**
 * The segment a test's judge examines, for `mbprobe-initiator locate` (initiator/locate/): copies of it
 * go out with TTL 1..N to find where on the path it changes, so locate must know which of the
 * segments the script sends it is, and which fields the judge reads (the copies carry their TTL in
 * others: IPv4 ID, IPv6 flow label, window, urgent pointer, ack).
 */
export interface ProbeSegment {
  /** Is this segment, about to leave, the probe? `before`: what the script sent so far. The first that is, is. */
  is(segment: Observed, before: readonly Observed[]): boolean;
  /**
   * The fields the judge reads, as diff rows name them: `ip.dscp`, `ip.src`, `tcp.window`, `tcp.seq`,
   * `option.mss`, `payload`, ... Empty: the judge looks only at who answers (a proxy's verdicts).
   */
  examines: readonly string[];
  /** The judge looks at what the responder sends (the reverse path), which probes from here cannot localise. */
  reversePath?: boolean;
}

/**
 * A test case: what it sends (its script), what the responder is asked to do (its plan), and a pure
 * judge from what both ends observed to a verdict. One module per test case in initiator/catalogue/.
 */
export interface TestCase {
  name: string;
  /** One sentence: what is sent. Shown by `mbprobe-initiator list`. */
  sends: string;
  /** The test's own verdicts; the first means no interference. */
  verdicts: readonly string[];
  /**
   * Its verdicts that rest on something not arriving (a segment that never came), which loss on the
   * path can fake: published only from a run without signs of loss, or confirmed by a second run
   * (initiator/confirm.ts). The others rest on what arrived and are published as they are.
   */
  absenceVerdicts?: readonly string[];
  /**
   * The test takes many round trips beyond its handshake (pauses, watch windows, retransmissions,
   * often a confirming run): the scheduler starts it before the short ones, so a run on a long path
   * ends with its slowest test, not after it.
   */
  long?: boolean;
  plan?: ResponderPlan;
  /**
   * How a run of the test can name its connection to the responder behind a box that rewrites
   * everything (a split-connection proxy), so that it need not wait its turn in the port's chain
   * (initiator/schedule.ts): by the run's token (shared/token.ts) in bytes a box relaying the stream
   * passes on.
   *  - `in-stream`: its stream starts with bytes of `context.payload`, which carry the token;
   *  - `before-close`: it sends no data of its own; its connection sends a request carrying the
   *    token just before its FIN (ProbeConnection.tokenRequest), after everything the judge reads.
   * A run whose token never reached the responder (the box dropped the data, or relayed a copy that
   * differs there) is run again alone, chained: a wrong guess costs time, never a verdict. A test
   * whose plan shapes the SYN-ACK or the data after the handshake cannot: the responder answers the
   * box's handshake before it has read the token.
   */
  carriesToken?: 'in-stream' | 'before-close';
  /**
   * Behind a box that relays the stream, the test's verdict always needs a second run (what the box
   * does is what loss would also do: it drops the probe, it keeps data the responder then never
   * sees): there the second run starts with the first, not after it.
   */
  secondRunBehindRelay?: boolean;
  /** The segment the judge examines, so `locate` can find where on the path it changes; unset: the test cannot be localised. */
  probe?: ProbeSegment;
  run(connection: ProbeConnection, context: RunContext): Promise<void>;
  judge(observations: TestObservations): Judgement;
}

export function allVerdicts(test: TestCase): string[] {
  return [...test.verdicts, ...SHARED_VERDICTS];
}
