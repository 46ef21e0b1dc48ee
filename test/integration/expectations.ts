import type { LabVerdict } from '../../lab/index.js';

/**
 * The verdicts each lab profile must produce, test by test (the same on every port): what the
 * integration tests assert across the lab (measurement.test.ts) and what the collected results of
 * several paths must add up to (collection.test.ts).
 */

export const PORTS = [34343, 80, 443];

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

/** A transparent split-connection proxy answers and re-sends everything itself. */
const SPLIT_PROXY: Record<string, string> = {
  'syn-baseline': 'proxied',
  'syn-wscale': 'modified',
  'syn-timestamp': 'modified',
  'syn-unknown-option': 'removed',
  'syn-mptcp': 'removed',
  'syn-tfo': 'removed',
  'synack-unknown-option': 'removed',
  'syn-data': 'payload-removed',
  'syn-ecn': 'cleared',
  'seq-rewrite': 'rewritten-both',
  'window-rewrite': 'rewritten',
  'nat': 'address+port',
  'data-unknown-option': 'removed',
  'data-mptcp': 'removed',
  'data-timestamp': 'modified',
  'ip-ecn': 'bleached',
  'ip-dscp': 'bleached',
  'proactive-ack': 'acked-by-middlebox',
  'coalesce': 'coalesced',
  'seq-hole': 'held',
  'ack-hole': 'dropped',
  'retransmit-inconsistent': 'old-data',
  'sack-blocks': 'removed',
  'urgent-pointer': 'cleared',
  'reserved-bits': 'cleared',
};

/** Per profile: the verdicts that differ from the clean path (the same on ports 34343, 80 and 443). */
export const EXPECTED: Record<string, Record<string, string>> = {
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
};

export const table = (verdicts: LabVerdict[]): Record<string, string> => Object.fromEntries(verdicts.map((v) => [`${v.test}:${v.port}`, v.verdict]));
export const expectedTable = (profile: string, tests: readonly string[] = Object.keys(CLEAN)): Record<string, string> =>
  Object.fromEntries(PORTS.flatMap((port) => tests.map((test) => [`${test}:${port}`, EXPECTED[profile][test] ?? CLEAN[test]])));
