import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import {
  CONTROL_API_VERSION, MAX_CONTROL_BODY_BYTES, RESPONDER_FEATURES, describeValidationError, openSessionSchema, registerTestSchema,
  type HelloResponse, type OpenSessionResponse, type TestSegmentsResponse,
} from '../shared/control.js';
import { TOOL_VERSION } from '../shared/cli.js';
import type { Store } from '../shared/store.js';
import { MAX_UPLOAD_BYTES, parseUpload, UploadError } from '../shared/upload.js';
import { storeUpload } from './collection.js';
import type { ResponderService } from './service.js';
import type { ResponderMetrics } from './metrics.js';

/**
 * The control API (HTTP + JSON): the initiator opens a session, registers each test's plan before
 * sending its first segment, and collects the segments the responder saw for it.
 *
 *   GET    /v1/hello                              -> { toolVersion, ports, observedAddress, features }
 *   POST   /v1/sessions                           -> OpenSessionResponse
 *   POST   /v1/sessions/:session/tests            -> 201 (body: RegisterTestRequest)
 *   POST   /v1/sessions/:session/tests/:test/bound?waitMs=N&holdMs=M -> { bound, rule } once the test has a flow (or after N ms);
 *                                                                  bound by only-test, M ms later (held: true)
 *   POST   /v1/sessions/:session/tests/:test/collect?settleMs=N -> TestSegmentsResponse
 *   DELETE /v1/sessions/:session                  -> 204
 *
 * and the collection endpoint, where volunteers submit finished runs (shared/upload.ts):
 *
 *   POST   /v1/runs                               -> 201 stored | 200 already stored (identical)
 *                                                    400 invalid | 409 conflict | 413 too large | 429 too many
 *
 * and for the researchers' monitoring:
 *
 *   GET    /metrics                               -> Prometheus text format (responder/metrics.ts)
 *   GET    /healthz                               -> 200 { status: 'ok', ... } | 503 { status: 'failing', problems }
 *
 * With `tls`, all of it is HTTPS; reloadTls() (on SIGHUP) reads the certificate and key again.
 */
export interface ControlApiOptions {
  port: number;
  host?: string;
  service: ResponderService;
  ports: number[];
  /**
   * Requests per second per open session, and per client address for requests outside a session
   * (token bucket, burst of 4 seconds' worth): volunteers behind one NAT (a campus, a home router)
   * share an address, not a budget.
   */
  requestsPerSecond?: number;
  /** Sessions one client address may hold open at once (MAX_SESSIONS_PER_ADDRESS). */
  sessionsPerAddress?: number;
  /** Where submitted runs are stored; without it the collection endpoint answers 404. */
  collection?: Store;
  /** Run submissions per hour per client address (token bucket, burst of the whole hour's worth). */
  uploadsPerHour?: number;
  /** Serve HTTPS with this certificate chain and key (PEM files, read again by reloadTls()). */
  tls?: { certPath: string; keyPath: string };
  /** GET /metrics; without it /metrics answers 404. */
  metrics?: ResponderMetrics;
  /** What /healthz checks: problems found (none: healthy). */
  health?: () => string[];
}

export interface ControlApi {
  server: Server | TlsServer;
  port: number;
  /** Reads the TLS certificate and key again; new connections use them. Throws (keeping the old ones) when they are not usable. */
  reloadTls(): void;
  close(): Promise<void>;
}

function readTls(tls: { certPath: string; keyPath: string }): { cert: Buffer; key: Buffer } {
  const read = (path: string, what: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new Error(`cannot read the TLS ${what} ${path}: ${(error as Error).message}`);
    }
  };
  return { cert: read(tls.certPath, 'certificate'), key: read(tls.keyPath, 'key') };
}

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

const MAX_SETTLE_MS = 2000;
/** Open sessions per client address: a large campus NAT's volunteers at once, not an address's way around its request budget. */
export const MAX_SESSIONS_PER_ADDRESS = 256;
const MAX_BOUND_WAIT_MS = 10_000;

