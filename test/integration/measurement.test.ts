import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOGUE } from '../../initiator/tests/index.js';
import { createLab, PROFILES, removeStaleLabs } from '../lab/lab.js';
import { measureAcrossLab, projectRoot, type LabVerdict } from '../lab/measure.js';

const PORTS = [34343, 80, 443];
const DEFAULT_CONCURRENCY = 3;

/** What no interference looks like: the first verdict of every test. */
const CLEAN: Record<string, string> = {
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
const EXPECTED: Record<string, Record<string, string>> = {
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

const table = (verdicts: LabVerdict[]): Record<string, string> => Object.fromEntries(verdicts.map((v) => [`${v.test}:${v.port}`, v.verdict]));
const expectedTable = (profile: string, tests: readonly string[] = Object.keys(CLEAN)): Record<string, string> =>
  Object.fromEntries(PORTS.flatMap((port) => tests.map((test) => [`${test}:${port}`, EXPECTED[profile][test] ?? CLEAN[test]])));

describe('the expectations', () => {
  it('cover every test of the catalogue and every lab profile', () => {
    expect(Object.keys(CLEAN).sort()).toEqual(CATALOGUE.map((t) => t.name).sort());
    expect(Object.keys(EXPECTED).sort()).toEqual(Object.keys(PROFILES).sort());
  });

  it('make every verdict of every test (other than the shared ones) appear on some profile', () => {
    const produced = new Set(Object.values(EXPECTED).flatMap((e) => Object.entries({ ...CLEAN, ...e }).map(([t, v]) => `${t}=${v}`)));
    const missing = CATALOGUE.flatMap((t) => t.verdicts.map((v) => `${t.name}=${v}`)).filter((tv) => !produced.has(tv));
    expect(missing).toEqual([]);
  });
});

describe.skipIf(process.getuid?.() !== 0).sequential('the real responder and initiator across the lab', () => {
  let workDir: string;
  beforeAll(async () => {
    await removeStaleLabs();
    workDir = mkdtempSync(join(tmpdir(), 'mbprobe-it-'));
  });
  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  it.each(Object.keys(EXPECTED))('%s gives exactly its expected verdicts on every test and port, at concurrency 1 and at the default', async (profile) => {
    const lab = await createLab({ profile });
    try {
      for (const concurrency of [DEFAULT_CONCURRENCY, 1]) {
        const m = await measureAcrossLab(lab, { workDir, concurrency });
        expect({ concurrency, verdicts: table(m.verdicts) }).toEqual({ concurrency, verdicts: expectedTable(profile) });
      }
    } finally {
      await lab.destroy();
    }
  }, 180_000);

  it('runs a user\'s test case from --test-file (the README example) across the lab', async () => {
    const lab = await createLab({ profile: 'clean' });
    try {
      const m = await measureAcrossLab(lab, { workDir, initiatorArgs: ['--test-file', join(projectRoot(), 'examples/syn-experimental-option.mjs')] });
      expect(m.verdicts.map((v) => `${v.test}:${v.port}=${v.verdict}`).sort()).toEqual(PORTS.map((p) => `syn-experimental-option:${p}=passed`).sort());
    } finally {
      await lab.destroy();
    }
  }, 60_000);

  // IPv6 paths: the handshake and option tests give the IPv4 verdicts.
  const V6_TESTS = ['syn-baseline', 'syn-mss', 'syn-unknown-option', 'synack-unknown-option', 'syn-data', 'seq-rewrite', 'nat', 'data-unknown-option'];
  it.each(['clean', 'nat', 'strip-options', 'mss-clamp'])('%s over IPv6 gives the same verdicts as over IPv4', async (profile) => {
    const lab = await createLab({ profile });
    try {
      const m = await measureAcrossLab(lab, { workDir, tests: V6_TESTS.join(','), family: 6 });
      expect(table(m.verdicts)).toEqual(expectedTable(profile, V6_TESTS));
    } finally {
      await lab.destroy();
    }
  }, 120_000);
});
