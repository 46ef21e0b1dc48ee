/**
 * TLS on the control port: the responder serves HTTPS and reloads its certificate; the initiator
 * verifies it against --ca (or the system's CAs), by the name the volunteer gave, and talks plain
 * HTTP only with --insecure. Certificates are made here with openssl (the test skips without it).
 */
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../shared/store.js';
import { ResponderService } from '../../responder/service.js';
import { startControlApi } from '../../responder/control-api.js';
import { ControlClient } from '../../initiator/control-client.js';
import { main as initiator } from '../../initiator/cli.js';
import { fingerprintOf, hasOpenssl, makeCertificates } from '../helpers/certificates.js';

/** The SHA-256 fingerprint of the certificate a fresh TLS connection to the port gets. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.on('error', reject);
  });
}

describe.skipIf(!hasOpenssl)('TLS on the control port', () => {
  let dir: string;
  let certs: ReturnType<typeof makeCertificates>;
  let store: Store;
  let tlsApi: Awaited<ReturnType<typeof startControlApi>>;
  let plainApi: Awaited<ReturnType<typeof startControlApi>>;
  let servedCert: string;
  let servedKey: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mbprobe-tls-'));
    certs = makeCertificates(dir);
    servedCert = join(dir, 'served.pem');
    servedKey = join(dir, 'served.key');
    writeFileSync(servedCert, readFileSync(certs.cert));
    writeFileSync(servedKey, readFileSync(certs.key));
    store = Store.open(':memory:');
    store.insertRun({ id: 'r', startedAt: new Date().toISOString(), toolVersion: 'test' });
    const service = new ResponderService({ ports: [34343], source: { onPacket() {}, close() {} }, sinks: { 4: { send: async () => undefined, close() {} } }, store, runId: 'r' });
    tlsApi = await startControlApi({ port: 0, host: '127.0.0.1', service, ports: [34343], tls: { certPath: servedCert, keyPath: servedKey } });
    plainApi = await startControlApi({ port: 0, host: '127.0.0.1', service, ports: [34343] });
  });
  afterAll(async () => {
    await tlsApi.close();
    await plainApi.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is verified against --ca by the name the volunteer gave, or by the address in the certificate', async () => {
    const byName = new ControlClient('127.0.0.1', tlsApi.port, 2000, { ca: readFileSync(certs.ca), serverName: 'responder.test' });
    expect((await byName.hello()).ports).toEqual([34343]);
    byName.close();
    const byAddress = new ControlClient('127.0.0.1', tlsApi.port, 2000, { ca: readFileSync(certs.ca) });
    expect((await byAddress.hello()).ports).toEqual([34343]);
    byAddress.close();
  });

  it('is refused when the certificate is not trusted or names another host, saying what to do', async () => {
    const system = new ControlClient('127.0.0.1', tlsApi.port, 2000, { serverName: 'responder.test' });
    await expect(system.hello()).rejects.toMatchObject({ code: 'RESPONDER_NOT_VERIFIED', message: expect.stringMatching(/could not be verified.*--ca FILE/) });
    const otherName = new ControlClient('127.0.0.1', tlsApi.port, 2000, { ca: readFileSync(certs.ca), serverName: 'other.test' });
    await expect(otherName.hello()).rejects.toMatchObject({ code: 'RESPONDER_NOT_VERIFIED', message: expect.stringMatching(/ERR_TLS_CERT_ALTNAME_INVALID/) });
  });

  it('says --insecure is needed for a responder without TLS, and then talks plain HTTP', async () => {
    const tls = new ControlClient('127.0.0.1', plainApi.port, 2000);
    await expect(tls.hello()).rejects.toMatchObject({ code: 'RESPONDER_NOT_TLS', message: expect.stringMatching(/pass --insecure/) });
    const plain = new ControlClient('127.0.0.1', plainApi.port, 2000, { insecure: true });
    const plainHello = await plain.hello();
    expect(plainHello.ports).toEqual([34343]);
    // what the initiator may use of this responder (the token lane only with 'token')
    expect(plainHello.features).toEqual(['token']);
    plain.close();
  });

  it('reloads the certificate for new connections, and keeps the old one when the new files are not usable', async () => {
    expect(await servedFingerprint(tlsApi.port)).toBe(fingerprintOf(certs.cert));
    const renewed = makeCertificates(mkdtempSync(join(dir, 'renewed-')));
    writeFileSync(servedCert, readFileSync(renewed.cert));
    writeFileSync(servedKey, readFileSync(renewed.key));
    tlsApi.reloadTls();
    expect(await servedFingerprint(tlsApi.port)).toBe(fingerprintOf(renewed.cert));
    writeFileSync(servedKey, readFileSync(certs.key)); // a key that does not match the certificate
    expect(() => tlsApi.reloadTls()).toThrow();
    expect(await servedFingerprint(tlsApi.port)).toBe(fingerprintOf(renewed.cert));
  });

  it('mbprobe-initiator refuses --ca together with --insecure, and warns about --insecure', async () => {
    let err = '';
    const io = { stdout: () => undefined, stderr: (s: string) => void (err += s) };
    expect(await initiator(['submit', '--responder', '127.0.0.1', '--ca', certs.ca, '--insecure', '--db', join(dir, 'none.sqlite'), '--run', 'x'], io)).toBe(2);
    expect(err).toMatch(/--insecure talks plain HTTP, so --ca has nothing to verify/);
  });
});
