/**
 * `mbprobe-initiator locate` across multi-hop lab paths (lab/hops.ts): initiator — four hops, one of
 * them the profile's middlebox — responder. Every profile is placed at a hop of its own (1 to 4 in
 * turn), the real responder and initiator run, and every interference verdict must be localised
 * between that hop and the next (the box quotes before its own rules), or be a proxy at that hop, or
 * not localisable for the right reason (a NAT's translations, the reverse path). Then IPv6, routers
 * quoting 28 bytes and MPLS routers, and routers left at the kernel's ICMP rate limits.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accepts, CLEAN, EXPECTED, expectedVerdict } from '../../lab/expectations.js';
import { createLab, locateAcrossLab, PROFILES, removeStaleLabs, type LocatedTest } from '../../lab/index.js';
import { Store } from '../../shared/store.js';

const HOPS = 4;
const NAT_PROFILES = new Set(['nat', 'nat-keep-port', 'port-rewrite']);
const PROXY_PROFILES = new Set(['synproxy', 'split-proxy', 'resegmenting-proxy', 'http-intercept', 'http-intercept-error', 'tls-passthrough']);
/** The ports a profile acts on differently (per-port expectations), else one port stands for all. */
const portsOf = (profile: string): number[] => {
  const perPort = Object.values(EXPECTED[profile]).find((e) => typeof e !== 'string');
  return perPort ? Object.keys(perPort).map(Number) : [34343];
};

/** What a test's finding may be, for a box of `profile` at hop `k`. */
function acceptable(profile: string, l: LocatedTest, k: number): boolean {
  const { location } = l;
  if (l.test === 'synack-unknown-option') return location.status === 'not-localisable' && location.reason === 'reverse-path';
  if (location.status === 'changed' || location.status === 'dropped') return location.last?.ttl === k && location.first?.ttl === k + 1;
  if (location.status === 'proxy') return PROXY_PROFILES.has(profile) && location.proxy?.hop === k;
  if (location.status === 'not-localisable') return NAT_PROFILES.has(profile) && location.reason === 'nat';
  return false;
}

