import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffSegments } from '../../shared/diff.js';
import { runProgram, UsageError } from '../../shared/cli.js';
import { LINKTYPE_RAW, readPcapng } from '../../shared/pcapng.js';
import { Store } from '../../shared/store.js';
import { toHex } from '../../shared/wire/index.js';
import { registerDiffsCommand, renderDiffs } from '../../results/commands/diffs.js';
import { exportJsonl, exportPcapng, registerExportCommand } from '../../results/commands/export.js';
import type { JsonlSegment } from '../../results/render/export.js';
import { T0, SYN, SYN_CLAMPED, SYNACK, SYNACK_HOPPED, ACK, SYN_DATA, RST, seg, rowsOf } from '../helpers/segments.js';
import { installed } from '../helpers/tools.js';

/** A store of real Linux segments and their middlebox-changed copies (test/helpers/segments.ts). */
const RUN = 'c0ffee01-5a5a-4b4b-8c8c-000000000001';
const OTHER_RUN = 'c0ffee02-5a5a-4b4b-8c8c-000000000002';

let dir: string;
let dbPath: string;
let store: Store;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mbprobe-results-export-'));
  dbPath = join(dir, 'initiator.sqlite');
  store = Store.open(dbPath);
  const test = { startedAt: '2023-11-14T22:13:20.000Z', finishedAt: '2023-11-14T22:13:21.000Z' };

  store.insertRun({ id: RUN, startedAt: '2023-11-14T22:13:20.000Z', label: 'lab', toolVersion: '0.1.0' });
  // syn-mss: the SYN's MSS is clamped on the way; the SYN-ACK only loses a hop; the ACK arrives byte for byte.
  const mssSegments = [
    seg('initiator', 'sent', 0, SYN),
    seg('responder', 'received', 0.25, SYN_CLAMPED),
    seg('responder', 'sent', 0.4, SYNACK),
    seg('initiator', 'received', 0.7, SYNACK_HOPPED),
    seg('initiator', 'sent', 0.8, ACK),
    seg('responder', 'received', 0.9, ACK),
  ];
  store.insertTest({
    ...test, runId: RUN, name: 'syn-mss', port: 34343, verdict: 'modified',
    detail: { option: 'mss', sent: 'mss 1460', received: 'mss 536' },
    segments: mssSegments,
    diffs: [...rowsOf(mssSegments, 0, 1), ...rowsOf(mssSegments, 2, 3)],
  });
  // syn-data: the SYN with data never arrives; a RST the responder did not send reaches the initiator.
  store.insertTest({
    ...test, runId: RUN, name: 'syn-data', port: 80, verdict: 'dropped',
    detail: { probesSent: 1, probesReceived: 0 },
    segments: [seg('initiator', 'sent', 2, SYN_DATA), seg('initiator', 'received', 3.5, RST)],
    diffs: [],
  });

  // A second run whose id shares a prefix with the first, with one test on two ports.
  store.insertRun({ id: OTHER_RUN, startedAt: '2023-11-15T08:00:00.000Z', toolVersion: '0.1.0' });
  for (const port of [34343, 443]) {
    const segments = [seg('initiator', 'sent', 0, SYN), seg('responder', 'received', 1, SYN_CLAMPED)];
    store.insertTest({ ...test, runId: OTHER_RUN, name: 'syn-mss', port, verdict: 'modified', detail: null, segments, diffs: rowsOf(segments, 0, 1) });
  }
});

afterAll(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the fixture store', () => {
  it('holds the changes the tests below look for', () => {
    expect(diffSegments(SYN, SYN_CLAMPED).map((r) => `${r.layer}.${r.field} ${r.class}`)).toEqual([
      'ip.ttl expected', 'ip.checksum expected', 'tcp.checksum expected', 'option.mss interference',
    ]);
    expect(diffSegments(ACK, ACK)).toEqual([]);
  });
});

