import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main as initiator } from '../../initiator/cli.js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { anonymizeUpload, truncateAddress, volunteerAddresses } from '../../initiator/anonymize.js';
import { segmentsAndDiffs } from '../../initiator/runner.js';
import { latestFinishedRun, prepareSubmission } from '../../initiator/submit.js';
import { storeUpload } from '../../responder/collection.js';
import { startControlApi } from '../../responder/control-api.js';
import { ResponderService } from '../../responder/service.js';
import { Store } from '../../shared/store.js';
import { MAX_UPLOAD_BYTES, parseUpload, runToUpload, UploadError, type RunUpload } from '../../shared/upload.js';
import { decodePacket, encodePacket } from '../../shared/wire/packet.js';
import { TcpFlag } from '../../shared/wire/tcp.js';
import { observationsOf, recordings } from '../helpers/recordings.js';

/**
 * The collection path on recorded bytes: a run built from what the lab recorded behind a NAT (real
 * segments, real diffs), read as an upload, anonymised, validated and stored by the responder's
 * endpoint. Malformed, oversized, conflicting and duplicate submissions must leave the database
 * exactly as it was.
 */

const PROFILE = 'nat';
const START = '2026-11-01T10:00:00.000Z';

/** A finished initiator run in `store` made of the lab's recordings of one profile. */
function recordedRun(store: Store, profile = PROFILE, id = randomUUID()): string {
  const tests = recordings.filter((r) => r.profile === profile);
  const synOf = (side: 'initiator' | 'responder', dir: 'sent' | 'received'): string => {
    const s = tests[0].segments.find((x) => x.side === side && x.dir === dir)!;
    return decodePacket(Buffer.from(s.hex, 'hex')).ip!.src;
  };
  store.insertRun({
    id, startedAt: START, label: null, responder: '198.19.9.2', toolVersion: '0.1.0', tags: { network: 'lab' },
    hostInfo: { hostname: 'volunteer-laptop', platform: 'linux', kernel: '6.1.0', iface: 'ini0', source: synOf('initiator', 'sent'), observedAddress: synOf('responder', 'received') },
  });
  tests.forEach((r, seq) => {
    const { segments, diffs } = segmentsAndDiffs(observationsOf(r));
    const src = decodePacket(segments[0].bytes).ip!.src;
    store.insertTest({ runId: id, seq, name: r.name, port: r.port, startedAt: START, finishedAt: START, verdict: r.verdict, detail: { recordedOn: profile, from: `${src}:40000` }, segments, diffs });
  });
  store.finishRun(id, '2026-11-01T10:00:05.000Z');
  return id;
}

/** Every row of every table, hashed: equal digests = the database did not change. */
function digest(store: Store): string {
  const hash = createHash('sha256');
  for (const table of ['meta', 'runs', 'tests', 'segments', 'diffs']) {
    for (const row of store.db.prepare(`SELECT * FROM ${table} ORDER BY rowid`).raw(true).all()) hash.update(JSON.stringify(row, (_, v: unknown) => (Buffer.isBuffer(v) ? v.toString('hex') : v)));
  }
  return hash.digest('hex');
}

let volunteer: Store;
let runId: string;
let upload: RunUpload;

beforeAll(() => {
  volunteer = Store.open(':memory:');
  runId = recordedRun(volunteer);
  upload = runToUpload(volunteer, runId);
});
afterAll(() => volunteer.close());

