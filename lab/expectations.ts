import { TEST_PORTS } from '../shared/ports.js';
import type { LabVerdict } from './measure.js';

/**
 * The verdicts each lab profile must produce, test by test and port by port: what the integration
 * tests assert across the lab (test/integration/measurement.test.ts), what the collected results of
 * several paths must add up to (collection.test.ts), and what scripts/soak holds lossy runs to.
 */

export const PORTS = TEST_PORTS;

/**
 * A test's verdict on a profile: the same on every port, or per port (unlisted ports: the clean
 * verdict). `a|b`: real software whose behaviour depends on a race the lab cannot fix (each such
 * entry says which); either is right, nothing else is.
 */
export type Expectation = string | Readonly<Partial<Record<number, string>>>;

/** What no interference looks like: the first verdict of every test. */
export const CLEAN: Record<string, string> = {
  'syn-baseline': 'ok',
  'syn-mss': 'passed',
  'syn-wscale': 'passed',
  'syn-sackperm': 'passed',
  'syn-timestamp': 'passed',
  'syn-unknown-option': 'passed',
  'syn-mptcp': 'passed',
  'syn-tfo': 'passed',
  'synack-unknown-option': 'passed',
  'syn-data': 'passed',
  'syn-ecn': 'passed',
  'seq-rewrite': 'unchanged',
  'window-rewrite': 'unchanged',
  nat: 'none',
  'data-unknown-option': 'passed',
  'data-mptcp': 'passed',
  'data-timestamp': 'passed',
  'ip-ecn': 'passed',
  'ip-dscp': 'passed',
  'proactive-ack': 'none',
  split: 'intact',
  coalesce: 'intact',
  'seq-hole': 'passed',
  'ack-hole': 'passed',
  'retransmit-inconsistent': 'new-data',
  'sack-blocks': 'passed',
  'urgent-pointer': 'passed',
  'reserved-bits': 'passed',
};

/**
 * What a proxy terminating the client's connection does to everything that crosses it over its own
 * connection to the server: a new handshake (its own SYN, sequence numbers, window, no unknown
 * options) and the data re-sent by its own stack.
 */
const RELAYED: Record<string, string> = {
  'syn-baseline': 'proxied',
  'syn-data': 'payload-removed',
  'seq-rewrite': 'rewritten-both',
  'window-rewrite': 'rewritten',
  'data-unknown-option': 'removed',
  'data-mptcp': 'removed',
  'data-timestamp': 'modified',
  'ip-ecn': 'bleached',
  'ip-dscp': 'bleached',
  'proactive-ack': 'acked-by-middlebox',
  'coalesce': 'coalesced',
  'seq-hole': 'held',
  'reserved-bits': 'cleared',
};

/** A transparent split-connection proxy answers and re-sends everything itself, at once. */
const SPLIT_PROXY: Record<string, Expectation> = {
  ...RELAYED,
  'syn-wscale': 'modified',
  'syn-timestamp': 'modified',
  'syn-unknown-option': 'removed',
  'syn-mptcp': 'removed',
  'syn-tfo': 'removed',
  'synack-unknown-option': 'removed',
  'syn-ecn': 'cleared',
  'nat': 'address+port',
  'ack-hole': 'dropped',
  'retransmit-inconsistent': 'old-data',
  'sack-blocks': 'removed',
  'urgent-pointer': 'cleared',
};

/** A profile that acts differently per port: each port's table of differing verdicts (unlisted ports: clean). */
function perPort(tables: Record<number, Record<string, Expectation>>): Record<string, Expectation> {
  const out: Record<string, Record<number, string>> = {};
  for (const [port, table] of Object.entries(tables)) {
    for (const [test, e] of Object.entries(table)) (out[test] ??= {})[Number(port)] = typeof e === 'string' ? e : e[Number(port)] ?? CLEAN[test];
  }
  return out;
}

/** Tests whose probe is a SYN (or a handshake): behind a proxy that connects to the server only later, it never gets there. */
const HANDSHAKE_ONLY = ['syn-mss', 'syn-wscale', 'syn-sackperm', 'syn-timestamp', 'syn-unknown-option', 'syn-mptcp', 'syn-tfo', 'synack-unknown-option', 'syn-ecn', 'nat', 'sack-blocks'];
const intercepted = (tests: readonly string[]): Record<string, string> => Object.fromEntries(tests.map((t) => [t, 'intercepted']));

/**
 * A proxy that completes the handshake itself and connects to the server once a whole request (or
 * ClientHello) arrived: the handshake tests never reach the responder; the data tests reach it over
 * the proxy's own connection, as across a split-connection proxy.
 */
const LAZY_PROXY: Record<string, string> = {
  ...intercepted(HANDSHAKE_ONLY),
  ...RELAYED,
  // conntrack-invalid (an ACK of data never sent), the probe is not redirected to the proxy: it reaches the responder as sent
  'ack-hole': 'passed',
};

