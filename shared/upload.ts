import { z } from 'zod';
import { describeValidationError } from './control.js';
import { HOP_KINDS, RUN_KINDS, type HopRecord, type Store, type TestRecord } from './store.js';
import { MbprobeError, type ErrorCode } from './wire/errors.js';

/**
 * A finished run as a volunteer submits it to the responder's collection endpoint
 * (`POST /v1/runs` on the control port): the run row, and every test with its segments (both
 * sides, the whole IP packets in base64) and its diff rows (segment references are indexes into
 * the test's `segments`). The same shape is what `runToUpload` reads back from any mbprobe
 * database, so "the same run twice" is decided by comparing two of these.
 */
export const UPLOAD_FORMAT = 'mbprobe-run/1';

/** A full catalogue run on three ports is 0.4-0.7 MB of JSON (lab clean and NAT paths); this leaves room for long runs and --test-file tests. */
export const MAX_UPLOAD_BYTES = 16 * 1024 * 1024;

export const UPLOAD_LIMITS = {
  tests: 5000,
  segmentsPerTest: 2000,
  segments: 100_000,
  diffsPerTest: 5000,
  /** An IPv6 jumbogram is not a test segment; 64 KiB + headers is. */
  packetBytes: 65_535 + 40,
  detailChars: 64 * 1024,
  /** Hop rows of a localised test: a copy per TTL (at most 255), an answer or two each. */
  hopsPerTest: 1024,
  hostInfoChars: 16 * 1024,
} as const;

const isoTime = z.iso.datetime({ offset: true });
const shortText = (max: number) => z.string().max(max);
const jsonSized = (max: number, what: string) => (value: unknown, ctx: z.RefinementCtx): void => {
  const text = JSON.stringify(value ?? null);
  if (text.length > max) ctx.addIssue({ code: 'custom', message: `${what} is ${text.length} characters of JSON; at most ${max}` });
};

/** An IP packet in base64: decodes to at least a fixed IPv4/IPv6 header, version 4 or 6. */
const packet = z.string().max(Math.ceil(UPLOAD_LIMITS.packetBytes / 3) * 4).superRefine((text, ctx) => {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    ctx.addIssue({ code: 'custom', message: 'must be the packet in base64' });
    return;
  }
  const bytes = Buffer.from(text, 'base64');
  const version = bytes[0] >> 4;
  if (!((version === 4 && bytes.length >= 20) || (version === 6 && bytes.length >= 40))) {
    ctx.addIssue({ code: 'custom', message: `is not an IP packet (${bytes.length} bytes, version ${bytes.length ? version : 'none'})` });
  }
});

const uploadSegmentSchema = z.object({
  side: z.enum(['initiator', 'responder']),
  dir: z.enum(['sent', 'received']),
  atUs: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  bytes: packet,
}).strict();

const uploadDiffSchema = z.object({
  sentSegment: z.number().int().min(0),
  receivedSegment: z.number().int().min(0),
  layer: z.enum(['ip', 'tcp', 'option', 'payload']),
  field: shortText(200),
  sent: shortText(4096).nullable(),
  received: shortText(4096).nullable(),
  class: z.enum(['interference', 'expected', 'isn-offset']),
  change: shortText(200).nullable(),
}).strict();

/** Bytes in base64 that need not be a whole IP packet (a router's quote may be cut anywhere). */
const bytesBase64 = z.string().max(Math.ceil(UPLOAD_LIMITS.packetBytes / 3) * 4).regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be bytes in base64').refine((t) => t.length % 4 === 0, 'must be bytes in base64');

/** A row of hops (shared/store/schema.ts): the copy as sent, the answer, the diff rows of what the answer shows. */
const uploadHopSchema = z.object({
  ttl: z.number().int().min(1).max(255),
  kind: z.enum(HOP_KINDS),
  router: shortText(64).nullable(),
  atUs: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable(),
  sent: packet,
  quoteLength: z.number().int().min(0).max(UPLOAD_LIMITS.packetBytes).nullable(),
  quote: bytesBase64.nullable(),
  packet: packet.nullable(),
  diff: z.array(uploadDiffSchema.omit({ sentSegment: true, receivedSegment: true }).extend({ change: shortText(200).optional() })).max(500),
  notVisible: z.array(shortText(64)).max(64),
}).strict();