const SYN_LINE = 'IP 10.77.0.1.39860 > 10.77.0.2.5001: Flags [S], seq 359839364, win 64240, options [mss 1460,sackOK,TS val 902903378 ecr 0,nop,wscale 10], length 0';
const SYN_CLAMPED_LINE = SYN_LINE.replace('mss 1460', 'mss 536');
const SYNACK_LINE = 'IP 10.77.0.2.5001 > 10.77.0.1.39860: Flags [S.], seq 4124993813, ack 359839365, win 65160, options [mss 1460,sackOK,TS val 4142435130 ecr 902903378,nop,wscale 10], length 0';
const ACK_LINE = 'IP 10.77.0.1.39860 > 10.77.0.2.5001: Flags [.], seq 359839365, ack 4124993814, win 63, options [nop,nop,TS val 902903378 ecr 4142435130], length 0';
const TIMES = "times: ms since the test's first segment (each side's times are from its own host's clock)";

describe('renderDiffs', () => {
  it('aligns each sent segment with what the other side received of it, interference rows before expected ones', () => {
    expect(renderDiffs(store, RUN, 'syn-mss').split('\n')).toEqual([
      `run ${RUN} (lab), test syn-mss on port 34343: modified`,
      '  option: mss',
      '  sent: mss 1460',
      '  received: mss 536',
      'segments: initiator 2 sent, 1 received; responder 1 sent, 2 received; 6 diff rows (1 interference, 5 expected)',
      TIMES,
      '',
      'initiator -> responder',
      `    0.000 ms  initiator sent      ${SYN_LINE}`,
      `    0.250 ms  responder received  ${SYN_CLAMPED_LINE}`,
      '               option.mss: mss 1460 -> mss 536 [interference, modified]',
      '               ip.ttl: 64 -> 63 [expected]',
      '               ip.checksum: 0x4212 -> 0x4312 [expected]',
      '               tcp.checksum: 0x5118 -> 0x54b4 [expected]',
      `    0.800 ms  initiator sent      ${ACK_LINE}`,
      `    0.900 ms  responder received  ${ACK_LINE}  (unchanged)`,
      '',
      'responder -> initiator',
      `    0.400 ms  responder sent      ${SYNACK_LINE}`,
      `    0.700 ms  initiator received  ${SYNACK_LINE}`,
      '               ip.ttl: 64 -> 63 [expected]',
      '               ip.checksum: 0x2620 -> 0x2720 [expected]',
    ]);
  });

  it('marks a segment that never arrived, and lists what arrived without being sent', () => {
    expect(renderDiffs(store, RUN, 'syn-data')).toBe([
      `run ${RUN} (lab), test syn-data on port 80: dropped`,
      '  probesSent: 1',
      '  probesReceived: 0',
      'segments: initiator 1 sent, 1 received; responder 0 sent, 0 received; 0 diff rows',
      TIMES,
      '',
      'initiator -> responder',
      '    0.000 ms  initiator sent      IP 10.77.0.1.48432 > 10.77.0.2.5008: Flags [S], seq 1197212875:1197212901, win 64240, ' +
        'options [mss 1460,sackOK,TS val 2255846905 ecr 0,nop,wscale 10,tfo cookie ecf179c6c51899a7,nop,nop], length 26',
      '               (not received by the responder)',
      '',
      'responder -> initiator',
      '  (the responder sent nothing)',
      '  received by the initiator but not matched to anything the responder sent (injected by the path, or unmatched):',
      '    1.500 ms  initiator received  IP 10.77.0.2.5002 > 10.77.0.1.59772: Flags [R.], seq 0, ack 2103059267, win 0, length 0',
    ].join('\n'));
  });

  it('--interference-only hides expected rows but keeps the pairs they linked', () => {
    const lines = renderDiffs(store, 'c0ffee01', 'syn-mss', { interferenceOnly: true }).split('\n');
    expect(lines[4]).toBe('segments: initiator 2 sent, 1 received; responder 1 sent, 2 received; 6 diff rows (1 interference, 5 expected), 5 expected hidden');
    expect(lines.filter((l) => l.startsWith('               '))).toEqual(['               option.mss: mss 1460 -> mss 536 [interference, modified]']);
    expect(lines.slice(-2)).toEqual([`    0.400 ms  responder sent      ${SYNACK_LINE}`, `    0.700 ms  initiator received  ${SYNACK_LINE}`]);
  });

  it('shows the test on every port it ran on, or on --port only', () => {
    const both = renderDiffs(store, 'c0ffee02', 'syn-mss');
    expect(both.split('\n').filter((l) => l.startsWith('run '))).toEqual([
      `run ${OTHER_RUN}, test syn-mss on port 34343: modified`,
      `run ${OTHER_RUN}, test syn-mss on port 443: modified`,
    ]);
    expect(both).toContain(`    1.000 ms  responder received  ${SYN_CLAMPED_LINE}`);
    const one = renderDiffs(store, 'c0ffee02', 'syn-mss', { port: 443 });
    expect(one.split('\n').filter((l) => l.startsWith('run '))).toEqual([`run ${OTHER_RUN}, test syn-mss on port 443: modified`]);
  });

  function usageError(fn: () => unknown): UsageError {
    try {
      fn();
    } catch (error) {
      expect(error).toBeInstanceOf(UsageError);
      return error as UsageError;
    }
    throw new Error('expected a UsageError');
  }

  it('names what exists when the run or the test is not there', () => {
    const unknown = usageError(() => renderDiffs(store, 'nope', 'syn-mss'));
    expect(unknown.code).toBe('RUN_NOT_FOUND');
    expect(unknown.message).toContain(`  ${RUN}  2023-11-14T22:13:20.000Z  lab\n  ${OTHER_RUN}  2023-11-15T08:00:00.000Z`);
    const ambiguous = usageError(() => renderDiffs(store, 'c0ffee0', 'syn-mss'));
    expect(ambiguous.code).toBe('RUN_AMBIGUOUS');
    expect(ambiguous.message).toMatch(/--run c0ffee0 matches 2 runs/);
    expect(usageError(() => renderDiffs(store, undefined, 'syn-mss')).code).toBe('RUN_REQUIRED');
    const test = usageError(() => renderDiffs(store, RUN, 'syn-ms'));
    expect(test.message).toBe(`run ${RUN} has no test "syn-ms"; its tests are:\n  syn-mss (port 34343)\n  syn-data (port 80)`);
    const port = usageError(() => renderDiffs(store, 'c0ffee02', 'syn-mss', { port: 80 }));
    expect(port.message).toBe(`run ${OTHER_RUN} has no test syn-mss on port 80; syn-mss ran on:\n  syn-mss (ports 34343, 443)`);
  });
});

