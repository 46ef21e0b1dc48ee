/**
 * Server tests: what an ordinary server (no mbprobe responder) and the path to it support, judged from
 * the initiator's side alone. `mbprobe-initiator scan` runs them against a list of targets. A server
 * test is one module, like a test of the catalogue one folder up: what it sends (a script that may open
 * several connections to the target, one after another: A/B pairs, a cookie and then its use) and a
 * pure judge from what the initiator sent and received on each connection to a verdict.
 *
 * Unlike the catalogue's tests they have no responder plan and no responder view: a verdict says what
 * the far end answered, and so covers the server and the path together (a box that strips an option
 * looks like a server that does not support it; the scan's README section says so).
 */
import type { Observed } from '../../observed.js';
import type { Judgement } from '../../test-case.js';
import type { ScanConnection } from './scan-connection.js';

/**
 * Verdicts every server test can give besides its own: `unreachable` (no answer to an ordinary SYN),
 * `reset` (an ordinary SYN was answered with a RST: nothing listens, or a firewall refuses), and
 * `inconclusive` (the measurement failed, or the answers do not say: the detail says why).
 */
export const SERVER_SHARED_VERDICTS = ['unreachable', 'reset', 'inconclusive'] as const;

/** One server to probe: an address, the name it was resolved from (none when given as an address), a port. */
export interface ServerTarget {
  address: string;
  name?: string;
  port: number;
}

/** One connection of a server test as the initiator saw it. */
export interface ConnectionObservations {
  /** What the connection is for in its test ('probe', 'control', 'plain', 'ecn', 'cookie', 'data', ...). */
  role: string;
  local: { address: string; port: number };
  isn: number;
  sent: Observed[];
  received: Observed[];
  /** Facts the script recorded for the judge. */
  notes: Record<string, unknown>;
}

/** Everything the initiator saw of one server test: the judge's input. */
export interface ServerObservations {
  name: string;
  target: ServerTarget;
  /** In the order they were opened. */
  connections: ConnectionObservations[];
  notes: Record<string, unknown>;
}

export interface ServerRunContext {
  target: ServerTarget;
  /**
   * A fresh connection to the target (its own local port and ISN). Its SYNs wait for the scan's global
   * SYN rate and its first SYN for the target's politeness gap. Scripts open connections one after
   * another, never two at once, and end each one (ScanConnection.reset or finish).
   */
  open(role: string): ScanConnection;
  /** What a client sends first on this port: an HTTP request on any port but 443, a TLS ClientHello on 443. */
  request(): Uint8Array;
}

export interface ServerTest {
  /** `server-...`. */
  name: string;
  /** One sentence: what is sent (`mbprobe-initiator list`, `scan --dry-run`). */
  sends: string;
  /** Its own verdicts; the first means "supported" / "no interference". */
  verdicts: readonly string[];
  /** Verdicts that rest on an answer not arriving (loss can fake them): published once a second run agrees, or from a run without loss (initiator/confirm.ts). */
  absenceVerdicts: readonly string[];
  /** The connections one run opens at most, in words (what `scan --dry-run` lists per target). */
  connections: readonly string[];
  run(context: ServerRunContext): Promise<void>;
  judge(observations: ServerObservations): Judgement;
}

export function allServerVerdicts(test: Pick<ServerTest, 'verdicts'>): string[] {
  return [...test.verdicts, ...SERVER_SHARED_VERDICTS];
}