export async function startControlApi(options: ControlApiOptions): Promise<ControlApi> {
  const rate = options.requestsPerSecond ?? 500;
  const allow = perClientBucket(rate * 4, rate / 1000);
  const uploadRate = options.uploadsPerHour ?? 60;
  const allowUpload = perClientBucket(uploadRate, uploadRate / 3_600_000);
  const sessionsPerAddress = options.sessionsPerAddress ?? MAX_SESSIONS_PER_ADDRESS;
  const sessionPath = new RegExp(`^/${CONTROL_API_VERSION}/sessions/([^/?]+)/`);

  /** Whose request budget a request spends: its session's (one of this address's), else its address's. */
  const budgetOf = (req: IncomingMessage, client: string): string => {
    const id = sessionPath.exec(req.url ?? '')?.[1];
    const session = id ? options.service.registry.session(id) : undefined;
    return session && session.observedAddress === client ? `session ${session.id}` : client;
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const client = normaliseAddress(req.socket.remoteAddress ?? '');
    if (req.method === 'POST' && options.metrics && /^\/v1\/runs\/?(\?|$)/.test(req.url ?? '')) res.once('finish', () => options.metrics?.upload(res.statusCode));
    const waitMs = allow(budgetOf(req, client));
    if (waitMs > 0) return reply(res, 429, { error: 'too many requests; slow down' }, { 'retry-after': String(Math.ceil(waitMs / 1000)) });
    handle(req, res, client).catch((error: unknown) => {
      if (error instanceof HttpError) reply(res, error.status, { error: error.message }, error.headers);
      else reply(res, 500, { error: `internal error: ${error instanceof Error ? error.message : String(error)}` });
    });
  };
  // A certificate that cannot be read stops the start: better no responder than one volunteers cannot verify.
  const server = options.tls ? createTlsServer(readTls(options.tls), onRequest) : createServer(onRequest);
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  // An initiator keeps one connection for a whole run, idle while a test waits on the path.
  server.keepAliveTimeout = 30_000;

  async function handle(req: IncomingMessage, res: ServerResponse, client: string): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://responder');
    const parts = url.pathname.split('/').filter(Boolean);
    if (req.method === 'GET' && url.pathname === '/metrics') {
      if (!options.metrics) throw new HttpError(404, 'this responder does not export metrics');
      const text = await options.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': options.metrics.registry.contentType, 'content-length': Buffer.byteLength(text) }).end(text);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/healthz') {
      const problems = options.health?.() ?? [];
      return reply(res, problems.length ? 503 : 200, problems.length ? { status: 'failing', problems } : { status: 'ok', toolVersion: TOOL_VERSION, uptimeSeconds: Math.round(process.uptime()) });
    }
    if (parts[0] !== CONTROL_API_VERSION) throw new HttpError(404, `unknown path ${url.pathname}; this responder speaks /${CONTROL_API_VERSION}/`);
    const route = `${req.method} ${parts.slice(1).map((p, i) => (i % 2 === 1 ? ':' : p)).join('/')}`;
    const service = options.service;
    switch (route) {
      case 'GET hello':
        return reply(res, 200, { toolVersion: TOOL_VERSION, ports: options.ports, observedAddress: client, features: [...RESPONDER_FEATURES] } satisfies HelloResponse);
      case 'POST sessions': {
        const { body, bytes } = await readJson(req, bySchema(openSessionSchema));
        const open = service.registry.allSessions().filter((s) => s.observedAddress === client).length;
        if (open >= sessionsPerAddress) {
          throw new HttpError(429, `${open} sessions are open from this address (at most ${sessionsPerAddress}); try again once one has finished`, { 'retry-after': '30' });
        }
        const session = service.openSession(client, body.initiatorAddress, body.label);
        service.creditSession(session, bytes);
        const response: OpenSessionResponse = { sessionId: session.id, observedAddress: client, ports: options.ports, toolVersion: TOOL_VERSION };
        return reply(res, 201, response);
      }
      case 'POST sessions/:/tests': {
        const session = findSession(parts[2]);
        const { body, bytes } = await readJson(req, bySchema(registerTestSchema));
        if (!options.ports.includes(body.port)) throw new HttpError(400, `port ${body.port} is not a test port of this responder (${options.ports.join(', ')})`);
        service.creditSession(session, bytes);
        const test = service.registerTest(session, body);
        if (test === 'duplicate') throw new HttpError(409, `test ${body.testId} is already registered in this session`);
        return reply(res, 201, { testId: body.testId });
      }
      case 'POST sessions/:/tests/:/bound': {
        const session = findSession(parts[2]);
        const test = service.registry.test(session.id, parts[4]);
        if (!test) throw new HttpError(404, `no active test ${parts[4]} in session ${session.id} (already collected, or never registered)`);
        const wait = Number(url.searchParams.get('waitMs') ?? '0');
        if (!Number.isFinite(wait) || wait < 0 || wait > MAX_BOUND_WAIT_MS) throw new HttpError(400, `waitMs must be 0..${MAX_BOUND_WAIT_MS}`);
        const hold = Number(url.searchParams.get('holdMs') ?? '0');
        if (!Number.isFinite(hold) || hold < 0 || hold > MAX_BOUND_WAIT_MS) throw new HttpError(400, `holdMs must be 0..${MAX_BOUND_WAIT_MS}`);
        await drain(req);
        let rule = await service.registry.whenBound(test, wait);
        // Bound only because it was the one waiting: the test's own SYN may still come and displace a
        // stranger's flow; the answer says what holds after `hold` ms, which saves the initiator asking again.
        const held = rule === 'only-test' && hold > 0;
        if (held) {
          await new Promise((wake) => setTimeout(wake, hold));
          rule = test.bound?.rule;
        }
        const from = rule ? service.registry.boundFrom(test) : undefined;
        return reply(res, 200, { bound: rule !== undefined, ...(rule ? { rule } : {}), ...(from ? { from } : {}), ...(test.strangerSyns ? { strangerSyns: test.strangerSyns } : {}), ...(held ? { held } : {}) });
      }
      case 'POST sessions/:/tests/:/collect': {
        const session = findSession(parts[2]);
        const test = service.registry.test(session.id, parts[4]);
        if (!test) throw new HttpError(404, `no active test ${parts[4]} in session ${session.id} (already collected, or never registered)`);
        const settle = Number(url.searchParams.get('settleMs') ?? '0');
        if (!Number.isFinite(settle) || settle < 0 || settle > MAX_SETTLE_MS) throw new HttpError(400, `settleMs must be 0..${MAX_SETTLE_MS}`);
        await drain(req);
        if (settle > 0) await new Promise((r) => setTimeout(r, settle));
        const unattributed = service.registry.unattributedSince(test);
        const unattributedFromInitiator = service.registry.unattributedFromSessionSince(test);
        const { segments, attribution, behind, notSent, captureLost, displaced, strangerSyns, tokens } = service.collect(test);
        const response: TestSegmentsResponse = {
          testId: test.testId, segments, attribution, unattributed, unattributedFromInitiator, ...(behind ? { behind } : {}), ...(notSent ? { notSent } : {}), ...(captureLost ? { captureLost } : {}),
          ...(displaced.length ? { displaced } : {}), ...(strangerSyns ? { strangerSyns } : {}), ...(tokens.length ? { tokens } : {}),
        };
        return reply(res, 200, response);
      }
      case 'POST runs': {
        if (!options.collection) throw new HttpError(404, 'this responder does not collect runs');
        const uploadWaitMs = allowUpload(client);
        if (uploadWaitMs > 0) throw new HttpError(429, `more than ${uploadRate} runs submitted from this address in the last hour; try again later`, { 'retry-after': String(Math.ceil(uploadWaitMs / 1000)) });
        try {
          const { body } = await readJson(req, parseUpload, MAX_UPLOAD_BYTES);
          const stored = storeUpload(options.collection, body);
          return reply(res, stored.outcome === 'stored' ? 201 : 200, stored);
        } catch (error) {
          if (error instanceof UploadError) throw new HttpError(error.code === 'RUN_CONFLICT' ? 409 : 400, error.message);
          if ((error as { code?: unknown }).code === 'SQLITE_BUSY') {
            throw new HttpError(503, 'the responder\'s database stayed busy (another writer held it for 5 s); nothing was stored: submit again in a minute');
          }
          throw error;
        }
      }
      case 'DELETE sessions/:': {
        service.closeSession(findSession(parts[2]));
        res.writeHead(204).end();
        return;
      }
      default:
        throw new HttpError(404, `no route ${req.method} ${url.pathname}`);
    }
  }

  function findSession(id: string | undefined): NonNullable<ReturnType<ResponderService['registry']['session']>> {
    const session = id ? options.service.registry.session(id) : undefined;
    if (!session) throw new HttpError(404, `unknown session ${id ?? ''}; open one with POST /${CONTROL_API_VERSION}/sessions`);
    return session;
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '::', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    reloadTls() {
      if (!options.tls) return;
      (server as TlsServer).setSecureContext(readTls(options.tls));
    },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/**
 * A token bucket per client (an address, or a session): `burst` tokens, refilled at `perMs` tokens per
 * millisecond; one per call. Says 0 when the call may go ahead, else how many ms until it may (Retry-After).
 */
function perClientBucket(burst: number, perMs: number): (client: string) => number {
  const buckets = new Map<string, { tokens: number; at: number }>();
  return (client) => {
    const now = Date.now();
    // Bounded however many addresses call: a refilled bucket is the same as none.
    if (buckets.size >= 10_000) for (const [key, b] of buckets) if (b.tokens + (now - b.at) * perMs >= burst) buckets.delete(key);
    const b = buckets.get(client) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + (now - b.at) * perMs);
    b.at = now;
    buckets.set(client, b);
    if (b.tokens < 1) return (1 - b.tokens) / perMs;
    b.tokens -= 1;
    return 0;
  };
}

