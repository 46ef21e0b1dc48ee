/**
 * Decoders never throw on wire bytes: whatever they cannot make sense of becomes a DecodeIssue
 * beside what they could parse, because middleboxes produce garbage and the tool must record it.
 */
export type DecodeIssueCode =
  | 'truncated'
  | 'bad-version'
  | 'bad-header-length'
  | 'bad-total-length'
  | 'bad-data-offset'
  | 'bad-option-length'
  | 'bad-checksum'
  | 'fragment'
  | 'not-tcp';

export type WireLayer = 'ip' | 'tcp' | 'option' | 'payload';

export interface DecodeIssue {
  code: DecodeIssueCode;
  layer: WireLayer;
  /** Byte offset in the buffer handed to the decoder of that layer. */
  offset: number;
  message: string;
}

export function issue(code: DecodeIssueCode, layer: WireLayer, offset: number, message: string): DecodeIssue {
  return { code, layer, offset, message };
}