/** Frames of the run in time order: [interface, bytes, atMs]. */
const FRAMES: Array<[number, Uint8Array, number]> = [
  [0, SYN, 0], [1, SYN_CLAMPED, 0.25], [1, SYNACK, 0.4], [0, SYNACK_HOPPED, 0.7], [0, ACK, 0.8], [1, ACK, 0.9], [0, SYN_DATA, 2], [0, RST, 3.5],
];
const SYN_COMMENTS = [
  `mbprobe test syn-mss port 34343: modified (run ${RUN} lab, test id 1)`,
  'detail: {"option":"mss","sent":"mss 1460","received":"mss 536"}',
  'diff option.mss: mss 1460 -> mss 536 [interference, modified]; received as frame 2',
  'diff ip.ttl: 64 -> 63 [expected]; received as frame 2',
  'diff ip.checksum: 0x4212 -> 0x4312 [expected]; received as frame 2',
  'diff tcp.checksum: 0x5118 -> 0x54b4 [expected]; received as frame 2',
];
const SYN_CLAMPED_COMMENTS = [
  'diff option.mss: mss 1460 -> mss 536 [interference, modified]; sent as frame 1',
  'diff ip.ttl: 64 -> 63 [expected]; sent as frame 1',
  'diff ip.checksum: 0x4212 -> 0x4312 [expected]; sent as frame 1',
  'diff tcp.checksum: 0x5118 -> 0x54b4 [expected]; sent as frame 1',
];
const SYN_DATA_COMMENTS = [`mbprobe test syn-data port 80: dropped (run ${RUN} lab, test id 2)`, 'detail: {"probesSent":1,"probesReceived":0}'];