describe('truncateAddress', () => {
  it.each([
    ['203.0.113.57', '203.0.113.0'],
    ['10.0.0.255', '10.0.0.0'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1::'],
    ['fd6d:6270:1::2', 'fd6d:6270:1::'],
    ['2001:db8::1', '2001:db8::'],
  ])('%s -> %s', (address, expected) => expect(truncateAddress(address)).toBe(expected));
});

describe('anonymizeUpload', () => {
  const addresses = (): string[] => volunteerAddresses(upload);

  it('finds both of the volunteer\'s addresses behind the NAT: its own and the one the responder saw', () => {
    expect(addresses()).toHaveLength(2);
    expect(addresses().every((a) => a.startsWith('198.'))).toBe(true);
  });

  it('leaves no volunteer address in any header or text, drops the hostname, and keeps every verdict', () => {
    const before = JSON.stringify(upload);
    const { upload: sent, replaced, headerFields } = anonymizeUpload(upload);
    expect(JSON.stringify(upload)).toBe(before); // the input is not changed
    expect(replaced.map((r) => r.as)).toEqual(addresses().map(truncateAddress));
    const text = JSON.stringify({ ...sent, tests: sent.tests.map((t) => ({ ...t, segments: [] })) });
    for (const address of addresses()) expect(text).not.toMatch(new RegExp(`(?<![0-9.])${address.replace(/\./g, '\\.')}(?![0-9])`));
    let segments = 0;
    for (const t of sent.tests) {
      for (const s of t.segments) {
        const ip = decodePacket(Buffer.from(s.bytes, 'base64')).ip!;
        expect(addresses()).not.toContain(ip.src);
        expect(addresses()).not.toContain(ip.dst);
        segments++;
      }
    }
    // Every segment has the volunteer on one end.
    expect(headerFields).toBe(segments);
    expect(sent.run.hostInfo.hostname).toBeUndefined();
    expect(sent.run.hostInfo.anonymized).toEqual({ ipv4Prefix: 24, ipv6Prefix: 48, hostname: 'removed' });
    expect(sent.tests.map((t) => t.verdict)).toEqual(upload.tests.map((t) => t.verdict));
    expect(sent.tests[0].detail).toMatchObject({ from: `${truncateAddress(decodePacket(Buffer.from(upload.tests[0].segments[0].bytes, 'base64')).ip!.src)}:40000` });
  });

  it('keeps every IP and TCP checksum exactly as valid (or invalid) as it was, and changes nothing but the address bytes', () => {
    const { upload: sent } = anonymizeUpload(upload);
    let compared = 0;
    upload.tests.forEach((t, i) => t.segments.forEach((s, j) => {
      const a = decodePacket(Buffer.from(s.bytes, 'base64'));
      const b = decodePacket(Buffer.from(sent.tests[i].segments[j].bytes, 'base64'));
      expect(b.checksums).toEqual(a.checksums);
      expect({ ...b.tcp, checksum: 0 }).toEqual({ ...a.tcp, checksum: 0 });
      expect(b.payload).toEqual(a.payload);
      compared++;
    }));
    expect(compared).toBeGreaterThan(100);
  });

  it('keeps a broken TCP checksum broken: the incremental update carries the error along', () => {
    const broken = structuredClone(upload);
    const bytes = Buffer.from(broken.tests[0].segments[0].bytes, 'base64');
    const ihl = (bytes[0] & 0x0f) * 4;
    bytes[ihl + 17] ^= 0x5a;
    broken.tests[0].segments[0].bytes = bytes.toString('base64');
    expect(decodePacket(bytes).checksums.tcp).toBe(false);
    const out = Buffer.from(anonymizeUpload(broken).upload.tests[0].segments[0].bytes, 'base64');
    expect(decodePacket(out).checksums).toEqual({ ip: true, tcp: false });
  });

  it('rewrites IPv6 headers too, past extension headers, keeping the TCP checksum valid', () => {
    const v6 = (extensions?: Uint8Array): string => Buffer.from(encodePacket({
      ip: { version: 6, trafficClass: 0, flowLabel: 7, hopLimit: 64, protocol: 6, src: '2001:db8:7:8::2', dst: 'fd6d:6270:1::2', ...(extensions ? { nextHeader: 60, extensions } : {}) },
      tcp: { srcPort: 40000, dstPort: 443, seq: 1, ack: 0, flags: TcpFlag.SYN, window: 65535 },
      payload: new Uint8Array(0),
    })).toString('base64');
    const crafted = structuredClone(upload);
    crafted.run.hostInfo = { source: '2001:db8:7:8::2' };
    // A destination-options header (next header TCP, length 0 = 8 bytes, PadN).
    crafted.tests[0].segments = [v6(), v6(Uint8Array.of(6, 0, 1, 4, 0, 0, 0, 0))].map((bytes) => ({ side: 'initiator', dir: 'sent', atUs: 1, bytes }));
    const out = anonymizeUpload(crafted);
    expect(out.headerFields).toBe(2);
    for (const s of out.upload.tests[0].segments) {
      const p = decodePacket(Buffer.from(s.bytes, 'base64'));
      expect(p.ip).toMatchObject({ src: '2001:db8:7::', dst: 'fd6d:6270:1::2' });
      expect(p.checksums.tcp).toBe(true);
    }
  });

  it('replaces whole addresses only, in IPv6 too', () => {
    const crafted = structuredClone(upload);
    crafted.run.hostInfo = { source: '10.0.0.2', observedAddress: '2001:db8:7:8::2' };
    crafted.tests[0].detail = { a: '10.0.0.2:80', b: '10.0.0.23', c: '110.0.0.2', d: '[2001:db8:7:8::2]:443', e: '2001:db8:7:8::23', f: '10.0.0.2|4000|80' };
    const out = anonymizeUpload(crafted).upload;
    expect(out.tests[0].detail).toEqual({ a: '10.0.0.0:80', b: '10.0.0.23', c: '110.0.0.2', d: '[2001:db8:7::]:443', e: '2001:db8:7:8::23', f: '10.0.0.0|4000|80' });
  });
});

describe('parseUpload', () => {
  it('accepts a real run, anonymised or not', () => {
    expect(parseUpload(JSON.parse(JSON.stringify(upload))).tests).toHaveLength(upload.tests.length);
    expect(() => parseUpload(JSON.parse(JSON.stringify(anonymizeUpload(upload).upload)))).not.toThrow();
  });

  const broken: Array<[string, (u: RunUpload) => unknown, RegExp]> = [
    ['another format', (u) => ({ ...u, format: 'mbprobe-run/9' }), /format/],
    ['no run id', (u) => ({ ...u, run: { ...u.run, id: 'x' } }), /run\.id/],
    ['an unfinished run', (u) => ({ ...u, run: { ...u.run, finishedAt: null } }), /run\.finishedAt/],
    ['a run posing as the responder\'s records', (u) => ({ ...u, run: { ...u.run, hostInfo: { role: 'responder' } } }), /role/],
    ['an unknown field', (u) => ({ ...u, extra: 1 }), /extra|Unrecognized/i],
    ['a diff pointing past the segments', (u) => { u.tests[0].diffs = [{ ...(u.tests.find((t) => t.diffs.length)!.diffs[0]), sentSegment: 999 }]; return u; }, /refers to segment 999/],
    ['a segment that is not base64', (u) => { u.tests[1].segments[0].bytes = 'not base64!'; return u; }, /base64/],
    ['a segment that is not an IP packet', (u) => { u.tests[1].segments[0].bytes = Buffer.alloc(30, 0x11).toString('base64'); return u; }, /not an IP packet/],
    ['two tests with one seq', (u) => { u.tests[1].seq = u.tests[0].seq; return u; }, /appears twice/],
    ['a huge detail', (u) => { u.tests[0].detail = 'x'.repeat(70_000); return u; }, /detail is/],
    ['a bad verdict name', (u) => { u.tests[0].verdict = '<b>ok</b>'; return u; }, /verdict/],
  ];
  it.each(broken)('refuses %s, saying where', (_, edit, reason) => {
    const error = (() => { try { parseUpload(edit(structuredClone(upload))); } catch (e) { return e; } })();
    expect(error).toBeInstanceOf(UploadError);
    expect((error as UploadError).message).toMatch(reason);
  });
});

describe('storeUpload', () => {
  let responder: Store;
  beforeEach(() => {
    responder = Store.open(':memory:');
  });
  afterEach(() => responder.close());

  it('stores a run so that it reads back as the same upload, and a resubmission once', () => {
    const sent = anonymizeUpload(upload).upload;
    expect(storeUpload(responder, sent)).toMatchObject({ outcome: 'stored', tests: sent.tests.length });
    expect(runToUpload(responder, runId)).toEqual(sent);
    const before = digest(responder);
    expect(storeUpload(responder, parseUpload(JSON.parse(JSON.stringify(sent))))).toMatchObject({ outcome: 'duplicate' });
    expect(digest(responder)).toBe(before);
  });

  it('refuses a different run under a stored id and keeps the stored one', () => {
    storeUpload(responder, upload);
    const before = digest(responder);
    const changed = structuredClone(upload);
    changed.tests[3].verdict = 'removed';
    expect(() => storeUpload(responder, changed)).toThrow(/already stored here with different content .*verdict/);
    expect(() => storeUpload(responder, anonymizeUpload(upload).upload)).toThrow(/run hostInfo differs/);
    expect(digest(responder)).toBe(before);
  });

  it('waits for another process writing to the same database instead of failing (responders sharing one file)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mbprobe-shared-'));
    const file = join(dir, 'shared.sqlite');
    Store.open(file).close();
    const shared = Store.open(file);
    try {
      // The other process takes the write lock, tells us, holds it for 300 ms, writes a run and commits.
      const holder = spawn(process.execPath, ['--input-type=module', '-e', `
        import Database from 'better-sqlite3';
        const db = new Database(${JSON.stringify(file)});
        db.exec('BEGIN IMMEDIATE');
        process.stdout.write('locked\\n');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
        db.prepare("INSERT INTO runs (id, started_at, tool_version) VALUES ('other', 'x', 't')").run();
        db.exec('COMMIT');
      `], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise<number | null>((resolve) => holder.once('exit', resolve));
      await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
      expect(storeUpload(shared, upload)).toMatchObject({ outcome: 'stored' });
      expect(await exited).toBe(0);
      expect(shared.runs().map((r) => r.id).sort()).toEqual(['other', runId].sort());
    } finally {
      shared.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes nothing of a run that fails half-way', () => {
    storeUpload(responder, anonymizeUpload(runToUpload(volunteer, recordedRun(volunteer, 'clean'))).upload);
    const before = digest(responder);
    const bad = structuredClone(upload);
    bad.tests[5].port = 70000; // past the schema: only the database's CHECK catches it
    expect(() => storeUpload(responder, bad)).toThrow(/CHECK constraint/);
    expect(digest(responder)).toBe(before);
  });
});

