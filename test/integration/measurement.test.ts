import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, removeStaleLabs } from '../lab/lab.js';
import { measureAcrossLab, projectRoot, type LabVerdict } from '../lab/measure.js';

const PORTS = [34343, 80, 443];
const TESTS = ['syn-baseline', 'syn-mss', 'syn-unknown-option', 'synack-unknown-option', 'syn-data', 'seq-rewrite', 'nat', 'data-unknown-option'];

/** What no interference looks like: the first verdict of every test. */
const CLEAN: Record<string, string> = {
  'syn-baseline': 'ok',
  'syn-mss': 'passed',
  'syn-unknown-option': 'passed',
  'synack-unknown-option': 'passed',
  'syn-data': 'passed',
  'seq-rewrite': 'unchanged',
  nat: 'none',
  'data-unknown-option': 'passed',
};

/** Per profile: the verdicts that must differ from the clean path, on every port. */
const EXPECTED: Record<string, Record<string, string>> = {
  clean: {},
  nat: { nat: 'address+port' },
  'strip-options': { 'syn-unknown-option': 'removed', 'synack-unknown-option': 'removed', 'data-unknown-option': 'removed' },
  'mss-clamp': { 'syn-mss': 'modified' },
  'drop-syn-data': { 'syn-data': 'dropped' },
  synproxy: { 'syn-baseline': 'proxied', 'seq-rewrite': 'rewritten-reverse', 'syn-unknown-option': 'removed', 'synack-unknown-option': 'removed', 'syn-data': 'payload-removed' },
  'split-proxy': {
    'syn-baseline': 'proxied', 'seq-rewrite': 'rewritten-both', nat: 'address+port', 'syn-unknown-option': 'removed',
    'synack-unknown-option': 'removed', 'syn-data': 'payload-removed', 'data-unknown-option': 'removed',
  },
};

const table = (verdicts: LabVerdict[]): Record<string, string> => Object.fromEntries(verdicts.map((v) => [`${v.test}:${v.port}`, v.verdict]));
const expectedTable = (profile: string): Record<string, string> =>
  Object.fromEntries(PORTS.flatMap((port) => TESTS.map((test) => [`${test}:${port}`, EXPECTED[profile][test] ?? CLEAN[test]])));

describe.skipIf(process.getuid?.() !== 0).sequential('the real responder and initiator across the lab', () => {
  let workDir: string;
  beforeAll(async () => {
    await removeStaleLabs();
    workDir = mkdtempSync(join(tmpdir(), 'mbprobe-it-'));
  });
  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  it.each(Object.keys(EXPECTED))('%s gives exactly its expected verdicts on every test and port', async (profile) => {
    const lab = await createLab({ profile });
    try {
      const m = await measureAcrossLab(lab, { workDir, tests: TESTS.join(',') });
      expect(table(m.verdicts)).toEqual(expectedTable(profile));
    } finally {
      await lab.destroy();
    }
  }, 120_000);

  it('runs a user\'s test case from --test-file (the README example) across the lab', async () => {
    const lab = await createLab({ profile: 'clean' });
    try {
      const m = await measureAcrossLab(lab, { workDir, initiatorArgs: ['--test-file', join(projectRoot(), 'examples/syn-experimental-option.mjs')] });
      expect(m.verdicts.map((v) => `${v.test}:${v.port}=${v.verdict}`).sort()).toEqual(PORTS.map((p) => `syn-experimental-option:${p}=passed`).sort());
    } finally {
      await lab.destroy();
    }
  }, 60_000);

  it.each(['clean', 'nat', 'strip-options', 'mss-clamp'])('%s over IPv6 gives the same verdicts as over IPv4', async (profile) => {
    const lab = await createLab({ profile });
    try {
      const m = await measureAcrossLab(lab, { workDir, tests: TESTS.join(','), family: 6 });
      expect(table(m.verdicts)).toEqual(expectedTable(profile));
    } finally {
      await lab.destroy();
    }
  }, 120_000);
});