const uploadTestSchema = z.object({
  seq: z.number().int().min(0).max(1_000_000),
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,79}$/, 'must be a test name (lower-case letters, digits, . _ -)'),
  port: z.number().int().min(0).max(65535),
  startedAt: isoTime,
  finishedAt: isoTime,
  verdict: z.string().regex(/^[a-z0-9][a-z0-9+._-]{0,63}$/, 'must be a verdict name'),
  detail: z.unknown().superRefine(jsonSized(UPLOAD_LIMITS.detailChars, 'detail')),
  segments: z.array(uploadSegmentSchema).max(UPLOAD_LIMITS.segmentsPerTest),
  diffs: z.array(uploadDiffSchema).max(UPLOAD_LIMITS.diffsPerTest),
  /** Hop localisation (locate), only for tests that were localised. */
  hops: z.array(uploadHopSchema).max(UPLOAD_LIMITS.hopsPerTest).optional(),
  /** Scans only: the server probed (its address) and the name it was resolved from; absent for measurements against a responder. */
  target: shortText(64).optional(),
  targetName: shortText(255).nullable().optional(),
}).strict().superRefine((test, ctx) => {
  test.diffs.forEach((d, i) => {
    for (const key of ['sentSegment', 'receivedSegment'] as const) {
      if (d[key] >= test.segments.length) {
        ctx.addIssue({ code: 'custom', path: ['diffs', i, key], message: `refers to segment ${d[key]}, but the test has ${test.segments.length}` });
      }
    }
  });
});

const uploadRunSchema = z.object({
  id: z.uuid(),
  startedAt: isoTime,
  /** Only finished runs are submitted. */
  finishedAt: isoTime,
  label: shortText(200).nullable(),
  responder: shortText(255).nullable(),
  toolVersion: shortText(64),
  hostInfo: z.record(z.string().max(64), z.unknown()).superRefine(jsonSized(UPLOAD_LIMITS.hostInfoChars, 'hostInfo')).refine(
    (info) => info.role !== 'responder', 'a submitted run cannot claim role "responder" (those are the responder\'s own records)'),
  tags: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,31}$/), z.string().max(200)).refine((t) => Object.keys(t).length <= 32, 'at most 32 tags'),
  /** Absent for a measurement against a responder (what every upload was before scans), so such uploads stay as they were. */
  kind: z.enum(RUN_KINDS).optional(),
}).strict();

export const runUploadSchema = z.object({
  format: z.literal(UPLOAD_FORMAT),
  run: uploadRunSchema,
  tests: z.array(uploadTestSchema).max(UPLOAD_LIMITS.tests),
}).strict().superRefine((upload, ctx) => {
  const seqs = new Set<number>();
  let segments = 0;
  upload.tests.forEach((t, i) => {
    if (seqs.has(t.seq)) ctx.addIssue({ code: 'custom', path: ['tests', i, 'seq'], message: `seq ${t.seq} appears twice in the run` });
    seqs.add(t.seq);
    segments += t.segments.length;
  });
  if (segments > UPLOAD_LIMITS.segments) ctx.addIssue({ code: 'custom', path: ['tests'], message: `${segments} segments in all; at most ${UPLOAD_LIMITS.segments}` });
});

export type RunUpload = z.infer<typeof runUploadSchema>;
export type UploadTest = RunUpload['tests'][number];

export class UploadError extends MbprobeError {
  constructor(code: ErrorCode, message: string) {
    super(code, message);
    this.name = 'UploadError';
  }
}

/** Validates an upload; throws UploadError('INVALID_UPLOAD') with every problem found. */
export function parseUpload(value: unknown): RunUpload {
  const result = runUploadSchema.safeParse(value);
  if (!result.success) {
    const issues = describeValidationError(result.error);
    throw new UploadError('INVALID_UPLOAD', `not a valid ${UPLOAD_FORMAT} upload: ${issues.length > 2000 ? `${issues.slice(0, 2000)}...` : issues}`);
  }
  return result.data;
}

