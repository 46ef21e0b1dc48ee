import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerMergeCommand } from '../../results/commands/merge.js';
import { formatMergeReport } from '../../results/render/merge.js';
import { mergeDatabases, type MergeReport } from '../../results/write/merge.js';
import { runProgram } from '../../shared/cli.js';
import { Store, type DiffRecord, type RunRecord, type SegmentRecord } from '../../shared/store.js';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mbprobe-merge-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Deterministic, distinct bytes per (run, test, segment): a wrong remap shows up as wrong bytes. */
function packet(runId: string, test: number, index: number): Uint8Array {
  const seed = createHash('sha256').update(`${runId}/${test}/${index}`).digest();
  const bytes = new Uint8Array(40 + ((seed[0] ?? 0) % 60));
  for (let i = 0; i < bytes.length; i++) bytes[i] = seed[i % seed.length] ^ i;
  bytes[0] = 0x45;
  return bytes;
}

interface RunSpec {
  run: RunRecord;
  /** One test per verdict. */
  verdicts: string[];
  segmentsPerTest?: number;
  withDiffs?: boolean;
}

function addRun(store: Store, spec: RunSpec): void {
  store.insertRun(spec.run);
  const n = spec.segmentsPerTest ?? 3;
  spec.verdicts.forEach((verdict, t) => {
    const segments: SegmentRecord[] = Array.from({ length: n }, (_, i) => ({
      side: i % 2 === 0 ? 'initiator' : 'responder',
      dir: i % 2 === 0 ? 'sent' : 'received',
      atUs: 1_714_557_600_000_000 + t * 1000 + i,
      bytes: packet(spec.run.id, t, i),
    }));
    const diffs: DiffRecord[] = spec.withDiffs === false ? [] : [
      { sentSegment: 0, receivedSegment: 1, layer: 'ip', field: 'ttl', sent: '64', received: '57', class: 'expected' },
      { sentSegment: n - 1, receivedSegment: 0, layer: 'option', field: 'mss', sent: '1460', received: null, class: 'interference', change: 'removed' },
    ];
    store.insertTest({
      runId: spec.run.id, name: `test-${t}`, port: [34343, 80, 443][t % 3], seq: t,
      startedAt: `2024-05-01T10:00:0${t % 10}.000Z`, finishedAt: `2024-05-01T10:00:0${t % 10}.500Z`,
      verdict, detail: t % 2 === 0 ? { t, note: 'x' } : null, segments, diffs,
    });
  });
}

function createDb(name: string, runs: RunSpec[]): string {
  const path = join(dir, name);
  const store = Store.open(path, { createdBy: 'test' });
  for (const spec of runs) addRun(store, spec);
  store.close();
  return path;
}

const run = (id: string, startedAt: string, extra: Partial<RunRecord> = {}): RunRecord => ({
  id, startedAt, finishedAt: startedAt.replace('T10', 'T11'), label: `label-${id}`, responder: 'responder.example.org',
  toolVersion: '0.1.0', hostInfo: { hostname: id, ports: [34343, 80, 443] }, tags: { isp: 'example' }, ...extra,
});

const shared: RunSpec = { run: run('shared', '2024-05-01T10:00:00.000Z'), verdicts: ['passed', 'removed'] };
const conflictA: RunSpec = { run: run('conflict', '2024-05-02T10:00:00.000Z'), verdicts: ['passed', 'passed', 'ok'] };
const conflictB: RunSpec = { ...conflictA, verdicts: ['passed', 'modified', 'ok'] };

interface Fixture {
  volA: string;
  volB: string;
  responder: string;
  garbage: string;
  v99: string;
  /** Which source file each merged run must come from. */
  origin: Record<string, string>;
}

