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
  | 'not-tcp'
  /** ICMP: an RFC 4884 extension structure that is not one (version, object lengths). */
  | 'bad-extension'
  /** ICMP: the RFC 4884 length of the original datagram runs past the message or is below its minimum. */
  | 'bad-original-length';

export type WireLayer = 'ip' | 'tcp' | 'option' | 'payload';
/** Where an issue was found: a layer of a TCP segment, or an ICMP/ICMPv6 message. */
export type IssueLayer = WireLayer | 'icmp';

export interface DecodeIssue {
  code: DecodeIssueCode;
  layer: IssueLayer;
  /** Byte offset in the buffer handed to the decoder of that layer. */
  offset: number;
  message: string;
}

export function issue(code: DecodeIssueCode, layer: IssueLayer, offset: number, message: string): DecodeIssue {
  return { code, layer, offset, message };
}
