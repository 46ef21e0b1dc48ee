import {
  CONTROL_API_VERSION, type HelloResponse, type OpenSessionRequest, type OpenSessionResponse, type RegisterTestRequest, type TestBoundResponse, type TestSegmentsResponse,
} from '../shared/control.js';
import { existsSync, readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import type { RunUpload } from '../shared/upload.js';
import { MbprobeError } from '../shared/wire/errors.js';

/**
 * How the initiator reaches the control port: HTTPS verified against the system's CAs (Debian's
 * /etc/ssl/certs/ca-certificates.crt, local additions included) or only against `ca`; or, with
 * `insecure`, plain HTTP (the CLI warns).
 */
export interface ControlTransport {
  insecure?: boolean;
  /** PEM certificates to trust instead of the system's (--ca FILE). */
  ca?: string | Buffer;
  /** Source address of the control connections (a lab driving sessions from several addresses). */
  localAddress?: string;
  /** The responder's name as the user gave it, when `host` is the address it resolved to: the name its certificate must carry. */
  serverName?: string;
}

const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
let systemCas: Buffer | undefined;

/** The system's trusted CAs; undefined (Node's own list) where the Debian bundle is missing. */
function systemCaBundle(): Buffer | undefined {
  if (systemCas === undefined && existsSync(SYSTEM_CA_BUNDLE)) systemCas = readFileSync(SYSTEM_CA_BUNDLE);
  return systemCas;
}

const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED', 'CERT_REJECTED',
]);

/** SNI and the name checked in the certificate: a DNS name (an address is checked against the certificate's IP entries). */
const serverNameFor = (name: string): string | undefined => (isIP(name.replace(/^\[|\]$/g, '')) ? undefined : name);

/** How many times a request that changes the responder's state is sent when its answer does not come. */
export const CONTROL_ATTEMPTS = 3;

/**
 * A request the responder refused as too many (429) is sent again after the wait it asked for
 * (Retry-After), this many times at most, and only when that wait is at most RATE_LIMIT_MAX_WAIT_S:
 * a crowd at the responder costs a volunteer a moment, not a test; an hour's upload limit is an error.
 */
export const RATE_LIMIT_ATTEMPTS = 5;
export const RATE_LIMIT_MAX_WAIT_S = 5;

/** The HTTP status the responder refused a request with, if it did. */
const refusalStatus = (error: unknown): number | undefined => (error instanceof MbprobeError && error.code === 'CONTROL_REFUSED' ? (error as { status?: number }).status : undefined);

/** The request's answer never came (a timeout, a reset connection): the responder may or may not have acted on it. */
const isUnreachable = (error: unknown): boolean => error instanceof MbprobeError && error.code === 'RESPONDER_UNREACHABLE';

/** The initiator's side of the control protocol (see responder/control-api.ts). */
export class ControlClient {
  private readonly base: string;
  private readonly agent: HttpAgent;

