import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../shared/store.js';
import { encodePacket, type Packet } from '../../shared/wire/packet.js';
import { TcpFlag } from '../../shared/wire/tcp.js';
import { mss, rawOption } from '../../shared/wire/tcp-options.js';
import { toHex } from '../../shared/wire/bytes.js';
import { createLab, removeStaleLabs, type Lab } from '../../lab/index.js';
import { projectRoot, runInitiator, startResponder } from '../../lab/index.js';

const nftTables = async (lab: Lab, ns: string): Promise<string> => (await lab.exec(ns, ['nft', 'list', 'tables'])).stdout;

async function eventually(check: () => Promise<boolean>, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

describe.skipIf(process.getuid?.() !== 0).sequential('lifecycle: SIGKILL, malformed input, bad requests', () => {
  let lab: Lab;
  let workDir: string;
  beforeAll(async () => {
    await removeStaleLabs();
    // A path that drops SYNs with data makes syn-data wait for its retries: time to kill the initiator mid-run.
    lab = await createLab({ profile: 'drop-syn-data' });
    workDir = mkdtempSync(join(tmpdir(), 'mbprobe-life-'));
  });
  afterAll(async () => {
    await lab?.destroy();
    rmSync(workDir, { recursive: true, force: true });
  });

  it('initiator killed with SIGKILL mid-run: its firewall table vanishes, finished tests are intact', async () => {
    const responder = await startResponder(lab, join(workDir, 'rsp-kill.sqlite'));
    const db = join(workDir, 'ini-kill.sqlite');
    try {
      const child = lab.spawn(lab.namespaces.initiator, [process.execPath, join(projectRoot(), 'dist/initiator/bin.js'), 'run', '--responder', lab.addresses.responder, '--insecure',
        '--db', db, '--json', '--concurrency', '1', '--ports', '34343', '--tests', 'syn-baseline,nat,syn-mss,syn-data,seq-rewrite'], { stdio: ['ignore', 'pipe', 'pipe'] });
      const finished: string[] = [];
      let tableSeen = false;
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', async (chunk: Buffer) => {
          finished.push(...chunk.toString().split('\n').filter((l) => l.startsWith('{')));
          if (finished.length >= 2 && child.exitCode === null && !child.killed) {
            tableSeen = (await nftTables(lab, lab.namespaces.initiator)).includes('mbprobe_initiator_');
            child.kill('SIGKILL');
            resolve();
          }
        });
        child.once('exit', () => reject(new Error(`initiator exited before it could be killed; ${finished.length} tests finished`)));
      });
      expect(tableSeen).toBe(true);
      expect(await eventually(async () => !(await nftTables(lab, lab.namespaces.initiator)).includes('mbprobe_initiator_'))).toBe(true);
      const store = Store.open(db, { readonly: true });
      try {
        const [run] = store.runs();
        const tests = store.tests(run.id);
        // Killed while syn-data waited on its retries: the two finished tests are there, nothing half-written.
        expect(tests.map((t) => [t.name, t.verdict])).toEqual([['syn-baseline', 'ok'], ['syn-mss', 'passed']]);
        for (const t of tests) expect(store.segments(t.id).length).toBeGreaterThan(0);
        expect(run.finishedAt).toBeNull();
      } finally {
        store.close();
      }
    } finally {
      await responder.stop();
    }
  }, 60_000);

  it('initiator stopped with Ctrl-C: finishes the test under way, stores it (unconfirmed: inconclusive), starts no other, removes its table, exits 1 saying so', async () => {
    const responder = await startResponder(lab, join(workDir, 'rsp-int.sqlite'));
    const db = join(workDir, 'ini-int.sqlite');
    try {
      const child = lab.spawn(lab.namespaces.initiator, [process.execPath, join(projectRoot(), 'dist/initiator/bin.js'), 'run', '--responder', lab.addresses.responder, '--insecure',
        '--db', db, '--json', '--concurrency', '1', '--ports', '34343', '--tests', 'syn-baseline,syn-mss,syn-data,seq-rewrite,nat'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (c: Buffer) => void (stderr += c.toString()));
      let lines = 0;
      const exitCode = await new Promise<number | null>((resolve) => {
        child.stdout!.on('data', (chunk: Buffer) => {
          lines += chunk.toString().split('\n').filter((l) => l.startsWith('{')).length;
          // syn-data is under way now, waiting on its retries across the drop rule.
          if (lines === 2) child.kill('SIGINT');
        });
        child.once('exit', (code) => resolve(code));
      });
      expect(exitCode).toBe(1);
      expect(stderr).toMatch(/interrupted: 3 of 5 tests finished/);
      expect(await nftTables(lab, lab.namespaces.initiator)).not.toContain('mbprobe_initiator_');
      const store = Store.open(db, { readonly: true });
      try {
        const [run] = store.runs();
        const tests = store.tests(run.id);
        // syn-data's one run said dropped; interrupted before a second run confirmed it, it is stored as inconclusive, saying why.
        expect(tests.map((t) => [t.name, t.verdict])).toEqual([['syn-baseline', 'ok'], ['syn-mss', 'passed'], ['syn-data', 'inconclusive']]);
        expect(tests[2].detail).toMatchObject({ unconfirmedVerdict: 'dropped', reason: expect.stringContaining('interrupted') });
        expect(run.finishedAt).not.toBeNull();
      } finally {
        store.close();
      }
    } finally {
      await responder.stop();
    }
  }, 60_000);

  it('responder killed with SIGKILL: its firewall table vanishes, collected tests are intact', async () => {
    const db = join(workDir, 'rsp-killed.sqlite');
    const responder = await startResponder(lab, db);
    expect(await nftTables(lab, lab.namespaces.responder)).toContain('mbprobe_responder_');
    const run = await runInitiator(lab, join(workDir, 'ini-2.sqlite'), { label: 'kill-responder', tests: 'syn-baseline,nat', concurrency: 3 });
    expect(run.code).toBe(0);
    responder.child.kill('SIGKILL');
    await responder.stop();
    expect(await eventually(async () => !(await nftTables(lab, lab.namespaces.responder)).includes('mbprobe_responder_'))).toBe(true);
    const store = Store.open(db, { readonly: true });
    try {
      const names = store.runs().flatMap((r) => store.tests(r.id)).map((t) => t.name).sort();
      expect(names).toEqual(['nat', 'nat', 'nat', 'syn-baseline', 'syn-baseline', 'syn-baseline']);
    } finally {
      store.close();
    }
  }, 60_000);

  it('the responder records malformed segments without answering them, refuses bad requests, and keeps answering', async () => {
    const db = join(workDir, 'rsp-malformed.sqlite');
    const responder = await startResponder(lab, db);
    try {
      const base = (tcp: Partial<NonNullable<Packet['tcp']>>, payload = new Uint8Array(0)): string => toHex(encodePacket({
        ip: { version: 4, tos: 0, id: 7, flags: 2, fragmentOffset: 0, ttl: 64, protocol: 6, src: lab.addresses.initiator, dst: lab.addresses.responder },
        tcp: { srcPort: 40404, dstPort: 34343, seq: 5001, ack: 1, flags: TcpFlag.ACK, window: 1000, ...tcp },
        payload,
      }));
      const malformed = [
        base({ options: [rawOption(200, Uint8Array.of(1, 2), 0)] }), // option length 0
        base({ options: [mss(1460), rawOption(200, Uint8Array.of(1, 2), 1)] }), // option length 1
        base({ options: [rawOption(200, Uint8Array.of(1, 2), 40)] }), // option running past the header
        base({ dataOffset: 3, options: [] }, Uint8Array.of(1, 2, 3, 4)), // data offset too small
        base({ dataOffset: 15, options: [] }), // data offset past the segment
        base({ checksum: 0xdead }), // wrong checksum
        base({}).slice(0, 2 * 32), // truncated TCP header: 12 of 20 bytes (the kernel fixes the IP total length)
        base({}).slice(0, 2 * 28), // truncated TCP header: 8 of 20 bytes
      ];
      // Open a session and register a test whose flow these segments belong to, so they are attributed.
      const script = `
        const base = 'http://${lab.addresses.responder}:8750/v1';
        const post = (p, b) => fetch(base + p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof b === 'string' ? b : JSON.stringify(b) });
        const s = await (await post('/sessions', { initiatorAddress: '${lab.addresses.initiator}', toolVersion: 'test' })).json();
        const statuses = [];
        statuses.push((await post('/sessions/' + s.sessionId + '/tests', { testId: 'm', name: 'malformed', port: 34343, initiatorPort: 40404, initiatorIsn: 5000, plan: {} })).status);
        statuses.push((await post('/sessions', '{not json')).status);
        statuses.push((await post('/sessions', { initiatorAddress: 'x'.repeat(100000), toolVersion: 't' })).status);
        statuses.push((await post('/sessions/' + s.sessionId + '/tests', { testId: 'bad id!', name: 'x', port: 34343, initiatorPort: 1, initiatorIsn: 1, plan: {} })).status);
        statuses.push((await fetch(base + '/nowhere')).status);
        console.log(JSON.stringify({ session: s.sessionId, statuses }));
      `;
      const setup = JSON.parse((await lab.exec(lab.namespaces.initiator, [process.execPath, '--input-type=module', '-e', script])).stdout.trim()) as { session: string; statuses: number[] };
      expect(setup.statuses).toEqual([201, 400, 413, 400, 404]);
      await lab.exec(lab.namespaces.initiator, [process.execPath, join(projectRoot(), 'dist/test/lab/send-raw.js'), ...malformed]);
      const collectScript = `
        const r = await fetch('http://${lab.addresses.responder}:8750/v1/sessions/${setup.session}/tests/m/collect?settleMs=200', { method: 'POST' });
        console.log(JSON.stringify(await r.json()));
      `;
      const collected = JSON.parse((await lab.exec(lab.namespaces.initiator, [process.execPath, '--input-type=module', '-e', collectScript])).stdout.trim()) as { segments: Array<{ dir: string; hex: string }> };
      // The TCP bytes arrive as crafted (the IP header's TTL, checksum and, for the cut ones, length change on the way).
      const tcpBytes = (hex: string): string => hex.slice(40);
      expect(collected.segments.filter((s) => s.dir === 'received').map((s) => tcpBytes(s.hex))).toEqual(malformed.map(tcpBytes));
      expect(collected.segments.filter((s) => s.dir === 'sent')).toEqual([]);
      // ...and it still measures.
      const run = await runInitiator(lab, join(workDir, 'ini-3.sqlite'), { label: 'after-garbage', tests: 'syn-baseline' });
      expect(run.verdicts.map((v) => v.verdict)).toEqual(['ok', 'ok', 'ok']);
    } finally {
      expect(await responder.stop()).toBe(0);
    }
  }, 60_000);
});
