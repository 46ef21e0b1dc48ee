import {
  CONTROL_API_VERSION, type OpenSessionRequest, type OpenSessionResponse, type RegisterTestRequest, type TestSegmentsResponse,
} from '../shared/control.js';
import type { RunUpload } from '../shared/upload.js';
import { MbprobeError } from '../shared/wire/errors.js';

/** The initiator's side of the control protocol (see responder/control-api.ts). */
export class ControlClient {
  private readonly base: string;

  constructor(host: string, port: number, private readonly timeoutMs = 5000) {
    this.base = `http://${host.includes(':') ? `[${host}]` : host}:${port}/${CONTROL_API_VERSION}`;
  }

  hello(): Promise<{ toolVersion: string; ports: number[]; observedAddress: string }> {
    return this.call('GET', '/hello');
  }

  openSession(request: OpenSessionRequest): Promise<OpenSessionResponse> {
    return this.call('POST', '/sessions', request);
  }

  registerTest(sessionId: string, request: RegisterTestRequest): Promise<unknown> {
    return this.call('POST', `/sessions/${sessionId}/tests`, request);
  }

  collect(sessionId: string, testId: string, settleMs: number): Promise<TestSegmentsResponse> {
    return this.call('POST', `/sessions/${sessionId}/tests/${encodeURIComponent(testId)}/collect?settleMs=${settleMs}`);
  }

  closeSession(sessionId: string): Promise<unknown> {
    return this.call('DELETE', `/sessions/${sessionId}`);
  }

  /** Submits a finished run to the responder's collection endpoint. */
  submitRun(upload: RunUpload): Promise<{ runId: string; outcome: 'stored' | 'duplicate'; tests: number; segments: number; diffs: number }> {
    return this.call('POST', '/runs', upload, 60_000);
  }

  private async call<T>(method: string, path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    let response: Response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers: body === undefined ? undefined : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
      throw new MbprobeError('RESPONDER_UNREACHABLE', `cannot reach the responder's control API at ${this.base} (${cause}): check --responder and --control-port, and that mbprobe-responder runs there`, { cause: error });
    }
    const text = await response.text();
    if (!response.ok) {
      let reason = text;
      try {
        reason = (JSON.parse(text) as { error?: string }).error ?? text;
      } catch { /* plain text answer */ }
      throw new MbprobeError('CONTROL_REFUSED', `the responder refused ${method} ${path}: ${response.status} ${reason}`);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }
}