function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  // A body left unread (after a 413, say) is read and discarded by node, so the client can finish
  // sending and read this answer; closing the connection instead would fail its write (EPIPE).
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

async function readBody(req: IncomingMessage, limit = MAX_CONTROL_BODY_BYTES): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limit) throw new HttpError(413, `request body of ${declared} bytes exceeds the limit of ${limit}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(413, `request body exceeds the limit of ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

const drain = (req: IncomingMessage): Promise<Buffer> => readBody(req);

/** Validation by a control-protocol schema: a 400 with every problem. */
const bySchema = <T>(schema: z.ZodType<T>) => (value: unknown): T => {
  const result = schema.safeParse(value);
  if (!result.success) throw new HttpError(400, `invalid request: ${describeValidationError(result.error)}`);
  return result.data;
};

/** Reads a JSON body of at most `limit` bytes and validates it with `parse`, which throws when it is not valid. */
async function readJson<T>(req: IncomingMessage, parse: (value: unknown) => T, limit = MAX_CONTROL_BODY_BYTES): Promise<{ body: T; bytes: number }> {
  const raw = await readBody(req, limit);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new HttpError(400, 'request body is not valid JSON');
  }
  // Headers count too: they are bytes the initiator sent us.
  return { body: parse(parsed), bytes: raw.length + 200 };
}

/** "::ffff:192.0.2.1" (IPv4-mapped, from a dual-stack listener) -> "192.0.2.1". */
function normaliseAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