function fixture(): Fixture {
  const volA = createDb('volunteer-a.sqlite', [
    { run: run('a-1', '2024-05-03T10:00:00.000Z'), verdicts: ['passed', 'modified', 'removed', 'dropped'] },
    { run: run('a-2', '2024-05-04T10:00:00.000Z', { finishedAt: null, tags: {} }), verdicts: ['ok'] },
    shared,
    conflictA,
  ]);
  // b-1 is inserted before the shared runs, so its source ids collide with a-1's: the merge must remap them.
  const volB = createDb('volunteer-b.sqlite', [
    { run: run('b-1', '2024-05-05T10:00:00.000Z', { label: 'office', hostInfo: { nested: { deep: [1, 2, { x: null }] } } }), verdicts: ['passed', 'reset', 'passed'], segmentsPerTest: 5 },
    shared,
    conflictB,
  ]);
  const responder = join(dir, 'responder.sqlite');
  {
    const store = Store.open(responder);
    store.insertRun(run('responder-1', '2024-05-01T09:00:00.000Z', { label: 'responder', hostInfo: { role: 'responder' } }));
    // As the responder does: seq left to the store, then an 'unattributed' pseudo-test with its own seq 0.
    for (const [name, seq] of [['syn-baseline', undefined], ['syn-mss', undefined], ['unattributed', 0]] as const) {
      store.insertTest({
        runId: 'responder-1', name, port: name === 'unattributed' ? 0 : 80, seq, startedAt: '2024-05-01T09:00:01.000Z',
        finishedAt: '2024-05-01T09:00:02.000Z', verdict: 'recorded', detail: { session: 's1' },
        segments: [0, 1].map((i) => ({ side: 'responder', dir: i === 0 ? 'received' : 'sent', atUs: 1_714_554_000_000_000 + i, bytes: packet(name, 0, i) })),
        diffs: [],
      });
    }
    store.close();
  }
  const garbage = join(dir, 'garbage.sqlite');
  writeFileSync(garbage, 'this is a volunteer\'s holiday photo, not a database\n'.repeat(100));
  const v99 = join(dir, 'future.sqlite');
  {
    const db = new Database(v99);
    db.exec('CREATE TABLE runs (id TEXT PRIMARY KEY)');
    db.pragma('user_version = 99');
    db.close();
  }
  const origin: Record<string, string> = {
    'a-1': volA, 'a-2': volA, shared: volA, conflict: volA, 'b-1': volB, 'responder-1': responder,
  };
  return { volA, volB, responder, garbage, v99, origin };
}

interface ResolvedTest {
  columns: unknown;
  segments: Array<{ side: string; dir: string; atUs: number; bytes: number[] }>;
  /** Diffs with their segment references resolved to the referenced segments' bytes. */
  diffs: Array<{ sentBytes: number[]; receivedBytes: number[]; rest: unknown }>;
}

/** A run as researchers see it, with every id replaced by what it refers to. */
function resolvedRun(path: string, runId: string): { run: unknown; tests: ResolvedTest[]; ids: number[] } {
  const store = Store.open(path, { readonly: true });
  try {
    const ids: number[] = [];
    const tests = store.tests(runId).map((t): ResolvedTest => {
      const { id, ...columns } = t;
      ids.push(id);
      const segments = store.segments(id);
      const byId = new Map(segments.map((s) => [s.id, Array.from(s.bytes)]));
      return {
        columns,
        segments: segments.map((s) => ({ side: s.side, dir: s.dir, atUs: s.atUs, bytes: Array.from(s.bytes) })),
        diffs: store.diffs(id).map(({ id: _id, testId, sentSegment, receivedSegment, ...rest }) => {
          expect(testId).toBe(id);
          const sentBytes = byId.get(sentSegment);
          const receivedBytes = byId.get(receivedSegment);
          expect(sentBytes, `diff ${_id} sent_segment ${sentSegment} is a segment of its test`).toBeDefined();
          expect(receivedBytes, `diff ${_id} received_segment ${receivedSegment} is a segment of its test`).toBeDefined();
          return { sentBytes: sentBytes!, receivedBytes: receivedBytes!, rest };
        }),
      };
    });
    return { run: store.run(runId), tests, ids };
  } finally {
    store.close();
  }
}