describe('POST /v1/runs', () => {
  let responder: Store;
  let api: Awaited<ReturnType<typeof startControlApi>>;
  let base: string;

  beforeAll(async () => {
    responder = Store.open(':memory:');
    responder.insertRun({ id: 'responder-log', startedAt: START, toolVersion: 't', hostInfo: { role: 'responder' } });
    const source = { onPacket() {}, close() {} };
    const service = new ResponderService({ ports: [34343], source: source as never, sinks: { 4: { send: async () => undefined, close() {} } }, store: responder, runId: 'responder-log' });
    api = await startControlApi({ port: 0, host: '127.0.0.1', service, ports: [34343], collection: responder, uploadsPerHour: 10 });
    base = `http://127.0.0.1:${api.port}/v1`;
  });
  afterAll(async () => {
    await api.close();
    responder.close();
  });

  const submit = async (body: string): Promise<{ status: number; body: { error?: string; outcome?: string } }> => {
    const response = await fetch(`${base}/runs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    return { status: response.status, body: await response.json() as { error?: string } };
  };

  it('stores a submitted run once, and refuses malformed, oversized and conflicting ones without touching the database', async () => {
    const sent = JSON.stringify(anonymizeUpload(upload).upload);
    expect(await submit(sent)).toMatchObject({ status: 201, body: { outcome: 'stored' } });
    const stored = digest(responder);
    expect(responder.tests(runId)).toHaveLength(upload.tests.length);

    expect(await submit(sent)).toMatchObject({ status: 200, body: { outcome: 'duplicate' } });
    expect(await submit('{"format":')).toMatchObject({ status: 400, body: { error: expect.stringMatching(/not valid JSON/) } });
    expect(await submit(JSON.stringify({ ...upload, tests: 'none' }))).toMatchObject({ status: 400, body: { error: expect.stringMatching(/tests/) } });
    const conflicting = structuredClone(anonymizeUpload(upload).upload);
    conflicting.tests[0].verdict = 'inconclusive';
    expect(await submit(JSON.stringify(conflicting))).toMatchObject({ status: 409, body: { error: expect.stringMatching(/different content/) } });
    expect(digest(responder)).toBe(stored);

    // Oversized, declared up front: refused before the body is read.
    const oversized = await new Promise<number>((resolve, reject) => {
      const req = request(`${base}/runs`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': MAX_UPLOAD_BYTES + 1 } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.write('{');
    });
    expect(oversized).toBe(413);
    // Oversized, streamed without a length: refused once the limit is passed.
    const streamed = await new Promise<{ status: number; error: string } | 'reset'>((resolve) => {
      const req = request(`${base}/runs`, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, error: (JSON.parse(text) as { error: string }).error }));
      });
      req.on('error', () => resolve('reset'));
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let written = 0;
      const pump = (): void => {
        while (written <= MAX_UPLOAD_BYTES + chunk.length) {
          written += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    expect(streamed).toMatchObject({ status: 413, error: expect.stringMatching(/exceeds the limit/) });
    expect(digest(responder)).toBe(stored);
  });

  it('mbprobe-initiator submit: a dry run prints exactly what would be sent; a real one stores it; a failure says how to retry', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mbprobe-submit-'));
    try {
      const file = join(dir, 'volunteer.sqlite');
      const own = Store.open(file);
      const id = recordedRun(own, 'clean');
      own.close();
      const io = () => {
        const c = { out: '', err: '' };
        return { c, io: { stdout: (t: string) => void (c.out += t), stderr: (t: string) => void (c.err += t) } };
      };
      const dry = io();
      const before = digest(responder);
      expect(await initiator(['submit', '--responder', '127.0.0.1', '--insecure', '--control-port', String(api.port), '--db', file, '--dry-run'], dry.io)).toBe(0);
      expect(dry.c.err).toContain(`Would submit run ${id} to 127.0.0.1:${api.port}:`);
      const shown = parseUpload(JSON.parse(dry.c.out));
      expect(shown.run.hostInfo.hostname).toBeUndefined();
      expect(digest(responder)).toBe(before);

      const real = io();
      expect(await initiator(['submit', '--responder', '127.0.0.1', '--insecure', '--control-port', String(api.port), '--db', file], real.io)).toBe(0);
      expect(real.c.err).toContain(`The responder stored run ${id}`);
      expect(runToUpload(responder, id)).toEqual(shown);

      const failed = io();
      expect(await initiator(['submit', '--responder', '127.0.0.1', '--insecure', '--control-port', '1', '--db', file, '--run', id], failed.io)).toBe(1);
      expect(failed.c.err).toMatch(new RegExp(`run ${id} was not submitted: .*cannot reach.*submit it later with: mbprobe-initiator submit --responder 127.0.0.1 --control-port 1 --insecure --db ${file} --run ${id}`));

      const none = io();
      expect(await initiator(['submit', '--responder', '127.0.0.1', '--insecure', '--db', join(dir, 'missing.sqlite')], none.io)).not.toBe(0);
      expect(none.c.err).toMatch(/No mbprobe database at/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('limits how many runs one address submits per hour', async () => {
    let status = 0;
    for (let i = 0; i < 10 && status !== 429; i++) status = (await submit('{}')).status;
    expect(status).toBe(429);
  });

  it('answers 404 when the responder does not collect', async () => {
    const source = { onPacket() {}, close() {} };
    const service = new ResponderService({ ports: [34343], source: source as never, sinks: { 4: { send: async () => undefined, close() {} } }, store: responder, runId: 'responder-log' });
    const off = await startControlApi({ port: 0, host: '127.0.0.1', service, ports: [34343] });
    try {
      const response = await fetch(`http://127.0.0.1:${off.port}/v1/runs`, { method: 'POST', body: '{}' });
      expect(response.status).toBe(404);
      expect(((await response.json()) as { error: string }).error).toMatch(/does not collect/);
    } finally {
      await off.close();
    }
  });
});

