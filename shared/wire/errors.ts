/** Typed errors with stable codes: callers branch on `code`, people read `message`. */
export class MbprobeError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MbprobeError';
    this.code = code;
  }
}

/** Thrown by encoders when asked to write something a field cannot hold (a programming error, never wire data). */
export class EncodeError extends MbprobeError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'EncodeError';
  }
}
