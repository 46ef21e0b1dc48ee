/** Certificates for TLS tests, made with openssl (tests skip themselves without it). */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const hasOpenssl = ((): boolean => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** A CA, and a server certificate it signed for `name`, 127.0.0.1 and `addresses`: PEM file paths in `dir`. */
export function makeCertificates(dir: string, name = 'responder.test', addresses: string[] = []): { ca: string; cert: string; key: string } {
  const at = (f: string): string => join(dir, f);
  const run = (args: string[]): void => void execFileSync('openssl', args, { stdio: 'pipe' });
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', at('ca.key'), '-out', at('ca.pem'), '-days', '2', '-subj', '/CN=mbprobe test CA']);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', at(`${name}.key`), '-out', at(`${name}.csr`), '-subj', `/CN=${name}`]);
  writeFileSync(at('ext.cnf'), `subjectAltName=${[`DNS:${name}`, 'IP:127.0.0.1', ...addresses.map((a) => `IP:${a}`)].join(',')}\n`);
  run(['x509', '-req', '-in', at(`${name}.csr`), '-CA', at('ca.pem'), '-CAkey', at('ca.key'), '-CAcreateserial', '-out', at(`${name}.pem`), '-days', '2', '-extfile', at('ext.cnf')]);
  return { ca: at('ca.pem'), cert: at(`${name}.pem`), key: at(`${name}.key`) };
}

/** openssl's SHA-256 fingerprint of a PEM certificate ("AB:CD:..."), as Node's fingerprint256 writes it. */
export const fingerprintOf = (pem: string): string => execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', pem], { encoding: 'utf8' }).trim().split('=')[1];