describe.skipIf(process.getuid?.() !== 0).sequential('locate across multi-hop lab paths', () => {
  let workDir: string;
  beforeAll(async () => {
    await removeStaleLabs();
    workDir = mkdtempSync(join(tmpdir(), 'mbprobe-locate-'));
  });
  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  const profiles = Object.keys(PROFILES).filter((p) => p !== 'clean');
  it.each(profiles.map((p, i) => [p, (i % HOPS) + 1] as const))('%s at hop %i of 4: every interference localised there', async (profile, k) => {
    const lab = await createLab({ profile, hops: { count: HOPS, middlebox: k, shortQuote: [], mpls: [], icmpRateLimit: 'off' } });
    try {
      const ports = portsOf(profile);
      const { located, initiatorDb } = await locateAcrossLab(lab, { workDir, ports });
      // Every verdict of interference the profile gives, and nothing else, was localised.
      const expectedCells = ports.flatMap((port) => Object.keys(CLEAN).filter((t) => expectedVerdict(profile, t, port) !== CLEAN[t]).map((t) => `${t}:${port}`));
      expect(located.map((l) => `${l.test}:${l.port}`).sort()).toEqual(expectedCells.sort());
      for (const l of located) expect({ cell: `${l.test}:${l.port}`, verdict: accepts(expectedVerdict(profile, l.test, l.port), l.verdict) }).toEqual({ cell: `${l.test}:${l.port}`, verdict: true });
      const wrong = located.filter((l) => !acceptable(profile, l, k)).map((l) => `${l.test}:${l.port} ${l.status}: ${l.summary}`);
      expect(wrong).toEqual([]);
      // The hops' addresses are the lab's: hop k's is the middlebox's left side.
      const box = lab.path![k - 1];
      for (const l of located.filter((x) => x.status === 'changed' || x.status === 'dropped')) expect(l.location.last?.address).toBe(box.left.address);
      // Stored: the finding in the test's detail, a row per hop.
      const store = Store.open(initiatorDb, { readonly: true });
      try {
        const run = store.runs().at(-1)!;
        const tests = store.tests(run.id).filter((t) => located.some((l) => l.test === t.name && l.port === t.port));
        for (const t of tests) {
          expect((t.detail as { location?: { status: string } }).location?.status).toBe(located.find((l) => l.test === t.name && l.port === t.port)!.status);
          if ((t.detail as { location: { status: string } }).location.status !== 'changed') continue;
          // Every router quoted its copy; the responder's row is the lowest TTL it received (5, or more if it missed some).
          const rows = store.hops(t.id);
          expect(rows.filter((h) => h.kind === 'time-exceeded').map((h) => [h.ttl, h.router])).toEqual(lab.path!.map((h) => [h.hop, h.left.address]));
          expect(rows.filter((h) => h.kind === 'responder').every((h) => h.ttl > HOPS && h.router === lab.addresses.responder)).toBe(true);
        }
      } finally {
        store.close();
      }
    } finally {
      await lab.destroy();
    }
  }, 120_000);

  it.each([['strip-options', 2], ['nat', 3], ['ecn-dscp-bleach', 1], ['split-proxy', 4], ['drop-syn-data', 3], ['rewrite-options', 2]] as const)('IPv6: %s at hop %i', async (profile, k) => {
    const lab = await createLab({ profile, hops: { count: HOPS, middlebox: k, shortQuote: [], mpls: [], icmpRateLimit: 'off' } });
    try {
      const tests = 'syn-mss,syn-unknown-option,syn-data,nat,data-unknown-option,ip-ecn,ip-dscp,seq-rewrite';
      const { located } = await locateAcrossLab(lab, { workDir, family: 6, tests, ports: [34343], label: `${profile}-v6` });
      // (Over IPv6 a proxy's own connection announces MSS 1440, not the 1460 of our SYN: syn-mss is modified there too.)
      const expectedCells = tests.split(',').filter((t) => expectedVerdict(profile, t, 34343) !== CLEAN[t]);
      expect(located.map((l) => l.test).sort()).toEqual(expect.arrayContaining(expectedCells));
      expect(located.length).toBeGreaterThanOrEqual(expectedCells.length);
      expect(located.filter((l) => !acceptable(profile, l, k)).map((l) => `${l.test} ${l.status}: ${l.summary}`)).toEqual([]);
      for (const l of located.filter((x) => x.status === 'changed')) expect(l.location.last?.address).toBe(lab.path![k - 1].left.address6);
    } finally {
      await lab.destroy();
    }
  }, 120_000);

  it('routers quoting 28 bytes: the options beyond them are "not visible" there, and the change is placed across them; an MPLS router\'s 128 bytes show it', async () => {
    for (const family of [4, 6] as const) {
      const lab = await createLab({ profile: 'strip-options', hops: { count: HOPS, middlebox: 2, shortQuote: [3], mpls: [4], icmpRateLimit: 'off' } });
      try {
        const { located } = await locateAcrossLab(lab, { workDir, family, tests: 'syn-unknown-option,data-unknown-option,syn-mptcp', ports: [34343], label: `short-mpls-v${family}` });
        expect(located).toHaveLength(3);
        for (const l of located) {
          expect({ test: l.test, status: l.status, last: l.location.last?.ttl, first: l.location.first?.ttl, unknown: l.location.unknown })
            .toEqual({ test: l.test, status: 'changed', last: 2, first: 4, unknown: [{ ttl: 3, why: 'not-visible' }] });
        }
      } finally {
        await lab.destroy();
      }
    }
    // Every hop quoting 28 bytes: the IP header's fields are still placed, a TCP flag is beyond every quote.
    const lab = await createLab({ profile: 'ecn-dscp-bleach', hops: { count: 3, middlebox: 2, shortQuote: [1, 2, 3], mpls: [], icmpRateLimit: 'off' } });
    try {
      const { located } = await locateAcrossLab(lab, { workDir, tests: 'ip-ecn,ip-dscp,syn-ecn', ports: [34343], label: 'all-short' });
      const by = Object.fromEntries(located.map((l) => [l.test, l.location]));
      expect(by['ip-ecn']).toMatchObject({ status: 'changed', last: { ttl: 2 }, first: { ttl: 3 } });
      expect(by['ip-dscp']).toMatchObject({ status: 'changed', last: { ttl: 2 }, first: { ttl: 3 } });
      expect(by['syn-ecn']).toMatchObject({ status: 'not-localisable', reason: 'quotes-too-short', fields: ['tcp.flags'] });
    } finally {
      await lab.destroy();
    }
  }, 180_000);

  it('routers at the kernel\'s ICMP rate limits: the hops that fell silent are named, and no finding is wrong', async () => {
    const k = 2;
    const lab = await createLab({ profile: 'rewrite-options', hops: { count: HOPS, middlebox: k, shortQuote: [], mpls: [], icmpRateLimit: 'kernel' } });
    try {
      const { located } = await locateAcrossLab(lab, { workDir, ports: [34343], label: 'kernel-ratelimit' });
      expect(located.length).toBe(Object.keys(EXPECTED['rewrite-options']).length);
      // Placed exactly, or across hops named as rate-limited, or not placed for that reason: never elsewhere.
      for (const l of located) {
        const { location } = l;
        if (l.test === 'synack-unknown-option') continue;
        if (location.status === 'changed') {
          expect(location.last?.ttl ?? 0).toBeLessThanOrEqual(k);
          expect(location.first!.ttl).toBeGreaterThanOrEqual(k + 1);
          const gap = Array.from({ length: location.first!.ttl - (location.last?.ttl ?? 0) - 1 }, (_, i) => (location.last?.ttl ?? 0) + i + 1);
          expect((location.unknown ?? []).map((u) => u.ttl)).toEqual(gap);
          expect((location.unknown ?? []).every((u) => u.why === 'rate-limited')).toBe(true);
        } else {
          expect(location).toMatchObject({ status: 'not-localisable', reason: 'rate-limited' });
        }
      }
      expect(located.some((l) => l.location.rateLimited.length > 0)).toBe(true);
    } finally {
      await lab.destroy();
    }
  }, 120_000);
});
