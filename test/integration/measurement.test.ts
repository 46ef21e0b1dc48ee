import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOGUE } from '../../initiator/catalogue/index.js';
import { createLab, PROFILES, removeStaleLabs } from '../../lab/index.js';
import { measureAcrossLab, projectRoot } from '../../lab/index.js';
import { CLEAN, EXPECTED, expectedTable, PORTS, resolveAlternatives, table } from '../../lab/expectations.js';

import { DEFAULT_CONCURRENCY } from '../../initiator/schedule.js';
import { tokenable } from '../../initiator/runner.js';

/**
 * The profiles also run at --concurrency 1: every way the scheduler attributes flows (by flow, ISN,
 * port, and only-test behind boxes that rewrite them or answer for the responder). The other
 * profiles change what a path does to segments, not how flows are attributed; MBPROBE_IT_SEQUENTIAL=all
 * runs every profile both ways (scripts/bench-paths.ts compares the two on long paths).
 */
const SEQUENTIAL_PROFILES = new Set(['clean', 'nat', 'port-rewrite', 'rewrite-isn-forward', 'synproxy', 'split-proxy', 'resegmenting-proxy', 'http-intercept', 'http-intercept-error', 'tls-passthrough']);
const SEQUENTIAL_TOO = (profile: string): boolean => process.env.MBPROBE_IT_SEQUENTIAL === 'all' || SEQUENTIAL_PROFILES.has(profile);

describe('the expectations', () => {
  it('cover every test of the catalogue and every lab profile', () => {
    expect(Object.keys(CLEAN).sort()).toEqual(CATALOGUE.map((t) => t.name).sort());
    expect(Object.keys(EXPECTED).sort()).toEqual(Object.keys(PROFILES).sort());
    expect([...SEQUENTIAL_PROFILES].filter((p) => !(p in PROFILES))).toEqual([]);
  });

  it('make every verdict of every test (other than the shared ones) appear on some profile', () => {
    const produced = new Set(Object.keys(EXPECTED).flatMap((profile) => Object.entries(expectedTable(profile)).flatMap(([key, v]) => v.split('|').map((one) => `${key.split(':')[0]}=${one}`))));
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

  it.each(Object.keys(EXPECTED))('%s gives exactly its expected verdicts on every test and port, at the default concurrency (and at 1 where attribution differs)', async (profile) => {
    const lab = await createLab({ profile });
    try {
      for (const concurrency of SEQUENTIAL_TOO(profile) ? [DEFAULT_CONCURRENCY, 1] : [DEFAULT_CONCURRENCY]) {
        const m = await measureAcrossLab(lab, { workDir, concurrency });
        const measured = table(m.verdicts);
        expect({ concurrency, verdicts: measured }).toEqual({ concurrency, verdicts: resolveAlternatives(expectedTable(profile), measured) });
        if (profile === 'split-proxy') {
          // Behind the relay, each test that can carry its token was told apart by it (none waited its
          // turn in the port's chain), the others by the chain.
          const rule = (v: (typeof m.verdicts)[number]): string => String((v.detail.attribution as string[] | undefined)?.at(-1) ?? '').split(' by ').at(-1)!;
          const byTest = m.verdicts.filter((v) => v.test !== CATALOGUE[0].name).map((v) => `${v.test}:${v.port}=${rule(v)}`).sort();
          const expected = m.verdicts.filter((v) => v.test !== CATALOGUE[0].name).map((v) => `${v.test}:${v.port}=${tokenable(CATALOGUE.find((t) => t.name === v.test)!) ? 'token' : 'only-test'}`).sort();
          expect({ concurrency, attribution: byTest }).toEqual({ concurrency, attribution: expected });
        }
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

  it('claims no interference on a clean path losing 10% each way with 30 ms of jitter (scripts/soak repeats it)', async () => {
    const lab = await createLab({ profile: 'clean', wan: 'delay=20ms,jitter=30ms,loss=10%' });
    try {
      const m = await measureAcrossLab(lab, { workDir });
      const clean = expectedTable('clean');
      const claimed = m.verdicts.filter((v) => v.verdict !== 'inconclusive' && !(clean[`${v.test}:${v.port}`] ?? '').split('|').includes(v.verdict)).map((v) => `${v.test}:${v.port}=${v.verdict}`);
      expect(m.verdicts.length).toBe(Object.keys(clean).length);
      expect(claimed).toEqual([]);
    } finally {
      await lab.destroy();
    }
  }, 120_000);

  // IPv6 paths: the handshake and option tests give the IPv4 verdicts.
  const V6_TESTS = ['syn-baseline', 'syn-mss', 'syn-unknown-option', 'synack-unknown-option', 'syn-data', 'seq-rewrite', 'nat', 'data-unknown-option'];
  it.each(['clean', 'nat', 'strip-options', 'mss-clamp', 'http-intercept'])('%s over IPv6 gives the same verdicts as over IPv4', async (profile) => {
    const lab = await createLab({ profile });
    try {
      const m = await measureAcrossLab(lab, { workDir, tests: V6_TESTS.join(','), family: 6 });
      const measured = table(m.verdicts);
      expect(measured).toEqual(resolveAlternatives(expectedTable(profile, V6_TESTS), measured));
    } finally {
      await lab.destroy();
    }
  }, 120_000);
});