function tableCounts(path: string): Record<string, number> {
  const db = new Database(path, { readonly: true });
  try {
    return Object.fromEntries(['runs', 'tests', 'segments', 'diffs'].map((t) =>
      [t, (db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n]));
  } finally {
    db.close();
  }
}

const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('mergeDatabases', () => {
  it('copies every run once with all its tests, segments and diffs, and reports what it merged and refused', () => {
    const f = fixture();
    const before = [f.volA, f.volB, f.responder].map(sha);
    const out = join(dir, 'merged', 'deeper', 'all.sqlite');

    const report = mergeDatabases(out, [f.volA, f.volB, f.responder, f.garbage, f.v99]);

    expect(report.created).toBe(true);
    expect(report.complete).toBe(false);
    expect(report.aborted).toBeNull();
    const [a, b, r, garbage, v99] = report.inputs;
    expect(a).toMatchObject({ path: f.volA, refused: null, duplicates: [], refusedRuns: [] });
    expect(a.merged.map((m) => m.runId)).toEqual(['shared', 'conflict', 'a-1', 'a-2']);
    expect(a.merged.find((m) => m.runId === 'a-1')).toEqual({ runId: 'a-1', label: 'label-a-1', finished: true, tests: 4, segments: 12, diffs: 8 });
    expect(a.merged.find((m) => m.runId === 'a-2')?.finished).toBe(false);

    expect(b.refused).toBeNull();
    expect(b.merged.map((m) => [m.runId, m.tests, m.segments, m.diffs])).toEqual([['b-1', 3, 15, 6]]);
    expect(b.duplicates).toEqual(['shared']);
    expect(b.refusedRuns).toHaveLength(1);
    expect(b.refusedRuns[0].runId).toBe('conflict');
    expect(b.refusedRuns[0].code).toBe('RUN_CONFLICT');
    expect(b.refusedRuns[0].reason).toContain(`test-1 port 80 (seq 1): verdict 'passed' in ${out}, 'modified' in ${f.volB}`);
    expect(b.refusedRuns[0].reason).toContain('keeps its copy');

    expect(r.merged).toEqual([{ runId: 'responder-1', label: 'responder', finished: true, tests: 3, segments: 6, diffs: 0 }]);

    expect(garbage.refused?.code).toBe('NOT_A_DATABASE');
    expect(garbage.refused?.reason).toContain(f.garbage);
    expect(v99.refused?.code).toBe('SCHEMA_VERSION_MISMATCH');
    expect(v99.refused?.reason).toContain('schema version 99');
    for (const refused of [garbage, v99]) expect([refused.merged, refused.duplicates, refused.refusedRuns]).toEqual([[], [], []]);

    expect(report.totals).toEqual({ runsMerged: 6, duplicatesSkipped: 1, runsRefused: 1, filesRefused: 2, tests: 4 + 1 + 2 + 3 + 3 + 3, segments: 12 + 3 + 6 + 9 + 15 + 6, diffs: 8 + 2 + 4 + 6 + 6 });

    // Each run exactly once, identical to its source once ids are resolved (bytes, seq, detail, tags, host_info...).
    expect(tableCounts(out)).toEqual({ runs: 6, tests: 16, segments: 51, diffs: 26 });
    let remapped = 0;
    for (const [runId, source] of Object.entries(f.origin)) {
      const merged = resolvedRun(out, runId);
      const original = resolvedRun(source, runId);
      expect(merged.run, runId).toEqual(original.run);
      expect(merged.tests, runId).toEqual(original.tests);
      remapped += merged.ids.filter((id, i) => id !== original.ids[i]).length;
    }
    expect(remapped, 'some test ids had to change, so the diff remapping was really exercised').toBeGreaterThan(0);
    // The conflicting run kept the first copy (volunteer A's verdicts).
    expect(resolvedRun(out, 'conflict').tests.map((t) => (t.columns as { verdict: string }).verdict)).toEqual(['passed', 'passed', 'ok']);

    // The whole merged file is sound and still an mbprobe database of this version.
    const check = new Database(out, { readonly: true });
    expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(check.pragma('foreign_key_check')).toEqual([]);
    check.close();
    const merged = Store.open(out, { readonly: true });
    expect(merged.verdicts('responder-1').map((v) => v.test)).toEqual(['syn-baseline', 'unattributed', 'syn-mss']);
    merged.close();

    // Inputs are only read.
    expect([f.volA, f.volB, f.responder].map(sha)).toEqual(before);
  });

  it('is idempotent: merging the same inputs again adds nothing', () => {
    const f = fixture();
    const out = join(dir, 'all.sqlite');
    mergeDatabases(out, [f.volA, f.volB, f.responder]);
    const counts = tableCounts(out);
    const first = Object.keys(f.origin).map((id) => resolvedRun(out, id));

    const again = mergeDatabases(out, [f.responder, f.volB, f.volA]);

    expect(again.created).toBe(false);
    expect(again.totals).toMatchObject({ runsMerged: 0, duplicatesSkipped: 7, runsRefused: 1, filesRefused: 0, tests: 0, segments: 0, diffs: 0 });
    expect(again.inputs.map((i) => [...i.duplicates].sort())).toEqual([['responder-1'], ['b-1', 'shared'], ['a-1', 'a-2', 'conflict', 'shared']]);
    // volunteer B's conflicting copy is still refused, not quietly accepted the second time.
    expect(again.inputs[1].refusedRuns.map((x) => [x.runId, x.code])).toEqual([['conflict', 'RUN_CONFLICT']]);
    expect(tableCounts(out)).toEqual(counts);
    expect(Object.keys(f.origin).map((id) => resolvedRun(out, id))).toEqual(first);
  });

  it('refuses OUT among the inputs, by any path, and goes on with the others', () => {
    const f = fixture();
    const out = join(dir, 'all.sqlite');
    mergeDatabases(out, [f.responder]);
    const alias = join(dir, 'alias.sqlite');
    symlinkSync(out, alias);

    const report = mergeDatabases(out, [out, f.volA, join(dir, '.', 'all.sqlite'), alias]);

    expect(report.inputs.map((i) => i.refused?.code ?? null)).toEqual(['SAME_AS_OUTPUT', null, 'SAME_AS_OUTPUT', 'SAME_AS_OUTPUT']);
    expect(report.inputs[0].refused?.reason).toContain('is the output database');
    expect(report.inputs[1].merged).toHaveLength(4);
    expect(report.totals.filesRefused).toBe(3);
    expect(tableCounts(out).runs).toBe(5);
  });

  it('refuses a missing input with the store\'s reason', () => {
    const report = mergeDatabases(join(dir, 'all.sqlite'), [join(dir, 'nope.sqlite')]);
    expect(report.inputs[0].refused?.code).toBe('DATABASE_NOT_FOUND');
    expect(report.complete).toBe(false);
  });

  it('never leaves half a run: a run with a broken diff reference is refused whole, the rest merged', () => {
    const path = createDb('damaged.sqlite', [
      { run: run('good', '2024-05-01T10:00:00.000Z'), verdicts: ['passed'] },
      { run: run('bad', '2024-05-02T10:00:00.000Z'), verdicts: ['passed', 'passed', 'removed'] },
    ]);
    const db = new Database(path);
    // The last diff of bad's last test now points at a segment of 'good'.
    db.prepare(`UPDATE diffs SET received_segment = (SELECT MIN(id) FROM segments)
      WHERE id = (SELECT MAX(id) FROM diffs)`).run();
    db.close();
    const out = join(dir, 'all.sqlite');

    const report = mergeDatabases(out, [path]);

    expect(report.inputs[0].merged.map((m) => m.runId)).toEqual(['good']);
    expect(report.inputs[0].refusedRuns.map((x) => [x.runId, x.code])).toEqual([['bad', 'BAD_DIFF_REFERENCE']]);
    expect(report.inputs[0].refusedRuns[0].reason).toMatch(/test-2 port 443 \(seq 2\) refers to segment \d+, which is not one of that test's segments/);
    expect(tableCounts(out)).toEqual({ runs: 1, tests: 1, segments: 3, diffs: 2 });
  });

  it('refuses to merge into a file that is not an mbprobe database, without writing to it', () => {
    const f = fixture();
    const before = sha(f.v99);
    expect(() => mergeDatabases(f.v99, [f.volA])).toThrow(expect.objectContaining({ code: 'SCHEMA_VERSION_MISMATCH' }));
    expect(() => mergeDatabases(f.garbage, [f.volA])).toThrow(expect.objectContaining({ code: 'NOT_A_DATABASE' }));
    expect(sha(f.v99)).toBe(before);
  });

  it('stops (and says so) when OUT stays locked, keeping what it committed', () => {
    const f = fixture();
    const out = join(dir, 'all.sqlite');
    mergeDatabases(out, [f.responder]);
    const other = new Database(out);
    other.exec('BEGIN IMMEDIATE');
    try {
      const report = mergeDatabases(out, [f.volA, f.volB]);
      expect(report.aborted).toMatchObject({ input: f.volA, runId: 'shared', code: 'SQLITE_BUSY', notProcessed: [f.volB] });
      expect(report.complete).toBe(false);
      expect(formatMergeReport(report)).toMatch(/STOPPED at .*volunteer-a\.sqlite, run shared: \[SQLITE_BUSY\][^\n]*\n {2}not looked at: .*volunteer-b\.sqlite/);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    expect(tableCounts(out).runs).toBe(1);
  }, 20_000);

  it('copies a volunteer-sized database (thousands of segments) exactly', () => {
    const path = createDb('big.sqlite', [
      { run: run('big', '2024-05-01T10:00:00.000Z'), verdicts: Array.from({ length: 120 }, (_, i) => (i % 7 === 0 ? 'modified' : 'passed')), segmentsPerTest: 40 },
    ]);
    const out = join(dir, 'all.sqlite');
    const report = mergeDatabases(out, [createDb('small.sqlite', [shared]), path]);
    expect(report.totals).toMatchObject({ runsMerged: 2, segments: 120 * 40 + 6, diffs: 120 * 2 + 4 });
    expect(resolvedRun(out, 'big')).toEqual({ ...resolvedRun(path, 'big'), ids: expect.any(Array) });
  });
});

function capture() {
  let out = '';
  let err = '';
  return { io: { stdout: (t: string) => void (out += t), stderr: (t: string) => void (err += t) }, out: () => out, err: () => err };
}

async function cli(argv: string[]) {
  const c = capture();
  const program = new Command('mbprobe-results');
  registerMergeCommand(program, c.io);
  const code = await runProgram(program, argv, c.io);
  return { code, out: c.out(), err: c.err() };
}

describe('mbprobe-results merge', () => {
  it('exits 0 when everything merged (or was an identical duplicate), with a readable report', async () => {
    const f = fixture();
    const out = join(dir, 'new', 'all.sqlite');
    const first = await cli(['merge', out, f.volA, f.responder]);
    expect(first.code).toBe(0);
    expect(first.err).toBe('');
    expect(first.out).toContain(`Merging into ${out} (created):`);
    expect(first.out).toContain(`${f.volA}: 4 runs merged, 0 duplicates skipped`);
    expect(first.out).toContain('+ a-1 (label-a-1): 4 tests, 12 segments, 8 diffs');
    expect(first.out).toContain('+ a-2 (label-a-2): 1 test, 3 segments, 2 diffs, unfinished');
    expect(first.out).toContain('Total: 5 runs merged (13 tests, 36 segments, 20 diffs), 0 duplicates skipped, 0 runs and 0 files refused.');
    expect(first.out).not.toContain('REFUSED');

    const again = await cli(['merge', out, f.volA]);
    expect(again.code).toBe(0);
    expect(again.out).toContain(`= shared: already in ${out}, identical`);
  });

  it('exits 1 when anything was refused, and says so in the report and on stderr', async () => {
    const f = fixture();
    const out = join(dir, 'all.sqlite');
    const result = await cli(['merge', out, f.volA, f.volB, f.garbage]);
    expect(result.code).toBe(1);
    expect(result.out).toContain(`${f.volB}: 1 run merged, 1 duplicate skipped, 1 run REFUSED`);
    expect(result.out).toMatch(/! conflict: REFUSED \[RUN_CONFLICT\] run conflict is already in/);
    expect(result.out).toContain(`${f.garbage}: REFUSED [NOT_A_DATABASE]`);
    expect(result.out).toContain('Not everything was merged: see REFUSED above.');
    expect(result.err).toContain('1 input file and 1 run refused (see the report); everything else is in');
    expect(result.err).toContain('[MERGE_INCOMPLETE]');
  });

  it('--json prints the report for machines', async () => {
    const f = fixture();
    const out = join(dir, 'all.sqlite');
    const result = await cli(['merge', '--json', out, f.volB, f.v99]);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.out) as MergeReport;
    expect(report.out).toBe(out);
    expect(report.inputs.map((i) => [i.path, i.refused?.code ?? null, i.merged.length])).toEqual([[f.volB, null, 3], [f.v99, 'SCHEMA_VERSION_MISMATCH', 0]]);
    expect(report.totals.filesRefused).toBe(1);
    expect(report.complete).toBe(false);
  });

  it.each([
    [['merge'], /missing required argument 'out'/],
    [['merge', 'out.sqlite'], /missing required argument 'inputs'/],
    [['merge', ':memory:', 'in.sqlite'], /OUT must be a file/],
  ])('%j is a usage error (exit 2)', async (argv, message) => {
    const result = await cli(argv.map((a) => (a.endsWith('.sqlite') ? join(dir, a) : a)));
    expect(result.code).toBe(2);
    expect(result.err).toMatch(message);
    expect(existsSync(join(dir, 'out.sqlite'))).toBe(false);
  });
});
