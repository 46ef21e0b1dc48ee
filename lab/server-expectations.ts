/**
 * What `mbprobe-initiator scan` must find in each lab built for it (lab/servers.ts): a server
 * configuration behind a path profile, its ports, and the verdict of every server test on every port.
 * test/integration/scan.test.ts asserts these exactly, over IPv4 and IPv6, at concurrency 1 and at the
 * default; together they produce every verdict of every server test.
 */
import { FEATURE_PORTS } from './servers.js';

/** test -> verdict, one port. */
export type PortVerdicts = Record<string, string>;

export interface ServerLabCase {
  /** How the case is named in test output. */
  name: string;
  /** The path (lab/profiles/). */
  profile: string;
  /** The servers (lab/servers.ts SERVER_CONFIGS). */
  config: string;
  /** port -> test -> verdict. */
  expected: Record<number, PortVerdicts>;
  /** Only these server tests (default: all). */
  tests?: string[];
}

/** A Linux TFO server with classic ECN on, across a plain router: what every port is unless it says otherwise. */
const TFO_SERVER: PortVerdicts = {
  'server-options': 'all',
  'server-tfo': 'data-accepted',
  'server-mptcp': 'not-supported',
  'server-ecn': 'negotiated',
  'server-accecn': 'classic-ecn',
  'server-unknown-option': 'works',
  'server-syn-data': 'ignored',
};

const allTests = (verdict: string): PortVerdicts => Object.fromEntries(Object.keys(TFO_SERVER).map((t) => [t, verdict]));
const p = FEATURE_PORTS;

export const SERVER_LAB_CASES: readonly ServerLabCase[] = [
  {
    name: 'features',
    profile: 'clean',
    config: 'features',
    expected: {
      [p.tfo]: TFO_SERVER,
      [p.mptcp]: { ...TFO_SERVER, 'server-tfo': 'not-supported', 'server-mptcp': 'supported' },
      [p.tfoNoCookie]: { ...TFO_SERVER, 'server-tfo': 'not-supported', 'server-syn-data': 'acked' },
      [p.tfoUnsharedKeys]: { ...TFO_SERVER, 'server-tfo': 'cookie-only' },
      // A closed or silent port: the first test finds it, the others are stored without probing.
      [p.closed]: allTests('reset'),
      [p.silent]: allTests('unreachable'),
      [p.dropUnknownOptions]: { ...TFO_SERVER, 'server-unknown-option': 'broken' },
      [p.dropEcnSyn]: { ...TFO_SERVER, 'server-ecn': 'ecn-broken', 'server-accecn': 'broken' },
      [p.dropEct]: { ...TFO_SERVER, 'server-ecn': 'ecn-broken' },
      [p.dropAeSyn]: { ...TFO_SERVER, 'server-accecn': 'broken' },
      [p.stripTsSack]: { ...TFO_SERVER, 'server-options': 'some', 'server-tfo': 'not-supported' },
      [p.stripAll]: { ...TFO_SERVER, 'server-options': 'none', 'server-tfo': 'not-supported' },
      [p.dropRequests]: { ...TFO_SERVER, 'server-ecn': 'inconclusive' },
    },
  },
  // Each test on its own (first on the port), so that each judges a closed and a silent port itself.
  ...Object.keys(TFO_SERVER).map((test): ServerLabCase => ({
    name: `features, ${test} alone on a closed and a silent port`,
    profile: 'clean',
    config: 'features',
    tests: [test],
    expected: { [p.closed]: { [test]: 'reset' }, [p.silent]: { [test]: 'unreachable' } },
  })),
  {
    name: 'plain',
    profile: 'clean',
    config: 'plain',
    expected: Object.fromEntries([80, 443].map((port) => [port, {
      ...TFO_SERVER, 'server-tfo': 'not-supported', 'server-ecn': 'not-negotiated', 'server-accecn': 'not-negotiated',
    }])),
  },
  {
    name: 'accecn',
    profile: 'clean',
    config: 'accecn',
    tests: ['server-accecn'],
    expected: { 80: { 'server-accecn': 'negotiated' } },
  },
  {
    name: 'features behind a router bleaching ECN',
    profile: 'ecn-dscp-bleach',
    config: 'features',
    expected: {
      [p.tfo]: { ...TFO_SERVER, 'server-ecn': 'not-negotiated', 'server-accecn': 'not-negotiated' },
      [p.mptcp]: { ...TFO_SERVER, 'server-tfo': 'not-supported', 'server-mptcp': 'supported', 'server-ecn': 'not-negotiated', 'server-accecn': 'not-negotiated' },
    },
  },
  {
    name: 'features behind a firewall dropping SYNs with data',
    profile: 'drop-syn-data',
    config: 'features',
    expected: {
      [p.tfo]: { ...TFO_SERVER, 'server-tfo': 'syn-data-broken', 'server-syn-data': 'broken' },
      [p.mptcp]: { ...TFO_SERVER, 'server-tfo': 'not-supported', 'server-mptcp': 'supported', 'server-syn-data': 'broken' },
    },
  },
  {
    name: 'features behind a firewall stripping unknown, MPTCP and TFO options',
    profile: 'strip-options',
    config: 'features',
    expected: {
      [p.tfo]: { ...TFO_SERVER, 'server-tfo': 'not-supported' },
      [p.mptcp]: { ...TFO_SERVER, 'server-tfo': 'not-supported' },
    },
  },
];

/** `test:port` -> verdict, the shape scans are compared in. */
export function verdictTable(rows: ReadonlyArray<{ test: string; port: number; verdict: string }>): Record<string, string> {
  return Object.fromEntries(rows.map((r) => [`${r.test}:${r.port}`, r.verdict]).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function expectedVerdictTable(c: ServerLabCase): Record<string, string> {
  return verdictTable(Object.entries(c.expected).flatMap(([port, tests]) => Object.entries(tests).map(([test, verdict]) => ({ test, port: Number(port), verdict }))));
}