  constructor(private readonly host: string, port: number, private readonly timeoutMs = 5000, private readonly transport: ControlTransport = {}) {
    const scheme = transport.insecure ? 'http' : 'https';
    this.base = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}/${CONTROL_API_VERSION}`;
    // One kept-alive connection per client: a run makes hundreds of requests, each a TLS handshake otherwise.
    this.agent = transport.insecure
      ? new HttpAgent({ keepAlive: true, localAddress: transport.localAddress })
      : new HttpsAgent({ keepAlive: true, localAddress: transport.localAddress, ca: transport.ca ?? systemCaBundle(), servername: serverNameFor(transport.serverName ?? host) });
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  /**
   * Opens `connections` kept-alive connections at once (each answers a hello), so that as many
   * requests made at once later (the tests' registrations, when a port's first test has shown what
   * the path keeps) each find one ready instead of paying a TCP and TLS handshake first. Failures are
   * left to the requests that follow.
   */
  async warm(connections: number): Promise<void> {
    await Promise.allSettled(Array.from({ length: connections }, () => this.hello()));
  }

  hello(): Promise<HelloResponse> {
    return this.call('GET', '/hello');
  }

  openSession(request: OpenSessionRequest): Promise<OpenSessionResponse> {
    return this.call('POST', '/sessions', request);
  }

  /**
   * Registers a test, sending the request again (up to CONTROL_ATTEMPTS times) when its answer does
   * not come: on a lossy path a request can outlast its timeout. A test the responder registered
   * while the initiator gave up on it would stay a candidate for flows nobody else may take; a
   * repeat refused as a duplicate means the first one arrived.
   */
  async registerTest(sessionId: string, request: RegisterTestRequest): Promise<unknown> {
    return this.sentAgain(() => this.call('POST', `/sessions/${sessionId}/tests`, request), (status) => (status === 409 ? { testId: request.testId } : undefined));
  }

  /** Resolves once the responder has bound a flow to the test (by which rule), or says it has not after `waitMs`. */
  whenBound(sessionId: string, testId: string, waitMs: number, holdMs = 0): Promise<TestBoundResponse> {
    const hold = holdMs > 0 ? `&holdMs=${Math.round(holdMs)}` : '';
    return this.call('POST', `/sessions/${sessionId}/tests/${encodeURIComponent(testId)}/bound?waitMs=${Math.round(waitMs)}${hold}`, undefined, this.timeoutMs + waitMs + holdMs);
  }

  /**
   * Collects a test's view (the responder forgets the test then), sending the request again when its
   * answer does not come, as registerTest does. A repeat answered "no such test" means the first
   * one was served and its answer lost: the view is gone, and the error says so.
   */
  async collect(sessionId: string, testId: string, settleMs: number): Promise<TestSegmentsResponse> {
    return this.sentAgain(() => this.call<TestSegmentsResponse>('POST', `/sessions/${sessionId}/tests/${encodeURIComponent(testId)}/collect?settleMs=${settleMs}`), (status, attempt, error) => {
      if (status !== 404) return undefined;
      throw new MbprobeError('CONTROL_REFUSED', `the responder handed over the view of test ${testId}, but its answer was lost on the way (${attempt} requests)`, { cause: error });
    });
  }

  /**
   * Sends a request that changes the responder's state, again (up to CONTROL_ATTEMPTS times) while
   * its answer does not come. A repeat the responder refuses goes to `onRepeatRefused` with the
   * status: what it returns is the answer (the first request arrived), undefined passes the refusal on.
   */
  private async sentAgain<T>(send: () => Promise<T>, onRepeatRefused: (status: number, attempt: number, error: unknown) => T | undefined): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await send();
      } catch (error) {
        const status = attempt > 1 ? refusalStatus(error) : undefined;
        const answer = status === undefined ? undefined : onRepeatRefused(status, attempt, error);
        if (answer !== undefined) return answer;
        if (!isUnreachable(error) || attempt >= CONTROL_ATTEMPTS) throw error;
      }
    }
  }

  closeSession(sessionId: string): Promise<unknown> {
    return this.call('DELETE', `/sessions/${sessionId}`);
  }

  /** Submits a finished run to the responder's collection endpoint. */
  submitRun(upload: RunUpload): Promise<{ runId: string; outcome: 'stored' | 'duplicate'; tests: number; segments: number; diffs: number }> {
    return this.call('POST', '/runs', upload, 60_000);
  }

  private async call<T>(method: string, path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    let response: { status: number; text: string; retryAfterS?: number };
    for (let attempt = 1; ; attempt++) {
      try {
        response = await this.send(method, this.base + path, body === undefined ? undefined : JSON.stringify(body), timeoutMs);
      } catch (error) {
        throw this.unreachable(error);
      }
      const wait = response.retryAfterS;
      if (response.status !== 429 || wait === undefined || wait > RATE_LIMIT_MAX_WAIT_S || attempt >= RATE_LIMIT_ATTEMPTS) break;
      // Refused before the responder acted on it: the same request again is safe. Spread over the wait
      // (a whole second at most, as Retry-After counts), so a crowd's refused requests do not come back at once.
      await new Promise((wake) => setTimeout(wake, Math.max(1, wait) * 1000 * (0.5 + Math.random() / 2)));
    }
    const text = response.text;
    if (response.status < 200 || response.status > 299) {
      let reason = text;
      try {
        reason = (JSON.parse(text) as { error?: string }).error ?? text;
      } catch { /* plain text answer */ }
      throw Object.assign(new MbprobeError('CONTROL_REFUSED', `the responder refused ${method} ${path}: ${response.status} ${reason}`), { status: response.status });
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  private async send(method: string, url: string, body: string | undefined, timeoutMs: number): Promise<{ status: number; text: string; retryAfterS?: number }> {
    try {
      return await this.sendOnce(method, url, body, timeoutMs);
    } catch (error) {
      // A kept-alive connection the responder closed as idle just as this request went out: the
      // responder never read it, so sending it again on a new connection is safe (Node's own advice).
      if ((error as { reusedSocket?: boolean }).reusedSocket && (error as { code?: string }).code === 'ECONNRESET') return this.sendOnce(method, url, body, timeoutMs);
      throw error;
    }
  }

  private sendOnce(method: string, url: string, body: string | undefined, timeoutMs: number): Promise<{ status: number; text: string; retryAfterS?: number }> {
    const request = this.transport.insecure ? httpRequest : httpsRequest;
    return new Promise((resolve, reject) => {
      const req = request(url, {
        method,
        agent: this.agent as never,
        servername: this.transport.insecure ? undefined : serverNameFor(this.transport.serverName ?? this.host),
        headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        // A whole number of milliseconds (AbortSignal.timeout refuses a fraction: waits come from measured round trips).
        signal: AbortSignal.timeout(Math.max(1, Math.ceil(timeoutMs))),
      }, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        const retryAfter = Number(res.headers['retry-after']);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), ...(Number.isFinite(retryAfter) && retryAfter >= 0 ? { retryAfterS: retryAfter } : {}) }));
        res.on('error', reject);
      });
      req.on('error', (error) => reject(Object.assign(error, { reusedSocket: req.reusedSocket })));
      req.end(body);
    });
  }

  private unreachable(error: unknown): MbprobeError {
    const code = (error as { code?: string }).code ?? (error as Error).name;
    const reason = (error as Error).message;
    if (TLS_VERIFY_CODES.has(code)) {
      return new MbprobeError('RESPONDER_NOT_VERIFIED',
        `the responder's certificate at ${this.base} could not be verified (${code}: ${reason}): give the CA that signed it with --ca FILE, or check --responder (it must be the name in the certificate)`, { cause: error });
    }
    if (!this.transport.insecure && (code === 'EPROTO' || /wrong version number|packet length too long/i.test(reason))) {
      return new MbprobeError('RESPONDER_NOT_TLS',
        `the responder at ${this.base} does not speak TLS (${reason}): it runs without --tls-cert; pass --insecure to talk plain HTTP to it (not for submissions over the Internet)`, { cause: error });
    }
    return new MbprobeError('RESPONDER_UNREACHABLE', `cannot reach the responder's control API at ${this.base} (${code}): check --responder and --control-port, and that mbprobe-responder runs there`, { cause: error });
  }
}
