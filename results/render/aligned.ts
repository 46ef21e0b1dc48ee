/**
 * One test's segments on both sides as text, aligned: each segment one side sent, followed by what
 * the other side received of it (the segments its diff rows point to, or a byte-identical one when no
 * row points anywhere), then the rows of that pair. Times are milliseconds since the test's first
 * segment on either side (each side's from its own host's clock). What `diffs` prints, and the
 * report's drill-down shows.
 */
import { diffSegments } from '../../shared/diff.js';
import type { DiffRow, HopRow, SegmentRow } from '../../shared/store.js';
import { formatPacket } from '../../shared/wire/format.js';
import { decodePacket } from '../../shared/wire/packet.js';
import type { TestEvidence } from '../read/evidence.js';

/** `layer.field: sent -> received [class, change]`; an absent value (option added or removed) is `(none)`. */
export function formatDiffRow(row: Pick<DiffRow, 'layer' | 'field' | 'sent' | 'received' | 'class' | 'change'>): string {
  const value = (v: string | null): string => (v === null ? '(none)' : v);
  return `${row.layer}.${row.field}: ${value(row.sent)} -> ${value(row.received)} [${row.class}${row.change ? `, ${row.change}` : ''}]`;
}

/** Interference first, then ISN-offset rows, then expected ones; stored order within a class. */
export function orderDiffRows<T extends Pick<DiffRow, 'class'>>(rows: readonly T[]): T[] {
  const rank = { interference: 0, 'isn-offset': 1, expected: 2 } as const;
  return rows.map((row, i) => ({ row, i })).sort((a, b) => rank[a.row.class] - rank[b.row.class] || a.i - b.i).map((x) => x.row);
}

/** One segment as a tcpdump-like line, with the codes of any decode issues appended. */
export function segmentLine(bytes: Uint8Array): string {
  const packet = decodePacket(bytes);
  const issues = packet.issues.map((i) => i.code);
  return issues.length > 0 ? `${formatPacket(packet)} !${[...new Set(issues)].join(',')}` : formatPacket(packet);
}

/** Compact rendering of a test's `detail`: one `key: value` line per top-level key. */
function detailLines(detail: unknown, maxLength = 200): string[] {
  const clip = (text: string): string => (text.length > maxLength ? `${text.slice(0, maxLength - 1)}…` : text);
  const render = (v: unknown): string => clip(typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v)));
  if (detail === null || detail === undefined) return [];
  if (typeof detail !== 'object' || Array.isArray(detail)) return [`detail: ${render(detail)}`];
  // A hop localisation (locate) is shown by its sentence; its hops follow the segments.
  const line = ([key, value]: [string, unknown]): string =>
    (key === 'location' && value !== null && typeof value === 'object' && typeof (value as { summary?: unknown }).summary === 'string'
      ? `location: ${(value as { summary: string }).summary}` : `${key}: ${render(value)}`);
  return Object.entries(detail as Record<string, unknown>).map(line);
}

export interface DiffsOptions {
  /** Only the test on this port (default: the test on every port it ran on). */
  port?: number;
  /** Hide `expected` rows (TTL, IP ID, valid checksums); interference and isn-offset rows stay. */
  interferenceOnly?: boolean;
}

type Side = SegmentRow['side'];
const OTHER: Record<Side, Side> = { initiator: 'responder', responder: 'initiator' };

/**
 * One line of a test's aligned rendering, with what it is, for renderers other than plain text
 * (the HTML report): `title` (run, test, port, verdict), `detail` (one key of the test's detail),
 * `summary` (segment and row counts), `note` (the times line, "sent nothing", "not received", the
 * unmatched heading), `blank`, `direction` ("initiator -> responder"), `segment`, and `row` (one diff
 * row, with its class).
 */
export interface AlignedLine {
  kind: 'title' | 'detail' | 'summary' | 'note' | 'blank' | 'direction' | 'segment' | 'row';
  text: string;
  /** Only for `row`. */
  diffClass?: DiffRow['class'];
}

const HOP_KINDS: Record<HopRow['kind'], string> = {
  'time-exceeded': 'time exceeded', unreachable: 'unreachable', 'packet-too-big': 'packet too big', 'parameter-problem': 'parameter problem',
  other: 'ICMP error', responder: 'the responder received', 'no-answer': 'no answer',
};

/**
 * A localised test's hops: per TTL, who answered the copy sent with it, how much of it the answer
 * quotes (as a tcpdump line), the diff rows of what it shows, and the fields it does not reach.
 */
function hopLines(hops: readonly HopRow[], options: DiffsOptions): AlignedLine[] {
  const lines: AlignedLine[] = [];
  if (hops.length === 0) return lines;
  const indent = ' '.repeat(15);
  lines.push({ kind: 'blank', text: '' }, { kind: 'direction', text: 'hops: copies of the probe with TTL 1..N, and what each hop quoted of its copy' });
  for (const h of hops) {
    const who = h.router === null ? '(no answer)' : h.kind === 'responder' ? `${h.router} (responder)` : h.router;
    if (h.quote === null) {
      lines.push({ kind: 'note', text: `  hop ${String(h.ttl).padEnd(3)} ${who}` });
      continue;
    }
    const sentLength = h.sent.length;
    const shown = h.kind === 'responder' ? 'the whole copy' : `quoted ${h.quoteLength ?? h.quote.length} of ${sentLength} bytes`;
    lines.push({ kind: 'segment', text: `  hop ${String(h.ttl).padEnd(3)} ${who.padEnd(24)} ${HOP_KINDS[h.kind]}, ${shown}: ${segmentLine(h.quote)}` });
    const rows = options.interferenceOnly ? h.diff.filter((r) => r.class !== 'expected') : h.diff;
    for (const row of orderDiffRows(rows)) lines.push({ kind: 'row', text: `${indent}${formatDiffRow({ ...row, change: row.change ?? null })}`, diffClass: row.class });
    if (h.notVisible.length > 0) lines.push({ kind: 'note', text: `${indent}not visible at this hop: ${h.notVisible.join(', ')}` });
  }
  return lines;
}

