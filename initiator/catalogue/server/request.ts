/**
 * What a scan sends a server as data, when a test needs data (TFO, data in a SYN, ECT(0) data): what an
 * ordinary client sends first. On 443 a TLS ClientHello (initiator/payloads.ts, with the server's name
 * in SNI when it has one); on every other port an HTTP HEAD request for / that names mbprobe in its
 * User-Agent, so a server's operator who looks at the log sees what it was (README: "Scanning servers").
 */
import { payloadFor } from '../../payloads.js';

/** The ClientHello's size: about what browsers send (Chrome pads its hellos to 517 bytes). */
export const CLIENT_HELLO_BYTES = 517;

/** Identifies the scan to server operators, with whom to contact when the scanner gave it (`scan --contact`). */
export const scanUserAgent = (contact?: string): string => `mbprobe-scan/1 (TCP feature measurement${contact ? `; contact: ${contact}` : ''})`;

/** `name` as a Host header value: the name when there is one, else the address (IPv6 in brackets). */
function hostHeader(address: string, name: string | undefined, port: number): string {
  const host = name ?? (address.includes(':') ? `[${address}]` : address);
  return port === 80 ? host : `${host}:${port}`;
}

export function requestFor(target: { address: string; name?: string; port: number }, contact?: string): Uint8Array {
  if (target.port === 443) return payloadFor(443, CLIENT_HELLO_BYTES, 'auto', target.name ?? target.address);
  const head = `HEAD / HTTP/1.1\r\nHost: ${hostHeader(target.address, target.name, target.port)}\r\nUser-Agent: ${scanUserAgent(contact)}\r\nConnection: close\r\n\r\n`;
  return Uint8Array.from(head, (c) => c.charCodeAt(0));
}