describe('what the volunteer is told', () => {
  it('names the run, what it holds and what happens to the addresses', () => {
    const [source, seen] = volunteerAddresses(upload);
    const { notice, upload: sent } = prepareSubmission(volunteer, runId, { anonymize: true, destination: '198.19.9.2:8750' });
    expect(notice).toContain(`Submitting run ${runId} to 198.19.9.2:8750:`);
    expect(notice).toContain(`${upload.tests.length} tests`);
    expect(notice).toContain(`${source} as ${truncateAddress(source)}, ${seen} as ${truncateAddress(seen)}`);
    expect(notice).toContain('hostname not sent');
    expect(sent.run.hostInfo.hostname).toBeUndefined();
    const whole = prepareSubmission(volunteer, runId, { anonymize: false, destination: 'x' });
    expect(whole.notice).toContain('"volunteer-laptop" are sent whole');
    expect(whole.upload).toEqual(upload);
  });

  it('picks the latest finished run, never the responder\'s records', () => {
    const store = Store.open(':memory:');
    try {
      expect(latestFinishedRun(store)).toBeUndefined();
      const first = recordedRun(store, 'clean');
      store.insertRun({ id: 'unfinished', startedAt: START, toolVersion: 't' });
      store.insertRun({ id: 'responder-x', startedAt: START, finishedAt: '2030-01-01T00:00:00.000Z', toolVersion: 't', hostInfo: { role: 'responder' } });
      expect(latestFinishedRun(store)).toBe(first);
      expect(() => runToUpload(store, 'unfinished')).toThrow(/did not finish/);
    } finally {
      store.close();
    }
  });
});
