/**
 * The responder as it runs on a public host (README: "Running a public responder"): its systemd unit
 * passes `systemd-analyze verify`; the responder runs as a user that is not root with only the
 * capabilities the unit grants (setpriv, as systemd's AmbientCapabilities would), serves TLS, answers
 * a full lab run correctly, reloads its certificate on SIGHUP, and reports on /metrics and /healthz.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandExists, createLab, projectRoot, removeStaleLabs, type Lab } from '../../lab/index.js';
import { expectedTable, resolveAlternatives, table } from '../../lab/expectations.js';
import type { LabVerdict } from '../../lab/measure.js';
import { Store } from '../../shared/store.js';
import { fingerprintOf, hasOpenssl, makeCertificates } from '../helpers/certificates.js';

const UNIT = join(projectRoot(), 'deploy/mbprobe-responder.service');
/** A uid and gid no account uses: the responder needs no passwd entry, and nothing is left to remove. */
const UID = 61_234;

/** The unit's settings (last value of each key). */
function unitSettings(): Record<string, string> {
  const settings: Record<string, string> = {};
  for (const line of readFileSync(UNIT, 'utf8').split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) settings[m[1]] = m[2];
  }
  return settings;
}

describe('the systemd unit', () => {
  it('grants exactly CAP_NET_RAW and CAP_NET_ADMIN to a dedicated user, sandboxed, restarted on failure, its database in StateDirectory', () => {
    const unit = unitSettings();
    expect(unit).toMatchObject({
      User: 'mbprobe', AmbientCapabilities: 'CAP_NET_RAW CAP_NET_ADMIN', CapabilityBoundingSet: 'CAP_NET_RAW CAP_NET_ADMIN', NoNewPrivileges: 'yes',
      ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes', Restart: 'on-failure', StateDirectory: 'mbprobe-responder', ExecReload: '/bin/kill -HUP $MAINPID',
    });
    expect(unit.ExecStart).toMatch(/--db \$\{STATE_DIRECTORY\}\/responder\.sqlite/);
    expect(readFileSync(join(projectRoot(), 'deploy/mbprobe-responder.sysusers'), 'utf8')).toMatch(/^u mbprobe /m);
  });

  it.skipIf(!commandExists('systemd-analyze'))('passes systemd-analyze verify without a warning (and the check fails on a broken copy)', () => {
    const verify = (path: string) => spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' });
    const good = verify(UNIT);
    expect({ status: good.status, output: `${good.stdout}${good.stderr}`.trim() }).toEqual({ status: 0, output: '' });
    const dir = mkdtempSync(join(tmpdir(), 'mbprobe-unit-'));
    try {
      const broken = join(dir, 'mbprobe-responder.service');
      writeFileSync(broken, readFileSync(UNIT, 'utf8').replace('ProtectSystem=strict', 'ProtectSystem=sometimes'));
      expect(`${verify(broken).stderr}`).toMatch(/protect system value/i);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const canRun = process.getuid?.() === 0 && commandExists('setpriv') && hasOpenssl;

describe.skipIf(!canRun).sequential('a responder that is not root, with only the unit\'s two capabilities', () => {
  let lab: Lab;
  let dir: string;
  let responder: ReturnType<Lab['spawn']>;
  let stderr = '';
  let certs: ReturnType<typeof makeCertificates>;
  let name: string;
  const served = { cert: '', key: '' };

  /** Runs node code in the initiator's namespace (fetches over TLS trusting the test CA). */
  const inInitiator = async (code: string): Promise<string> =>
    (await lab.exec(lab.namespaces.initiator, [process.execPath, '--input-type=module', '-e', code])).stdout;
  const getText = (path: string): Promise<string> => inInitiator(`
    import https from 'node:https'; import { readFileSync } from 'node:fs';
    https.get({ host: ${JSON.stringify(name)}, port: 8750, path: ${JSON.stringify(path)}, ca: readFileSync(${JSON.stringify(certs.ca)}) }, (res) => {
      let body = ''; res.on('data', (c) => body += c); res.on('end', () => process.stdout.write(res.statusCode + '\\n' + body));
    }).on('error', (e) => { console.error(e.message); process.exit(1); });`);

  beforeAll(async () => {
    await removeStaleLabs();
    lab = await createLab({ profile: 'clean' });
    name = lab.responderNames[4];
    dir = mkdtempSync(join(tmpdir(), 'mbprobe-nonroot-'));
    chmodSync(dir, 0o755);
    certs = makeCertificates(mkdtempSync(join(dir, 'ca-')), name, [lab.addresses.responder]);
    chmodSync(join(certs.ca, '..'), 0o755);
    const state = join(dir, 'state');
    mkdirSync(state);
    chownSync(state, UID, UID);
    served.cert = join(state, 'fullchain.pem');
    served.key = join(state, 'privkey.pem');
    copyFileSync(certs.cert, served.cert);
    copyFileSync(certs.key, served.key);
    chownSync(served.key, UID, UID);
    chmodSync(served.key, 0o600);
    // The capabilities the unit grants, in setpriv's words: cap_net_raw -> net_raw.
    const caps = unitSettings().AmbientCapabilities.split(/\s+/).map((c) => `+${c.toLowerCase().replace(/^cap_/, '')}`).join(',');
    responder = lab.spawn(lab.namespaces.responder, [
      'setpriv', `--reuid=${UID}`, `--regid=${UID}`, '--clear-groups', `--inh-caps=-all,${caps}`, `--ambient-caps=-all,${caps}`, `--bounding-set=-all,${caps}`, '--no-new-privs',
      process.execPath, join(projectRoot(), 'dist/responder/bin.js'), '--db', join(state, 'responder.sqlite'), '--tls-cert', served.cert, '--tls-key', served.key,
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the responder did not start:\n${stderr}`)), 15_000);
      responder.stderr!.on('data', (c: Buffer) => {
        stderr += c.toString();
        if (stderr.includes('answering on')) {
          clearTimeout(timer);
          resolve();
        }
      });
      responder.once('exit', (code) => reject(new Error(`the responder exited with ${code}:\n${stderr}`)));
    });
  }, 60_000);

  afterAll(async () => {
    if (responder && responder.exitCode === null) {
      responder.kill('SIGKILL');
      await new Promise((r) => responder.once('exit', r));
    }
    await lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs as that user with exactly those capabilities, and says nothing about missing privileges', () => {
    const status = readFileSync(`/proc/${responder.pid}/status`, 'utf8');
    expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe(String(UID));
    const effective = BigInt(`0x${/^CapEff:\s+([0-9a-f]+)/m.exec(status)![1]}`);
    expect(effective).toBe((1n << 12n) | (1n << 13n)); // CAP_NET_ADMIN, CAP_NET_RAW
    expect(stderr).toMatch(/control API on port 8750 \(HTTPS\)/);
    expect(stderr).toMatch(/ports? 80, 443 not reserved/);
  });

  it('answers a full run of the catalogue on three ports with the clean path\'s verdicts, over TLS verified with --ca', async () => {
    const db = join(dir, 'initiator.sqlite');
    const run = await lab.exec(lab.namespaces.initiator, [process.execPath, join(projectRoot(), 'dist/initiator/bin.js'), 'run', '--responder', name, '--ca', certs.ca, '--db', db, '--label', 'nonroot', '--json'], { allowFailure: true, timeoutMs: 180_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).not.toMatch(/insecure/);
    const verdicts = run.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LabVerdict & { responder: string });
    expect(verdicts.every((v) => v.responder === name)).toBe(true);
    const measured = table(verdicts);
    expect(measured).toEqual(resolveAlternatives(expectedTable('clean'), measured));
    const store = Store.open(db, { readonly: true });
    expect(store.runs().map((r) => [r.responder, r.hostInfo.responderAddress])).toEqual([[name, lab.addresses.responder]]);
    store.close();
  }, 200_000);

  it('measures against each --responder in turn, one run each recording its responder; one that cannot be reached does not stop the others', async () => {
    const db = join(dir, 'several.sqlite');
    const unreachable = lab.addresses.middleboxRight; // routed, but nothing listens on its control port
    const run = await lab.exec(lab.namespaces.initiator, [process.execPath, join(projectRoot(), 'dist/initiator/bin.js'), 'run', '--responder', name, '--responder', unreachable,
      '--responder', lab.addresses.responder, '--ca', certs.ca, '--db', db, '--tests', 'syn-baseline,nat', '--json'], { allowFailure: true, timeoutMs: 120_000 });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/responder 2 of 3: .*\n.*cannot reach the responder's control API/);
    expect(run.stderr).toMatch(new RegExp(`the run against ${unreachable.replace(/\./g, '\\.')} failed`));
    const verdicts = run.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { responder: string; test: string; verdict: string });
    expect(verdicts.map((v) => `${v.responder} ${v.test}`).sort()).toEqual([name, lab.addresses.responder].flatMap((r) => [0, 1, 2].flatMap(() => [`${r} nat`, `${r} syn-baseline`])).sort());
    const store = Store.open(db, { readonly: true });
    expect(store.runs().map((r) => [r.responder, r.hostInfo.responderAddress]).sort()).toEqual([[lab.addresses.responder, lab.addresses.responder], [name, lab.addresses.responder]].sort());
    store.close();
  }, 150_000);

  it('reports its counts on /metrics (kernel capture counters included) and is healthy on /healthz', async () => {
    const [status, text] = (await getText('/metrics')).split(/\n(.*)/s);
    expect(status).toBe('200');
    const value = (series: string): number => Number(new RegExp(`^${series.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('mbprobe_responder_segments_total{outcome="answered"}')).toBeGreaterThan(200);
    expect(value('mbprobe_responder_segments_total{outcome="received"}')).toBeGreaterThanOrEqual(value('mbprobe_responder_segments_total{outcome="answered"}'));
    expect(value('mbprobe_responder_capture_packets_total')).toBeGreaterThanOrEqual(value('mbprobe_responder_segments_total{outcome="received"}'));
    expect(value('mbprobe_responder_capture_dropped_total{where="kernel"}')).toBe(0);
    expect(value('mbprobe_responder_tests_collected_total')).toBeGreaterThanOrEqual(84);
    expect(value('mbprobe_responder_database_bytes')).toBeGreaterThan(0);
    expect(await getText('/healthz')).toMatch(/^200\n\{"status":"ok"/);
  }, 30_000);

  it('reads a renewed certificate on SIGHUP: new connections get it', async () => {
    const fingerprint = async (): Promise<string> => (await inInitiator(`
      import tls from 'node:tls';
      const s = tls.connect({ host: ${JSON.stringify(lab.addresses.responder)}, port: 8750, rejectUnauthorized: false }, () => { process.stdout.write(s.getPeerCertificate().fingerprint256); s.end(); });`)).trim();
    expect(await fingerprint()).toBe(fingerprintOf(certs.cert));
    const renewed = makeCertificates(mkdtempSync(join(dir, 'renewed-')), name, [lab.addresses.responder]);
    copyFileSync(renewed.cert, served.cert);
    copyFileSync(renewed.key, served.key);
    execFileSync('kill', ['-HUP', String(responder.pid)]);
    await expect.poll(() => stderr, { timeout: 5000 }).toMatch(/reloaded the TLS certificate/);
    expect(await fingerprint()).toBe(fingerprintOf(renewed.cert));
  }, 30_000);

  it('stops on SIGTERM, having recorded its runs in its own database', async () => {
    const exit = new Promise<number | null>((resolve) => responder.once('exit', resolve));
    responder.kill('SIGTERM');
    expect(await exit).toBe(0);
    expect(stderr).toMatch(/capture: \d+ packets delivered, 0 dropped by the kernel/);
  }, 30_000);
});
