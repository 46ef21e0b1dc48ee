/**
 * The real responder under load in the lab (the figures are in npm run bench; these check outcomes,
 * not timing): the capture's losses are counted exactly (the kernel's PACKET_STATISTICS), a volunteer
 * measuring while strangers flood the responder's ports gets no false verdict, and 50 volunteers at
 * once, half of them behind a NAT, get every verdict a run alone gets, none inconclusive.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandExists, createLab, removeStaleLabs } from '../../lab/index.js';
import { addCrowdAddresses, crowdProfile, runCrowd, verdictsOf } from '../../lab/crowd.js';
import { flood, responderMetrics, startMbprobeResponder } from '../../lab/load.js';
import { expectedTable, resolveAlternatives, table } from '../../lab/expectations.js';
import { runInitiator } from '../../lab/measure.js';

const canRun = process.getuid?.() === 0 && commandExists('cc');

describe.skipIf(!canRun).sequential('the responder under load, across the lab', () => {
  let dir: string;
  beforeAll(async () => {
    await removeStaleLabs();
    dir = mkdtempSync(join(tmpdir(), 'mbprobe-load-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('counts every packet its capture lost: delivered + dropped by the kernel + dropped by its queue = what passed the filter', async () => {
    const lab = await createLab({ profile: 'clean' });
    try {
      // 1 MiB on "any": a handful of 64 KiB ring slots, so a flood overflows it.
      const responder = await startMbprobeResponder(lab, join(dir, 'tiny.sqlite'), ['--iface', 'any', '--capture-buffer', '1']);
      try {
        await lab.exec(lab.namespaces.responder, ['nft', 'add table inet count\nadd chain inet count pre { type filter hook prerouting priority raw - 20; policy accept; }\nadd counter inet count seen\nadd rule inet count pre tcp dport { 34343, 80, 443 } counter name seen']);
        const sent = await flood(lab, { flows: [], rate: 40_000, seconds: 2, junk: 1 });
        await new Promise((r) => setTimeout(r, 1000));
        const seen = Number(/packets (\d+)/.exec((await lab.exec(lab.namespaces.responder, ['nft', 'list', 'counter', 'inet', 'count', 'seen'])).stdout)![1]);
        const m = await responderMetrics(lab);
        const kernelDrops = m['mbprobe_responder_capture_dropped_total{where="kernel"}'];
        expect(seen).toBe(sent.sent);
        expect(m.mbprobe_responder_capture_packets_total).toBe(seen);
        expect(kernelDrops).toBeGreaterThan(0);
        expect(m['mbprobe_responder_segments_total{outcome="received"}'] + kernelDrops + m['mbprobe_responder_capture_dropped_total{where="queue"}']).toBe(seen);
        expect(m['mbprobe_responder_segments_total{outcome="unattributed"}']).toBe(m['mbprobe_responder_segments_total{outcome="received"}']);
        expect(m.mbprobe_responder_unattributed_kept).toBe(1000);
      } finally {
        await responder.stop();
      }
      expect(responder.stderr()).toMatch(/capture: \d+ packets delivered, [1-9]\d* dropped by the kernel \(ring buffer full\)/);
    } finally {
      await lab.destroy();
    }
  }, 120_000);

  it('claims no interference on a clean path while strangers flood the responder\'s ports with SYNs and junk (a public host): a stranger\'s SYN taken for a test\'s is displaced by the test\'s own', async () => {
    const lab = await createLab({ profile: 'clean' });
    try {
      // The flood's answers are dropped where they arrive, the volunteer's are not (flood() keeps this table).
      await lab.exec(lab.namespaces.initiator, ['nft', `add table inet mbprobe_flood\nadd chain inet mbprobe_flood prerouting { type filter hook prerouting priority raw - 10; policy accept; }\nadd counter inet mbprobe_flood answers\nadd rule inet mbprobe_flood prerouting ip saddr ${lab.addresses.responder} ip daddr != ${lab.addresses.initiator} tcp sport { 34343, 80, 443 } tcp flags & (syn | ack) == syn | ack counter name answers drop`]);
      const responder = await startMbprobeResponder(lab, join(dir, 'strangers.sqlite'));
      try {
        // 20,000 segments/s from 255 addresses to 34343, 80 and 443: a sixth of them SYNs, a quarter malformed.
        const flooding = flood(lab, { flows: [], rate: 20_000, seconds: 12, junk: 1 });
        await new Promise((r) => setTimeout(r, 1000));
        const run = await runInitiator(lab, join(dir, 'volunteer.sqlite'), { label: 'volunteer' });
        const sent = await flooding;
        expect(run.code, run.stderr).toBe(0);
        const measured = table(run.verdicts);
        const expected = resolveAlternatives(expectedTable('clean'), measured);
        // Every verdict is the clean path's; an overloaded moment may leave one inconclusive, never a wrong one.
        const wrong = Object.entries(measured).filter(([key, verdict]) => verdict !== expected[key] && verdict !== 'inconclusive');
        // (each with its detail: the attribution and the runs, so that a failure says why)
        expect(wrong.map(([key, verdict]) => `${key} ${verdict} ${JSON.stringify(run.verdicts.find((v) => `${v.test}:${v.port}` === key)?.detail)}`)).toEqual([]);
        expect(Object.values(measured).filter((v) => v === 'inconclusive').length).toBeLessThanOrEqual(3);
        expect(Object.keys(measured)).toHaveLength(Object.keys(expected).length);
        // The strangers did reach the tests: some SYN was taken for a test's before its own displaced it.
        expect(sent.sent).toBeGreaterThan(100_000);
        expect(run.verdicts.some((v) => Array.isArray(v.detail.displacedFlows))).toBe(true);
      } finally {
        await responder.stop();
      }
    } finally {
      await lab.destroy();
    }
  }, 180_000);

  it('gives 50 volunteers at once (25 behind a NAT) exactly the verdicts each gets alone, none inconclusive', async () => {
    const lab = await createLab({ profile: crowdProfile });
    try {
      const addresses = await addCrowdAddresses(lab, 50, 25);
      const responder = await startMbprobeResponder(lab, join(dir, 'crowd.sqlite'));
      try {
        const alone = { routed: await runCrowd(lab, [addresses.routed[0]]), natted: await runCrowd(lab, [addresses.natted[0]]) };
        const reference = { routed: verdictsOf(alone.routed.verdicts, addresses.routed[0]), natted: verdictsOf(alone.natted.verdicts, addresses.natted[0]) };
        // Alone, each gives its path's expected table: routed like the clean path, behind the NAT like the nat profile.
        expect(reference.routed).toEqual(resolveAlternatives(expectedTable('clean'), reference.routed));
        expect(reference.natted).toEqual(resolveAlternatives(expectedTable('nat'), reference.natted));
        const together = await runCrowd(lab, [...addresses.routed, ...addresses.natted]);
        expect(together.code, together.stderr).toBe(0);
        const differences = [...addresses.routed, ...addresses.natted].flatMap((address) => {
          const want = addresses.natted.includes(address) ? reference.natted : reference.routed;
          const got = verdictsOf(together.verdicts, address);
          const why = (key: string) => together.verdicts.find((v) => v.address === address && `${v.test}:${v.port}` === key)?.why ?? '';
          return Object.keys(want).filter((key) => got[key] !== want[key]).map((key) => `${address} ${key}: ${got[key]} (alone: ${want[key]}) ${why(key)}`);
        });
        expect(differences).toEqual([]);
        expect(together.verdicts).toHaveLength(50 * Object.keys(reference.routed).length);
        expect(together.verdicts.filter((v) => v.verdict === 'inconclusive')).toEqual([]);
        const m = await responderMetrics(lab);
        expect(m['mbprobe_responder_capture_dropped_total{where="kernel"}']).toBe(0);
        expect(m.mbprobe_responder_sessions_opened_total).toBe(52);
      } finally {
        await responder.stop();
      }
    } finally {
      await lab.destroy();
    }
  }, 600_000);
});