/**
 * Reads a run of `store` as an upload: tests in the order they ran, segments in capture order, diff
 * references as indexes into them. Throws UploadError for a run that is missing or unfinished.
 */
export function runToUpload(store: Store, runId: string): RunUpload {
  const run = store.run(runId);
  if (!run) throw new UploadError('RUN_NOT_FOUND', `run ${runId} is not in ${store.path}`);
  if (run.finishedAt === null) {
    throw new UploadError('RUN_UNFINISHED', `run ${runId} in ${store.path} did not finish (interrupted?); only finished runs are submitted. Run the tests again.`);
  }
  const tests = store.tests(runId).map((t): UploadTest => {
    const segments = store.segments(t.id);
    const index = new Map(segments.map((s, i) => [s.id, i]));
    return {
      seq: t.seq,
      name: t.name,
      port: t.port,
      startedAt: t.startedAt,
      finishedAt: t.finishedAt,
      verdict: t.verdict,
      detail: t.detail,
      segments: segments.map((s) => ({ side: s.side, dir: s.dir, atUs: s.atUs, bytes: Buffer.from(s.bytes).toString('base64') })),
      diffs: store.diffs(t.id).map((d) => ({
        sentSegment: index.get(d.sentSegment)!,
        receivedSegment: index.get(d.receivedSegment)!,
        layer: d.layer,
        field: d.field,
        sent: d.sent,
        received: d.received,
        class: d.class,
        change: d.change,
      })),
      // Only scans name a target; a measurement's upload has exactly the fields it always had.
      ...(t.target !== null ? { target: t.target, targetName: t.targetName } : {}),
      // Likewise hops, only for tests that were localised.
      ...hopsOf(store, t.id),
    };
  });
  return {
    format: UPLOAD_FORMAT,
    run: {
      id: run.id,
      startedAt: run.startedAt,
      finishedAt: run.finishedAt,
      label: run.label,
      responder: run.responder,
      toolVersion: run.toolVersion,
      hostInfo: run.hostInfo,
      tags: run.tags,
      ...(run.kind !== 'measurement' ? { kind: run.kind } : {}),
    },
    tests,
  };
}

const base64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
const bytes = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));

function hopsOf(store: Store, testId: number): { hops?: UploadHop[] } {
  const rows = store.hops(testId);
  if (rows.length === 0) return {};
  return {
    hops: rows.map((h) => ({
      ttl: h.ttl, kind: h.kind, router: h.router, atUs: h.atUs, sent: base64(h.sent), quoteLength: h.quoteLength,
      quote: h.quote && base64(h.quote), packet: h.packet && base64(h.packet),
      diff: h.diff.map((d) => ({ layer: d.layer, field: d.field, sent: d.sent, received: d.received, class: d.class, ...(d.change !== undefined && d.change !== null ? { change: d.change } : {}) })),
      notVisible: h.notVisible,
    })),
  };
}

export type UploadHop = NonNullable<UploadTest['hops']>[number];

/** A test of an upload as the store writes it (the responder's collection). */
export function testRecordOf(runId: string, test: UploadTest): TestRecord {
  const { segments, diffs, hops, ...rest } = test;
  return {
    ...rest,
    runId,
    segments: segments.map((s) => ({ ...s, bytes: bytes(s.bytes) })),
    diffs: diffs.map((d) => ({ ...d, change: d.change ?? undefined })),
    ...(hops ? { hops: hops.map((h): HopRecord => ({ ...h, sent: bytes(h.sent), quote: h.quote === null ? null : bytes(h.quote), packet: h.packet === null ? null : bytes(h.packet) })) } : {}),
  };
}

/** Counts for messages: tests, segments, diff rows. */
export function uploadCounts(upload: RunUpload): { tests: number; segments: number; diffs: number } {
  let segments = 0;
  let diffs = 0;
  for (const t of upload.tests) {
    segments += t.segments.length;
    diffs += t.diffs.length;
  }
  return { tests: upload.tests.length, segments, diffs };
}