/** Per profile: the verdicts that differ from the clean path. */
export const EXPECTED: Record<string, Record<string, Expectation>> = {
  clean: {},
  nat: {
    'nat': 'address+port',
    'ack-hole': 'dropped',
  },
  'nat-keep-port': {
    'nat': 'address',
    'ack-hole': 'dropped',
  },
  'port-rewrite': {
    'nat': 'port',
    'ack-hole': 'dropped',
  },
  'strip-options': {
    'syn-unknown-option': 'removed',
    'syn-mptcp': 'removed',
    'syn-tfo': 'removed',
    'synack-unknown-option': 'removed',
    'data-unknown-option': 'removed',
    'data-mptcp': 'removed',
  },
  'strip-timestamps-sack': {
    'syn-sackperm': 'removed',
    'syn-timestamp': 'removed',
    'data-timestamp': 'removed',
  },
  'mss-clamp': {
    'syn-mss': 'modified',
  },
  'drop-syn-data': {
    'syn-data': 'dropped',
  },
  synproxy: {
    'syn-baseline': 'proxied',
    'syn-timestamp': 'modified',
    'syn-unknown-option': 'removed',
    'syn-mptcp': 'removed',
    'syn-tfo': 'removed',
    'synack-unknown-option': 'removed',
    'syn-data': 'payload-removed',
    'syn-ecn': 'cleared',
    'seq-rewrite': 'rewritten-reverse',
    'window-rewrite': 'rewritten',
    'data-timestamp': 'modified',
    'ack-hole': 'dropped',
    'sack-blocks': 'translated',
  },
  'split-proxy': SPLIT_PROXY,
  'ecn-dscp-bleach': {
    'syn-ecn': 'cleared',
    'ip-ecn': 'bleached',
    'ip-dscp': 'bleached',
  },
  'stateful-firewall': {
    'ack-hole': 'dropped',
  },
  'strip-syn-options': {
    'syn-mss': 'removed',
    'syn-wscale': 'removed',
  },
  'dscp-ecn-remark': {
    'ip-ecn': 'changed',
    'ip-dscp': 'remarked',
  },
  // The same relay, with MSS 536 toward the responder: it also re-cuts segments and announces a smaller MSS.
  'resegmenting-proxy': { ...SPLIT_PROXY, 'syn-mss': 'modified', split: 'split' },
  'rewrite-isn-forward': {
    'seq-rewrite': 'rewritten-forward',
  },
  'rewrite-isn-reverse': {
    'seq-rewrite': 'rewritten-reverse',
    'sack-blocks': 'untranslated',
  },
  'rewrite-isn-reverse-sack': {
    'seq-rewrite': 'rewritten-reverse',
    'sack-blocks': 'translated',
  },
  'rewrite-options': {
    'syn-mss': 'modified',
    'syn-wscale': 'modified',
    'syn-sackperm': 'modified',
    'syn-timestamp': 'modified',
    'syn-unknown-option': 'modified',
    'syn-mptcp': 'modified',
    'syn-tfo': 'modified',
    'synack-unknown-option': 'modified',
    'data-unknown-option': 'modified',
    'data-mptcp': 'modified',
    'data-timestamp': 'modified',
  },
  'rewrite-window': {
    'window-rewrite': 'rewritten',
  },
  'rewrite-clear-urg': {
    'urgent-pointer': 'cleared',
    'reserved-bits': 'cleared',
  },
  normalizer: {
    'ack-hole': 'corrected',
    'retransmit-inconsistent': 'old-data',
  },
  'resizing-normalizer': {
    'retransmit-inconsistent': 'resized',
  },
  // squid forwards a request only while its client waits for the answer; the first, 100-byte segment of
  // retransmit-inconsistent is not a whole request, and the URG byte is taken out of the stream
  'http-intercept': perPort({ 80: { ...LAZY_PROXY, 'retransmit-inconsistent': 'intercepted', 'urgent-pointer': 'cleared' } }),
  // tinyproxy answers every request with its own error page: nothing reaches the responder on 80
  'http-intercept-error': perPort({
    80: {
      ...intercepted(Object.keys(CLEAN)),
      'syn-baseline': 'proxied',
      'proactive-ack': 'acked-by-middlebox',
      'ack-hole': 'passed',
    },
  }),
  // 34343: a TCP load balancer, like a split-connection proxy; 443: passthrough once a ClientHello
  // arrived (the URG byte, taken out of the stream, leaves it incomplete)
  'tls-passthrough': perPort({
    // HAProxy reads up to the urgent mark and closes; when the bytes after the mark are still unread
    // in its socket by then, the kernel answers the close with a RST (about 1 run in 5 here).
    34343: { ...SPLIT_PROXY, 'urgent-pointer': 'cleared|reset' },
    443: { ...LAZY_PROXY, 'retransmit-inconsistent': 'old-data', 'urgent-pointer': 'intercepted' },
  }),
};

/** What `profile` must give for `test` on `port`. */
export function expectedVerdict(profile: string, test: string, port: number): string {
  const e = EXPECTED[profile]?.[test];
  if (e === undefined) return CLEAN[test];
  return typeof e === 'string' ? e : (e[port] ?? CLEAN[test]);
}

/** Is `verdict` what `expected` allows (one verdict, or alternatives `a|b`)? */
export const accepts = (expected: string, verdict: string): boolean => expected.split('|').includes(verdict);

/** The expected table with each `a|b` cell replaced by the measured verdict when that is one of them: for exact comparison. */
export const resolveAlternatives = (expected: Record<string, string>, measured: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(expected).map(([key, e]) => [key, e.includes('|') && measured[key] !== undefined && accepts(e, measured[key]) ? measured[key] : e]));

export const table = (verdicts: LabVerdict[]): Record<string, string> => Object.fromEntries(verdicts.map((v) => [`${v.test}:${v.port}`, v.verdict]));
export const expectedTable = (profile: string, tests: readonly string[] = Object.keys(CLEAN), ports: readonly number[] = PORTS): Record<string, string> =>
  Object.fromEntries(ports.flatMap((port) => tests.map((test) => [`${test}:${port}`, expectedVerdict(profile, test, port)])));
