/**
 * Payloads shaped like the protocol of the port, because intercepting proxies act only on traffic that
 * looks like their protocol: an HTTP request on 80, a TLS ClientHello record on 443, a plain pattern
 * elsewhere. Always exactly `length` bytes, deterministic, so sent and received bytes can be compared.
 */
export function payloadFor(port: number, length: number, shape: 'auto' | 'raw' = 'auto'): Uint8Array {
  if (shape === 'auto' && port === 80) return httpRequest(length);
  if (shape === 'auto' && port === 443) return tlsClientHello(length);
  return pattern(length);
}

function pattern(length: number, offset = 0): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = 0x61 + ((offset + i) % 26);
  return out;
}

function httpRequest(length: number): Uint8Array {
  const head = 'GET / HTTP/1.1\r\nHost: mbprobe.test\r\nUser-Agent: mbprobe\r\nX-Pad: ';
  const tail = '\r\n\r\n';
  const text = new TextEncoder().encode(head);
  if (length < text.length + tail.length) return pattern(length);
  const out = pattern(length);
  out.set(text, 0);
  out.set(new TextEncoder().encode(tail), length - tail.length);
  return out;
}

function tlsClientHello(length: number): Uint8Array {
  const out = pattern(length);
  if (length < 9) return out;
  // TLS record: handshake(22), version 3.1, record length; handshake: client_hello(1), 24-bit length.
  const recordLength = length - 5;
  out.set([0x16, 0x03, 0x01, recordLength >> 8, recordLength & 0xff, 0x01, 0, (recordLength - 4) >> 8, (recordLength - 4) & 0xff], 0);
  if (length >= 11) out.set([0x03, 0x03], 9);
  return out;
}
