/**
 * HTTP/1.x request heads as bytes on the wire: what a proxy added, removed or rewrote in a request
 * (Via, X-Forwarded-For, an absolute-form target). Tolerant like a proxy, never throws: bytes are read
 * one character each (latin1), bare LF ends a line as CRLF does, and a head without its blank line is
 * returned as far as it goes.
 */

export interface HttpRequestLine {
  method: string;
  target: string;
  version: string;
  /** The line as received, without its line ending. */
  line: string;
}

export interface HttpHeaderLine {
  /** The field name as written. */
  name: string;
  /** `name` in lower case, and `#n` for its n-th occurrence from the second on (`set-cookie#2`): how lines are paired. */
  key: string;
  /** The value without surrounding whitespace (folded lines joined by one space). */
  value: string;
  /** The line as received, without its line ending (folded lines joined by CRLF). */
  line: string;
}

export interface HttpRequestHead {
  requestLine: HttpRequestLine;
  headers: HttpHeaderLine[];
  /** Lines of the head that are not `name: value` (kept, so a diff can name them too). */
  otherLines: string[];
  /** The blank line ending the head was seen, so `headers` holds every header line. */
  complete: boolean;
  /** Bytes of the head, including the blank line when complete (only whole lines otherwise). */
  length: number;
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const REQUEST_LINE = new RegExp(`^(${TOKEN}) +(\\S+) +(HTTP/\\d+(?:\\.\\d+)?) *$`);
const HEADER_LINE = new RegExp(`^(${TOKEN})[ \\t]*:(.*)$`);
/** `method SP`: a line starting like this is meant as a request line, whatever follows. */
const REQUEST_START = new RegExp(`^${TOKEN} `);

export function parseRequestLine(line: string): HttpRequestLine | undefined {
  const m = REQUEST_LINE.exec(line);
  return m ? { method: m[1], target: m[2], version: m[3], line } : undefined;
}

const latin1 = (bytes: Uint8Array): string => {
  let text = '';
  // In chunks: String.fromCharCode takes its arguments on the stack.
  for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return text;
};

/** The whole lines at the start of `text`, up to and including the first empty one. */
function headLines(text: string): { lines: string[]; complete: boolean; length: number } {
  const lines: string[] = [];
  let at = 0;
  for (;;) {
    const end = text.indexOf('\n', at);
    if (end < 0) return { lines, complete: false, length: at };
    const line = text.slice(at, end > at && text[end - 1] === '\r' ? end - 1 : end);
    at = end + 1;
    if (line === '') return { lines, complete: true, length: at };
    lines.push(line);
  }
}

/** Does the payload begin like a request line (`method SP`), whether or not the rest of the line is one? */
export function startsLikeRequest(bytes: Uint8Array): boolean {
  return REQUEST_START.test(latin1(bytes.subarray(0, 64)));
}

/** The request head at the start of `bytes`; undefined unless they start with a whole HTTP request line. */
export function parseRequestHead(bytes: Uint8Array): HttpRequestHead | undefined {
  const { lines, complete, length } = headLines(latin1(bytes));
  const requestLine = lines.length ? parseRequestLine(lines[0]) : undefined;
  if (!requestLine) return undefined;
  const headers: HttpHeaderLine[] = [];
  const otherLines: string[] = [];
  const seen = new Map<string, number>();
  let previous: HttpHeaderLine | undefined;
  for (const line of lines.slice(1)) {
    // Obsolete line folding (RFC 9112 5.2): the line continues the previous field's value.
    if ((line.startsWith(' ') || line.startsWith('\t')) && previous) {
      previous.line += `\r\n${line}`;
      previous.value = `${previous.value} ${line.trim()}`.trim();
      continue;
    }
    const m = HEADER_LINE.exec(line);
    if (!m) {
      otherLines.push(line);
      previous = undefined;
      continue;
    }
    const lower = m[1].toLowerCase();
    const nth = (seen.get(lower) ?? 0) + 1;
    seen.set(lower, nth);
    previous = { name: m[1], key: nth > 1 ? `${lower}#${nth}` : lower, value: m[2].trim(), line };
    headers.push(previous);
  }
  return { requestLine, headers, otherLines, complete, length };
}

export interface HttpHeadDiff {
  /** Set when the request line's text differs (`GET /mbprobe HTTP/1.1` -> `GET http://host/mbprobe HTTP/1.1`). */
  requestLine?: { sent: string; received: string };
  /** Whether header lines were compared: only when both heads are complete, since a cut head would seem to lose its tail. */
  headersCompared: boolean;
  added: HttpHeaderLine[];
  removed: HttpHeaderLine[];
  /** Same name (and occurrence), other line: another value, or the same value with other case or spacing. */
  changed: Array<{ sent: HttpHeaderLine; received: HttpHeaderLine }>;
  /** Keys of the header lines both sides have, when their order differs. */
  reordered?: { sent: string[]; received: string[] };
  /** Non-header lines only one side has. */
  otherLinesAdded: string[];
  otherLinesRemoved: string[];
}

/** Multiset difference: the items of `a` not matched one-for-one in `b`, in `a`'s order. */
function without(a: readonly string[], b: readonly string[]): string[] {
  const left = [...b];
  return a.filter((x) => {
    const i = left.indexOf(x);
    if (i < 0) return true;
    left.splice(i, 1);
    return false;
  });
}

/** Every difference between the head a side sent and the head that arrived, header lines paired by name and occurrence. */
export function diffHttpHeads(sent: HttpRequestHead, received: HttpRequestHead): HttpHeadDiff {
  const diff: HttpHeadDiff = { headersCompared: sent.complete && received.complete, added: [], removed: [], changed: [], otherLinesAdded: [], otherLinesRemoved: [] };
  if (sent.requestLine.line !== received.requestLine.line) diff.requestLine = { sent: sent.requestLine.line, received: received.requestLine.line };
  if (!diff.headersCompared) return diff;
  const receivedByKey = new Map(received.headers.map((h) => [h.key, h]));
  const sentKeys = new Set(sent.headers.map((h) => h.key));
  for (const header of sent.headers) {
    const other = receivedByKey.get(header.key);
    if (!other) diff.removed.push(header);
    else if (other.line !== header.line) diff.changed.push({ sent: header, received: other });
  }
  diff.added = received.headers.filter((h) => !sentKeys.has(h.key));
  const keptSent = sent.headers.filter((h) => receivedByKey.has(h.key)).map((h) => h.key);
  const keptReceived = received.headers.filter((h) => sentKeys.has(h.key)).map((h) => h.key);
  if (keptSent.join('\n') !== keptReceived.join('\n')) diff.reordered = { sent: keptSent, received: keptReceived };
  diff.otherLinesAdded = without(received.otherLines, sent.otherLines);
  diff.otherLinesRemoved = without(sent.otherLines, received.otherLines);
  return diff;
}