describe('exportPcapng', () => {
  it('writes both sides as two raw-IP interfaces with ns timestamps, each packet commented with its diff rows', () => {
    const file = readPcapng(exportPcapng(store, 'c0ffee01'));
    expect(file.issues).toEqual([]);
    expect(file.interfaces).toMatchObject([
      { linkType: LINKTYPE_RAW, name: 'initiator', resolution: 'ns' },
      { linkType: LINKTYPE_RAW, name: 'responder', resolution: 'ns' },
    ]);
    expect(file.comment).toBe(`mbprobe run ${RUN} (lab), 2 tests`);
    expect(file.packets.map((p) => [p.interfaceId, toHex(p.data), p.timestampNs])).toEqual(
      FRAMES.map(([iface, bytes, atMs]) => [iface, toHex(bytes), BigInt(T0 + atMs * 1000) * 1000n]),
    );
    expect(file.packets.filter((p) => p.interfaceId === 0)).toHaveLength(5);
    expect(file.packets.filter((p) => p.interfaceId === 1)).toHaveLength(3);
    expect(file.packets.map((p) => p.comments)).toEqual([
      SYN_COMMENTS,
      SYN_CLAMPED_COMMENTS,
      ['diff ip.ttl: 64 -> 63 [expected]; received as frame 4', 'diff ip.checksum: 0x2620 -> 0x2720 [expected]; received as frame 4'],
      ['diff ip.ttl: 64 -> 63 [expected]; sent as frame 3', 'diff ip.checksum: 0x2620 -> 0x2720 [expected]; sent as frame 3'],
      undefined,
      undefined,
      SYN_DATA_COMMENTS,
      undefined,
    ]);
  });

  it('exports one test on one port', () => {
    const file = readPcapng(exportPcapng(store, OTHER_RUN, { test: 'syn-mss', port: 443 }));
    expect(file.packets.map((p) => p.interfaceId)).toEqual([0, 1]);
    expect(file.packets[0].comments?.[0]).toBe(`mbprobe test syn-mss port 443: modified (run ${OTHER_RUN}, test id 4)`);
    expect(file.comment).toBe(`mbprobe run ${OTHER_RUN}, test syn-mss on port 443`);
  });

  const tsharkOnPath = installed('tshark') !== undefined;
  it.skipIf(!tsharkOnPath)('opens cleanly in tshark, with the packets on the right interfaces and the comments', async () => {
    const path = join(dir, 'run.pcapng');
    expect(await run(['export', '--db', dbPath, '--run', 'c0ffee01', '--format', 'pcapng', '--out', path])).toMatchObject({
      code: 0, out: `wrote 8 segments (initiator 5, responder 3) of 2 test(s) of run ${RUN} to ${path}\n`,
    });
    const result = spawnSync('tshark', ['-r', path, '-T', 'fields', '-e', 'frame.interface_id', '-e', 'frame.comment', '-E', 'aggregator=|'], { encoding: 'utf8' });
    expect(result.status).toBe(0);
    expect(result.stderr).not.toMatch(/cut short|isn't a capture file|appears to be damaged|corrupt/i);
    const rows = result.stdout.trimEnd().split('\n').map((line) => line.split('\t'));
    expect(rows.map((r) => r[0])).toEqual(FRAMES.map(([iface]) => String(iface)));
    expect(rows.filter((r) => r[0] === '0')).toHaveLength(5);
    expect(rows.filter((r) => r[0] === '1')).toHaveLength(3);
    expect(rows[0][1]).toBe(SYN_COMMENTS.join('|'));
    expect(rows[1][1]).toBe(SYN_CLAMPED_COMMENTS.join('|'));
    expect(rows[4][1]).toBe('');
    expect(rows[6][1]).toBe(SYN_DATA_COMMENTS.join('|'));
    // tshark decodes the same TCP segments: the clamped MSS on the responder's side.
    const mssValues = execFileSync('tshark', ['-r', path, '-T', 'fields', '-e', 'tcp.options.mss_val'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(mssValues.split('\n').slice(0, 4)).toEqual(['1460', '536', '1460', '1460']);
  });
});

describe('exportJsonl', () => {
  it('writes one JSON object per segment, in frame order, with its diff rows', () => {
    const lines = exportJsonl(store, RUN).trimEnd().split('\n').map((l) => JSON.parse(l) as JsonlSegment);
    expect(lines.map((l) => [l.frame, l.side === 'initiator' ? 0 : 1, l.hex, l.at_us])).toEqual(
      FRAMES.map(([iface, bytes, atMs], i) => [i + 1, iface, toHex(bytes), T0 + atMs * 1000]),
    );
    const [syn, clamped] = lines;
    expect(syn).toMatchObject({ run: RUN, test: 'syn-mss', port: 34343, verdict: 'modified', side: 'initiator', dir: 'sent', summary: SYN_LINE });
    expect(clamped).toMatchObject({ side: 'responder', dir: 'received', summary: SYN_CLAMPED_LINE });
    expect(syn.diffs).toHaveLength(4);
    expect(syn.diffs).toEqual(clamped.diffs);
    expect(syn.diffs.find((d) => d.class === 'interference')).toEqual({
      id: expect.any(Number), layer: 'option', field: 'mss', sent: 'mss 1460', received: 'mss 536', class: 'interference', change: 'modified',
      sent_segment: syn.segment, received_segment: clamped.segment,
    });
    expect(lines[4].diffs).toEqual([]);
    expect(lines.slice(6).map((l) => [l.test, l.port, l.verdict, l.dir])).toEqual([['syn-data', 80, 'dropped', 'sent'], ['syn-data', 80, 'dropped', 'received']]);
  });
});

/** Runs the two commands as mbprobe-results would (results/cli.ts registers them), with captured output. */
async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io = { stdout: (t: string) => void (out += t), stderr: (t: string) => void (err += t) };
  const program = new Command('mbprobe-results');
  registerDiffsCommand(program, io);
  registerExportCommand(program, io);
  const code = await runProgram(program, argv, io);
  return { code, out, err };
}

describe('command line', () => {
  it('diffs prints renderDiffs', async () => {
    const result = await run(['diffs', '--db', dbPath, '--run', 'c0ffee02', '--test', 'syn-mss', '--port', '443', '--interference-only']);
    expect(result).toEqual({ code: 0, out: `${renderDiffs(store, OTHER_RUN, 'syn-mss', { port: 443, interferenceOnly: true })}\n`, err: '' });
  });

  it.each([
    [['diffs', '--run', 'zzz', '--test', 'syn-mss'], new RegExp(`no run "zzz" in .*; the runs are:\\n  ${RUN}  .*lab\\n  ${OTHER_RUN}`)],
    [['diffs', '--test', 'syn-mss'], /holds 2 runs; choose one with --run ID/],
    [['diffs', '--run', 'c0ffee01', '--test', 'no-such-test'], /has no test "no-such-test"; its tests are:\n  syn-mss \(port 34343\)\n  syn-data \(port 80\)/],
    [['diffs', '--run', 'c0ffee01', '--test', 'syn-mss', '--port', '99999'], /--port: "99999" is not a port number/],
    [['diffs', '--run', 'c0ffee01'], /required option '--test <name>'/],
    [['export', '--run', 'c0ffee01', '--format', 'pcapng'], /--format pcapng writes a binary file: give it with --out FILE/],
    [['export', '--run', 'c0ffee01', '--format', 'xml'], /argument 'xml' is invalid. Allowed choices are pcapng, jsonl/],
    [['export', '--run', 'c0ffee01', '--format', 'jsonl', '--test', 'syn-data', '--port', '443'], /has no test syn-data on port 443; syn-data ran on:\n  syn-data \(port 80\)/],
  ])('%j is a usage error (exit 2) naming what exists', async (argv, message) => {
    const result = await run([...argv, '--db', dbPath]);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(message);
    expect(result.out).toBe('');
  });

  it('a missing database is a usage error', async () => {
    const result = await run(['diffs', '--db', join(dir, 'missing.sqlite'), '--test', 'syn-mss']);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/no mbprobe database at .*missing\.sqlite/);
  });

  it('export --format jsonl goes to stdout without --out, to the file with it', async () => {
    const stdout = await run(['export', '--db', dbPath, '--run', 'c0ffee01', '--format', 'jsonl', '--test', 'syn-data']);
    expect(stdout.code).toBe(0);
    expect(stdout.out).toBe(exportJsonl(store, RUN, { test: 'syn-data' }));
    expect(stdout.out.trimEnd().split('\n').map((l) => (JSON.parse(l) as JsonlSegment).summary)).toEqual([
      expect.stringContaining('Flags [S], seq 1197212875:1197212901'), expect.stringContaining('Flags [R.]'),
    ]);
    const path = join(dir, 'syn-data.jsonl');
    const file = await run(['export', '--db', dbPath, '--run', 'c0ffee01', '--format', 'jsonl', '--test', 'syn-data', '--out', path]);
    expect(file.out).toBe(`wrote 2 segments (initiator 2, responder 0) of 1 test(s) of run ${RUN} to ${path}\n`);
    expect(readFileSync(path, 'utf8')).toBe(stdout.out);
  });
});