/** The lines `diffs` prints for one test (joined with newlines they are its output for that test). */
export function alignTest({ run, test, segments, diffs: allRows, hops = [] }: TestEvidence, options: DiffsOptions = {}): AlignedLine[] {
  const rows = options.interferenceOnly ? allRows.filter((r) => r.class !== 'expected') : allRows;
  const lines: AlignedLine[] = [];
  const push = (kind: AlignedLine['kind'], text: string): void => void lines.push({ kind, text });
  push('title', `run ${run.id}${run.label ? ` (${run.label})` : ''}, test ${test.name} on port ${test.port}: ${test.verdict}`);
  for (const l of detailLines(test.detail)) push('detail', `  ${l}`);

  const count = (side: Side, dir: SegmentRow['dir']): number => segments.filter((s) => s.side === side && s.dir === dir).length;
  const byClass = (cls: DiffRow['class']): number => allRows.filter((r) => r.class === cls).length;
  const classes = (['interference', 'isn-offset', 'expected'] as const).filter((c) => byClass(c) > 0).map((c) => `${byClass(c)} ${c}`);
  const hidden = allRows.length - rows.length;
  push('summary',
    `segments: initiator ${count('initiator', 'sent')} sent, ${count('initiator', 'received')} received; ` +
    `responder ${count('responder', 'sent')} sent, ${count('responder', 'received')} received; ` +
    `${allRows.length} diff rows${classes.length ? ` (${classes.join(', ')})` : ''}${hidden ? `, ${hidden} expected hidden` : ''}`,
  );
  if (segments.length > 0) push('note', "times: ms since the test's first segment (each side's times are from its own host's clock)");

  const firstUs = segments.reduce((min, s) => Math.min(min, s.atUs), Infinity);
  const time = (s: SegmentRow): string => `${((s.atUs - firstUs) / 1000).toFixed(3).padStart(9)} ms`;
  const label = (s: SegmentRow): string => `${s.side} ${s.dir}`.padEnd(18);
  const segmentText = (s: SegmentRow): string => `${time(s)}  ${label(s)}  ${segmentLine(s.bytes)}`;
  const rowIndent = ' '.repeat(15);

  // Which received segments a stored row ties to each sent segment (all rows, so hiding expected ones never unpairs).
  const pairs = new Map<number, Map<number, DiffRow[]>>();
  for (const row of allRows) {
    const bySent = pairs.get(row.sentSegment) ?? new Map<number, DiffRow[]>();
    pairs.set(row.sentSegment, bySent);
    bySent.set(row.receivedSegment, [...(bySent.get(row.receivedSegment) ?? []), row]);
  }
  const shownRows = new Set(rows.map((r) => r.id));
  const referenced = new Set(allRows.map((r) => r.receivedSegment));
  const order = new Map(segments.map((s, i) => [s.id, i]));

  for (const from of ['initiator', 'responder'] as const) {
    const to = OTHER[from];
    push('blank', '');
    push('direction', `${from} -> ${to}`);
    const sent = segments.filter((s) => s.side === from && s.dir === 'sent');
    const received = segments.filter((s) => s.side === to && s.dir === 'received');
    const claimed = new Set<number>();
    if (sent.length === 0) push('note', `  (the ${from} sent nothing)`);
    for (const s of sent) {
      push('segment', segmentText(s));
      const matched = [...(pairs.get(s.id) ?? new Map<number, DiffRow[]>())].sort((a, b) => (order.get(a[0]) ?? 0) - (order.get(b[0]) ?? 0));
      if (matched.length === 0) {
        // A pair whose every field is equal has no rows; the only way to see it is to compare bytes.
        const same = received.find((r) => !referenced.has(r.id) && !claimed.has(r.id) && diffSegments(s.bytes, r.bytes).length === 0);
        if (same) {
          claimed.add(same.id);
          push('segment', `${segmentText(same)}  (unchanged)`);
        } else {
          push('note', `${rowIndent}(not received by the ${to})`);
        }
        continue;
      }
      for (const [receivedId, pairRows] of matched) {
        const r = segments[order.get(receivedId) ?? -1];
        if (r) push('segment', segmentText(r));
        else push('note', `${rowIndent}(segment ${receivedId}, not in this test)`);
        for (const row of orderDiffRows(pairRows.filter((x) => shownRows.has(x.id)))) {
          lines.push({ kind: 'row', text: `${rowIndent}${formatDiffRow(row)}`, diffClass: row.class });
        }
      }
    }
    const unmatched = received.filter((r) => !referenced.has(r.id) && !claimed.has(r.id));
    if (unmatched.length > 0) {
      push('note', `  received by the ${to} but not matched to anything the ${from} sent (injected by the path, or unmatched):`);
      for (const r of unmatched) push('segment', segmentText(r));
    }
  }
  lines.push(...hopLines(hops, options));
  return lines;
}

/** Every test's aligned lines, one test after another: the output of `diffs`. */
export function renderDiffs(evidence: readonly TestEvidence[], options: DiffsOptions = {}): string {
  return evidence.map((e) => alignTest(e, options).map((l) => l.text).join('\n')).join('\n\n');
}
