/**
 * A localised run through submission, collection and merge: its hop rows (real ICMP errors from the
 * lab, test/helpers/hops.ts) travel with their test; anonymised, the volunteer's address is gone from
 * the copies, the quotes and the errors (truncated to its /24 or /48) with every checksum exactly as
 * valid as before, while the routers' addresses stay; the responder stores them once; merge copies
 * them and tells a run with other hop rows from the same run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { anonymizeUpload, truncateAddress } from '../../initiator/anonymize.js';
import { storeUpload } from '../../responder/collection.js';
import { mergeDatabases } from '../../results/write/merge.js';
import { Store } from '../../shared/store.js';
import { parseUpload, runToUpload } from '../../shared/upload.js';
import { addressToBytes } from '../../shared/wire/address.js';
import { decodeIcmpError } from '../../shared/wire/icmp-packet.js';
import { decodePacket } from '../../shared/wire/packet.js';
import { addLocatedRun, fixtureHops } from '../helpers/hops.js';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'mbprobe-located-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const RUN = '5c0f4e35-9f6a-4c55-8f44-7b0e2f7d2a10';
const contains = (haystack: Uint8Array, needle: Uint8Array): boolean => Buffer.from(haystack).includes(Buffer.from(needle));
const b64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));

describe.each([4, 6] as const)('a localised run over IPv%i', (family) => {
  it('is submitted with its hop rows, validated, and stored by the responder once', () => {
    const volunteer = Store.open(':memory:');
    addLocatedRun(volunteer, RUN, family);
    const upload = parseUpload(runToUpload(volunteer, RUN));
    const [test] = upload.tests;
    expect(test.hops?.map((h) => [h.ttl, h.router, h.quoteLength])).toEqual(fixtureHops(family).hops.map((h) => [h.ttl, h.router, h.quoteLength]));
    const responder = Store.open(':memory:');
    expect(storeUpload(responder, upload).outcome).toBe('stored');
    expect(storeUpload(responder, upload).outcome).toBe('duplicate');
    const stored = responder.tests(RUN)[0];
    expect(responder.hops(stored.id)).toEqual(volunteer.hops(volunteer.tests(RUN)[0].id).map((h) => ({ ...h, id: expect.any(Number), testId: stored.id })));
    expect((stored.detail as { location: { status: string } }).location.status).toBe('changed');
  });

  it('anonymised: the volunteer\'s address is truncated in every copy, quote and error, every checksum as valid as before, routers kept', () => {
    const volunteer = Store.open(':memory:');
    addLocatedRun(volunteer, RUN, family);
    const { source } = fixtureHops(family);
    const original = runToUpload(volunteer, RUN);
    const { upload, replaced } = anonymizeUpload(original);
    expect(replaced).toEqual([{ address: source, as: truncateAddress(source) }]);
    parseUpload(upload);
    const address = addressToBytes(source);
    for (const [i, hop] of upload.tests[0].hops!.entries()) {
      const before = original.tests[0].hops![i];
      expect(hop.router).toBe(before.router);
      for (const field of ['sent', 'quote', 'packet'] as const) expect({ field, leaks: contains(b64(hop[field]!), address) }).toEqual({ field, leaks: false });
      const sent = decodePacket(b64(hop.sent));
      expect(sent.ip!.src).toBe(truncateAddress(source));
      expect(sent.checksums).toEqual(decodePacket(b64(before.sent)).checksums);
      const error = decodeIcmpError(b64(hop.packet!))!;
      const errorBefore = decodeIcmpError(b64(before.packet!))!;
      expect(error.ip.dst).toBe(truncateAddress(source));
      expect(error.quote.packet.ip!.src).toBe(truncateAddress(source));
      expect(error.icmp.checksumValid).toBe(errorBefore.icmp.checksumValid);
      expect(error.icmp.checksumValid).toBe(true);
      expect(error.quote.packet.checksums).toEqual(errorBefore.quote.packet.checksums);
      expect(decodePacket(b64(hop.packet!)).checksums.ip).toBe(decodePacket(b64(before.packet!)).checksums.ip);
      expect(b64(hop.quote!)).toEqual(error.quote.bytes);
    }
    expect(JSON.stringify(upload.tests[0].hops)).not.toContain(source);
    expect(JSON.stringify(upload.tests[0].detail)).toContain(fixtureHops(family).hops[1].router!);
  });

  it('merged: hop rows copied with their test; the same run is recognised, one with other hop rows refused', () => {
    const a = join(dir, 'a.sqlite');
    const out = join(dir, 'out.sqlite');
    const store = Store.open(a);
    addLocatedRun(store, RUN, family);
    store.close();
    const first = mergeDatabases(out, [a]);
    expect(first.totals.runsMerged).toBe(1);
    const merged = Store.open(out, { readonly: true });
    const before = Store.open(a, { readonly: true });
    expect(merged.hops(merged.tests(RUN)[0].id).map(({ id: _, testId: __, ...h }) => h)).toEqual(before.hops(before.tests(RUN)[0].id).map(({ id: _, testId: __, ...h }) => h));
    merged.close();
    before.close();
    expect(mergeDatabases(out, [a]).totals.duplicatesSkipped).toBe(1);
    const edited = Store.open(a);
    edited.db.prepare('UPDATE hops SET router = ? WHERE ttl = 3').run('192.0.2.99');
    edited.close();
    const again = mergeDatabases(out, [a]);
    expect(again.totals.runsRefused).toBe(1);
    expect(JSON.stringify(again)).toContain('hop rows differ');
  });
});
