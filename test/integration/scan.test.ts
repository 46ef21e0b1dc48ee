/**
 * `mbprobe-initiator scan` against real Linux servers in the lab (lab/servers.ts) behind real
 * middlebox profiles: every verdict of every server test, each from a configuration built to cause it
 * (lab/server-expectations.ts), asserted exactly, over IPv4 and IPv6 (the responder's lab names, which
 * resolve only in the initiator's namespace), at concurrency 1 and at the default. Every connection is
 * ended (RST after the SYN-ACK or FIN after a request) and no server keeps one open. The scan is a
 * run like any other: merge, submit, table, compare, report and export take it.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVER_CATALOGUE } from '../../initiator/catalogue/server/index.js';
import { DEFAULT_SCAN_CONCURRENCY } from '../../initiator/scan/command.js';
import { Store } from '../../shared/store.js';
import { parseUpload } from '../../shared/upload.js';
import { decodePacket } from '../../shared/wire/packet.js';
import { TcpFlag } from '../../shared/wire/tcp.js';
import { createLab, projectRoot, removeStaleLabs, startResponder, type Lab } from '../../lab/index.js';
import { SERVER_CONFIGS, startServers } from '../../lab/servers.js';
import { scanAcrossLab } from '../../lab/scan.js';
import { expectedVerdictTable, SERVER_LAB_CASES, verdictTable } from '../../lab/server-expectations.js';

const exec = promisify(execFile);

describe('the scan expectations', () => {
  it('make every verdict of every server test, the shared ones included, appear in some lab', () => {
    const produced = new Set(SERVER_LAB_CASES.flatMap((c) => Object.values(c.expected).flatMap((tests) => Object.entries(tests).map(([t, v]) => `${t}=${v}`))));
    const wanted = SERVER_CATALOGUE.flatMap((t) => [...t.verdicts, 'unreachable', 'reset'].map((v) => `${t.name}=${v}`));
    expect(wanted.filter((tv) => !produced.has(tv))).toEqual([]);
    // inconclusive, the measurement failing, has one lab configuration (a DPI box dropping requests);
    // the judges' inconclusive cases of every test are in test/unit/server-judges.test.ts.
    expect(produced.has('server-ecn=inconclusive')).toBe(true);
  });
});

/** Every connection of every stored test whose SYN got a SYN-ACK was ended by us: a RST, or a FIN. */
function unendedConnections(db: string): string[] {
  const store = Store.open(db, { readonly: true });
  const problems: string[] = [];
  try {
    for (const run of store.runs()) {
      for (const test of store.tests(run.id)) {
        const byPort = new Map<number, { synAck: boolean; ended: boolean }>();
        for (const s of store.segments(test.id)) {
          const tcp = decodePacket(s.bytes).tcp!;
          const local = s.dir === 'sent' ? tcp.srcPort : tcp.dstPort;
          const c = byPort.get(local) ?? { synAck: false, ended: false };
          if (s.dir === 'received' && (tcp.flags & (TcpFlag.SYN | TcpFlag.ACK)) === (TcpFlag.SYN | TcpFlag.ACK)) c.synAck = true;
          if (s.dir === 'sent' && c.synAck && (tcp.flags & (TcpFlag.RST | TcpFlag.FIN)) !== 0) c.ended = true;
          byPort.set(local, c);
        }
        for (const [port, c] of byPort) if (c.synAck && !c.ended) problems.push(`${test.name}:${test.port} ${test.target} local port ${port}`);
      }
    }
  } finally {
    store.close();
  }
  return problems;
}

/** TCP connections the servers still hold in a state other than TIME-WAIT (LISTEN sockets aside). */
async function serverConnections(lab: Lab): Promise<string[]> {
  const { stdout } = await lab.exec(lab.namespaces.responder, ['ss', '-H', '-tan']);
  return stdout.split('\n').filter((l) => l.trim() && !/^(LISTEN|TIME-WAIT)\s/.test(l.trim()));
}

