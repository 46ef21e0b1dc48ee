/**
 * Hop localisation in the results: `diffs` prints a localised test's hops (who answered each TTL,
 * how much each quoted, the diff rows, what was not visible), `export` puts the ICMP errors on an
 * interface of their own (pcapng, which Wireshark and tshark dissect with their quotes) and as lines
 * of the jsonl, `table --by-hop` counts paths by where the box is, and the report has a hop column
 * beside the paper table and the finding in each drill-down. On real lab errors (test/helpers/hops.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main as results } from '../../results/cli.js';
import { renderDiffs } from '../../results/commands/diffs.js';
import { exportJsonl, exportPcapng } from '../../results/commands/export.js';
import { positionOf, readHopTable } from '../../results/read/hops.js';
import { readPcapng } from '../../shared/pcapng.js';
import { Store } from '../../shared/store.js';
import type { StoredLocation } from '../../shared/store/queries.js';
import { addLocatedRun, fixtureHops } from '../helpers/hops.js';
import { installed } from '../helpers/tools.js';

const LOCATED = 'a0000000-0000-4000-8000-000000000001';
let dir: string;
let db: string;

/** A finished run of `label` with one interference result for `test`, localised as `location` (or not at all). */
function addResult(store: Store, id: string, label: string, test: string, verdict: string, location?: Record<string, unknown>): void {
  store.insertRun({ id, startedAt: `2026-11-03T10:00:0${id.slice(-1)}.000Z`, label, toolVersion: '0.1.0' });
  store.insertTest({ runId: id, seq: 0, name: test, port: 34343, startedAt: '2026-11-03T10:00:01.000Z', finishedAt: '2026-11-03T10:00:02.000Z', verdict, detail: location ? { location } : {}, segments: [], diffs: [] });
  store.finishRun(id, '2026-11-03T10:01:00.000Z');
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mbprobe-results-hops-'));
  db = join(dir, 'located.sqlite');
  const store = Store.open(db);
  // Paths: "located" (a box at hop 2 of a path whose responder is hop 5: the access network), a proxy
  // at hop 1, one behind a NAT, one at the last router, and one measured without --locate.
  addLocatedRun(store, LOCATED, 4, 'located');
  addResult(store, 'a0000000-0000-4000-8000-000000000002', 'proxied', 'syn-unknown-option', 'removed', { status: 'proxy', proxy: { hop: 1, address: null, answerTtl: 64 }, responderHop: 5, summary: 'the path ends at a proxy at hop 1' });
  addResult(store, 'a0000000-0000-4000-8000-000000000003', 'natted', 'nat', 'address+port', { status: 'not-localisable', reason: 'nat', summary: 'a NAT' });
  addResult(store, 'a0000000-0000-4000-8000-000000000004', 'last', 'syn-unknown-option', 'removed', { status: 'changed', last: { ttl: 4 }, first: { ttl: 5, responder: true }, responderHop: 5, summary: 'between hop 4 and the responder' });
  addResult(store, 'a0000000-0000-4000-8000-000000000005', 'unlocated', 'syn-unknown-option', 'removed');
  store.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const location = (l: Partial<StoredLocation>): StoredLocation => ({ status: 'changed', reason: null, lastTtl: null, firstTtl: null, firstIsResponder: false, proxyHop: null, responderHop: null, summary: null, ...l });

describe('where on the path', () => {
  it('the box is the last hop still showing the probe as sent, or a proxy\'s hop; positions by hop', () => {
    expect(positionOf(undefined)).toBe('not located');
    expect(positionOf(location({ lastTtl: null, firstTtl: 1 }))).toBe('first hop');
    expect(positionOf(location({ lastTtl: 1, firstTtl: 2, responderHop: 9 }))).toBe('first hop');
    expect(positionOf(location({ lastTtl: 3, firstTtl: 4, responderHop: 9 }))).toBe('access network');
    expect(positionOf(location({ lastTtl: 5, firstTtl: 6, responderHop: 9 }))).toBe('core');
    expect(positionOf(location({ lastTtl: 8, firstTtl: 9, firstIsResponder: true, responderHop: 9 }))).toBe('last hop');
    expect(positionOf(location({ status: 'dropped', lastTtl: 8, firstTtl: 9, responderHop: 9 }))).toBe('last hop');
    expect(positionOf(location({ status: 'dropped', lastTtl: 7, firstTtl: 8, responderHop: 9 }))).toBe('core');
    expect(positionOf(location({ status: 'proxy', proxyHop: 4, responderHop: 12 }))).toBe('core');
    expect(positionOf(location({ status: 'not-localisable', reason: 'nat' }))).toBe('not localisable');
    expect(positionOf(location({ status: 'unchanged', reason: 'not-reproduced' }))).toBe('not localisable');
  });

  it('table --by-hop counts paths per behaviour and position, in every format', async () => {
    const data = (() => {
      const store = Store.open(db, { readonly: true });
      try {
        return readHopTable(store);
      } finally {
        store.close();
      }
    })();
    expect(data.paths).toBe(5);
    const cells = Object.fromEntries(data.rows.map((r) => [`${r.test}=${r.verdict}`, Object.fromEntries(r.cells.map((c, i) => [data.positions[i], c.n]).filter(([, n]) => n))]));
    expect(cells).toEqual({
      'syn-unknown-option=removed': { 'first hop': 1, 'access network': 1, 'last hop': 1, 'not located': 1 },
      'nat=address+port': { 'not localisable': 1 },
    });
    let out = '';
    const io = { stdout: (t: string) => void (out += t), stderr: () => undefined };
    expect(await results(['table', db, '--by-hop'], io)).toBe(0);
    expect(out).toContain('| Test | Verdict | first hop | access network | core | last hop | not localisable | not located |');
    expect(out).toContain('| syn-unknown-option | removed | 1 / 4 (25.0%) | 1 / 4 (25.0%) | - | 1 / 4 (25.0%) | - | 1 / 4 (25.0%) |');
    out = '';
    expect(await results(['table', db, '--by-hop', '--format', 'csv'], io)).toBe(0);
    expect(out.split('\n')[0]).toBe('Test,Verdict,first hop,access network,core,last hop,not localisable,not located');
    out = '';
    expect(await results(['table', db, '--by-hop', '--format', 'json'], io)).toBe(0);
    expect(JSON.parse(out).rows).toHaveLength(2);
    expect(await results(['table', db, '--by-hop', '--group-by', 'label'], io)).toBe(2);
  });

  it('diffs prints each hop: who answered, how much it quoted, the diff rows, what it could not show', () => {
    const store = Store.open(db, { readonly: true });
    try {
      const text = renderDiffs(store, LOCATED, 'syn-unknown-option');
      const { hops } = fixtureHops(4);
      expect(text).toContain(`location: option.kind-200 changed between hop 2 (${hops[1].router}) and hop 4 (${hops[3].router}) (hop 3: not-visible)`);
      expect(text).toContain('hops: copies of the probe with TTL 1..N, and what each hop quoted of its copy');
      expect(text).toMatch(new RegExp(`hop 3 +${hops[2].router.replaceAll('.', '\\.')} +time exceeded, quoted 28 of 68 bytes: IP`));
      expect(text).toContain('not visible at this hop: tcp.ack, tcp.dataOffset, tcp.reserved, tcp.flags, tcp.window, tcp.checksum, tcp.urgentPointer, option');
      expect(text).toContain('option.kind-200: unknown-200');
      expect(text).toContain('[interference, replaced-by-nop]');
      // Rows of class expected hidden on request; the interference stays.
      const only = renderDiffs(store, LOCATED, 'syn-unknown-option', { interferenceOnly: true });
      expect(only).not.toContain('ip.ttl:');
      expect(only).toContain('replaced-by-nop');
    } finally {
      store.close();
    }
  });

  it('export: the errors on an interface of their own (pcapng) and as jsonl lines after the segments, frames agreeing', () => {
    const store = Store.open(db, { readonly: true });
    try {
      const pcap = readPcapng(exportPcapng(store, LOCATED));
      expect(pcap.interfaces.map((i) => i.name)).toEqual(['initiator', 'responder', 'hops']);
      const hopPackets = pcap.packets.filter((p) => p.interfaceId === 2);
      expect(hopPackets.map((p) => Buffer.from(p.data).toString('hex'))).toEqual(fixtureHops(4).hops.map((h) => Buffer.from(h.packet!).toString('hex')));
      expect(hopPackets[0].comments?.[0]).toMatch(/^location: option\.kind-200 changed between hop 2/);
      expect(hopPackets[2].comments).toContain('not visible at this hop: tcp.ack, tcp.dataOffset, tcp.reserved, tcp.flags, tcp.window, tcp.checksum, tcp.urgentPointer, option');
      const lines = exportJsonl(store, LOCATED).trim().split('\n').map((l) => JSON.parse(l) as { side: string; frame: number; ttl?: number; router?: string });
      expect(lines.filter((l) => l.side === 'hop').map((l) => [l.frame, l.ttl])).toEqual([[1, 1], [2, 2], [3, 3], [4, 4]]);
      if (installed('tshark')) {
        const file = join(dir, 'located.pcapng');
        writeFileSync(file, exportPcapng(store, LOCATED));
        const out = execFileSync('tshark', ['-r', file, '-T', 'fields', '-e', 'icmp.type', '-e', 'tcp.srcport'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
        expect(out.trim().split('\n').map((l) => l.split('\t')[0])).toEqual(['11', '11', '11', '11']);
      }
    } finally {
      store.close();
    }
  });

  it('the report: a hop column beside the paper table, the finding in the drill-down', async () => {
    const out = join(dir, 'report.html');
    expect(await results(['report', db, '--out', out], { stdout: () => undefined, stderr: () => undefined })).toBe(0);
    const html = readFileSync(out, 'utf8');
    expect(html).toContain('<th rowspan="2" class="where-h">Where on the path</th>');
    expect(html).toContain('<td class="where" data-test="syn-unknown-option" data-verdict="removed">first hop 1 · access network 1 · last hop 1 · not located 1</td>');
    expect(html).toContain('<td class="where" data-test="nat" data-verdict="address+port">not localisable 1</td>');
    expect(html).toMatch(/<dt>Where on the path<\/dt><dd class="where">option\.kind-200 changed between hop 2 \(198\.18\.\d+\.\d+\) and hop 4/);
  });
});