describe.skipIf(process.getuid?.() !== 0).sequential('scan against the lab\'s servers', () => {
  let workDir: string;
  beforeAll(async () => {
    await removeStaleLabs();
    workDir = mkdtempSync(join(tmpdir(), 'mbprobe-scan-it-'));
  });
  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  it.each(SERVER_LAB_CASES.map((c) => [c.name, c] as const))('%s: exactly the expected verdicts, IPv4 and IPv6, at concurrency 1 and the default', async (_name, c) => {
    const lab = await createLab({ profile: c.profile });
    try {
      const servers = await startServers(lab, SERVER_CONFIGS[c.config]);
      try {
        const ports = Object.keys(c.expected).map(Number);
        for (const concurrency of [DEFAULT_SCAN_CONCURRENCY, 1]) {
          const db = join(workDir, `${c.name.replace(/\W+/g, '-')}-${concurrency}.sqlite`);
          const scan = await scanAcrossLab(lab, { db, ports, tests: c.tests, concurrency });
          expect(scan.code, scan.stderr).toBe(0);
          for (const family of [4, 6] as const) {
            const address = family === 4 ? lab.addresses.responder : lab.addresses.responder6;
            const mine = scan.results.filter((r) => r.target === address);
            expect(mine.every((r) => r.targetName === lab.responderNames[family])).toBe(true);
            expect({ concurrency, family, verdicts: verdictTable(mine) }).toEqual({ concurrency, family, verdicts: expectedVerdictTable(c) });
          }
          expect(unendedConnections(db)).toEqual([]);
          const store = Store.open(db, { readonly: true });
          try {
            const [run] = store.runs();
            expect(run.kind).toBe('server-scan');
            expect(run.responder).toBeNull();
            const stored = store.tests(run.id);
            expect(stored).toHaveLength(scan.results.length);
            expect(new Set(stored.map((t) => t.target))).toEqual(new Set([lab.addresses.responder, lab.addresses.responder6]));
          } finally {
            store.close();
          }
        }
        // The servers hold no connection of ours: each one ended, none half-open.
        await new Promise((r) => setTimeout(r, 200));
        expect(await serverConnections(lab)).toEqual([]);
      } finally {
        await servers.stop();
      }
    } finally {
      await lab.destroy();
    }
  }, 300_000);

  it('refuses private targets without --allow-private, and sends nothing in a dry run', async () => {
    const lab = await createLab({ profile: 'clean' });
    try {
      const bin = join(projectRoot(), 'dist/initiator/bin.js');
      const refused = await lab.exec(lab.namespaces.initiator, [process.execPath, bin, 'scan', '--targets', lab.addresses.responder, '--db', join(workDir, 'refused.sqlite')], { allowFailure: true });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('--allow-private');
      expect(existsSync(join(workDir, 'refused.sqlite'))).toBe(false);
      // A name that resolves to a reserved address is left out (and said so), not probed.
      const named = await lab.exec(lab.namespaces.initiator, [process.execPath, bin, 'scan', '--targets', lab.responderNames[4], '--dry-run'], { allowFailure: true });
      expect(named.code).toBe(0);
      expect(named.stdout).toContain('refused without --allow-private');
      const capture = lab.spawn(lab.namespaces.responder, ['tcpdump', '-n', '-i', lab.interfaces.responder, '-c', '1', 'tcp'], { stdio: ['ignore', 'pipe', 'pipe'] });
      await new Promise((r) => setTimeout(r, 500));
      const dry = await lab.exec(lab.namespaces.initiator, [process.execPath, bin, 'scan', '--targets', lab.responderNames[4], lab.responderNames[6], '--allow-private', '--dry-run', '--json'], { allowFailure: true });
      expect(dry.code).toBe(0);
      const plan = JSON.parse(dry.stdout) as { targets: Array<{ addresses: string[] }>; tests: unknown[]; synsAtLeast: number };
      expect(plan.targets.flatMap((t) => t.addresses)).toEqual([lab.addresses.responder, lab.addresses.responder6]);
      expect(plan.tests).toHaveLength(SERVER_CATALOGUE.length);
      expect(plan.synsAtLeast).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 500));
      expect(capture.exitCode).toBeNull(); // tcpdump still waits for its first TCP packet
      capture.kill();
    } finally {
      await lab.destroy();
    }
  }, 60_000);

  it('Ctrl-C stops after the tests under way and keeps every finished one', async () => {
    const lab = await createLab({ profile: 'clean' });
    try {
      const servers = await startServers(lab, SERVER_CONFIGS.features);
      const db = join(workDir, 'interrupted.sqlite');
      const ports = Object.values(SERVER_LAB_CASES[0].expected).length ? Object.keys(SERVER_LAB_CASES[0].expected) : [];
      const child = lab.spawn(lab.namespaces.initiator, [process.execPath, join(projectRoot(), 'dist/initiator/bin.js'), 'scan', '--targets', lab.responderNames[4],
        '--ports', ports.join(','), '--allow-private', '--json', '--gap', '0', '--db', db], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      // Interrupted once some tests are stored, well before the 91 of a whole scan.
      while (stdout.split('\n').filter(Boolean).length < 10) await new Promise((r) => setTimeout(r, 50));
      child.kill('SIGINT');
      const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      await servers.stop();
      expect(code).toBe(1);
      expect(stderr).toContain('interrupted');
      const printed = stdout.split('\n').filter(Boolean).length;
      const store = Store.open(db, { readonly: true });
      try {
        const [run] = store.runs();
        expect(run.finishedAt).not.toBeNull();
        expect(run.hostInfo.interrupted).toBe(true);
        const tests = store.tests(run.id);
        expect(tests.length).toBe(printed);
        expect(tests.length).toBeLessThan(ports.length * SERVER_CATALOGUE.length);
      } finally {
        store.close();
      }
    } finally {
      await lab.destroy();
    }
  }, 120_000);

  it('a scan is a run like any other: merge, submit (to a real responder), table, compare, report and export take it', async () => {
    const db = join(workDir, 'for-results.sqlite');
    {
      const lab = await createLab({ profile: 'clean' });
      try {
        const servers = await startServers(lab, SERVER_CONFIGS.features);
        const scan = await scanAcrossLab(lab, { db, ports: [80, 443], extraArgs: ['--label', 'lab-scan'] });
        await servers.stop();
        expect(scan.code, scan.stderr).toBe(0);
      } finally {
        await lab.destroy();
      }
    }
    const results = async (...args: string[]): Promise<string> => (await exec(process.execPath, [join(projectRoot(), 'dist/results/bin.js'), ...args], { maxBuffer: 64 << 20 })).stdout;
    const merged = join(workDir, 'merged.sqlite');
    await results('merge', merged, db);
    const store = Store.open(merged, { readonly: true });
    const [run] = store.runs();
    expect(run).toMatchObject({ kind: 'server-scan', label: 'lab-scan' });
    expect(store.tests(run.id).every((t) => t.target !== null)).toBe(true);
    store.close();
    const table = JSON.parse(await results('table', merged, '--format', 'json')) as unknown;
    expect(JSON.stringify(table)).toContain('server-tfo');
    // Counted by server: the two addresses (IPv4, IPv6), each with the features server's verdicts on 80 and 443.
    const byTarget = JSON.parse(await results('table', merged, '--by', 'target', '--format', 'json')) as { paths: number; rows: Array<{ test: string; verdict: string; cells: Array<{ n: number; N: number }> }> };
    expect(byTarget.paths).toBe(2);
    expect(byTarget.rows.find((r) => r.test === 'server-tfo' && r.verdict === 'data-accepted')?.cells.map((c) => `${c.n}/${c.N}`)).toEqual(['2/2', '0/2']);
    expect(await results('compare', merged)).toContain('lab-scan');
    const report = join(workDir, 'report.html');
    await results('report', merged, '--out', report);
    expect(readFileSync(report, 'utf8')).toContain('server-tfo');
    const pcap = join(workDir, 'scan.pcapng');
    await results('export', '--db', merged, '--run', run.id, '--format', 'pcapng', '--out', pcap);
    expect(readFileSync(pcap).subarray(0, 4)).toEqual(Buffer.from([0x0a, 0x0d, 0x0d, 0x0a]));

    // Submitted to a responder's collection endpoint: stored there as sent, kind and targets included.
    const lab = await createLab({ profile: 'clean' });
    try {
      const responderDb = join(workDir, 'collected.sqlite');
      const responder = await startResponder(lab, responderDb);
      try {
        const bin = join(projectRoot(), 'dist/initiator/bin.js');
        const dry = await lab.exec(lab.namespaces.initiator, [process.execPath, bin, 'submit', '--responder', lab.addresses.responder, '--db', db, '--dry-run']);
        const upload = parseUpload(JSON.parse(dry.stdout));
        expect(upload.run.kind).toBe('server-scan');
        expect(upload.tests.every((t) => typeof t.target === 'string')).toBe(true);
        const sent = await lab.exec(lab.namespaces.initiator, [process.execPath, bin, 'submit', '--responder', lab.addresses.responder, '--insecure', '--db', db], { allowFailure: true });
        expect(sent.code, sent.stderr).toBe(0);
      } finally {
        await responder.stop();
      }
      const collected = Store.open(responderDb, { readonly: true });
      const scanRun = collected.runs().find((r) => r.kind === 'server-scan')!;
      expect(scanRun.label).toBe('lab-scan');
      expect(collected.tests(scanRun.id).map((t) => [t.name, t.port, t.targetName])).toEqual(
        expect.arrayContaining([['server-tfo', 80, lab.responderNames[4] === undefined ? null : expect.any(String)]]));
      collected.close();
    } finally {
      await lab.destroy();
    }
  }, 180_000);
});
