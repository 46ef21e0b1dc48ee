import { describe, expect, it } from 'vitest';
import { Store } from '../../shared/store.js';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PortLedger, recentlyUsedPorts, reserveFreshPorts, TUPLE_REUSE_MS } from '../../initiator/local-ports.js';

describe('local ports are not reused within 2 MSL', () => {
  it('finds the ports of recent runs to the same responder only', () => {
    const store = Store.open(':memory:');
    const now = Date.parse('2026-11-21T06:00:00Z');
    const run = (id: string, responder: string, agoMs: number, localPorts: number[]): void =>
      store.insertRun({ id, startedAt: new Date(now - agoMs).toISOString(), responder, toolVersion: 't', hostInfo: { localPorts } });
    run('a', '198.19.0.2', 10_000, [40000, 40001]);
    run('b', '198.19.0.2', TUPLE_REUSE_MS + 1, [40002]);
    run('c', '203.0.113.7', 10_000, [40003]);
    expect([...recentlyUsedPorts(store, '198.19.0.2', now)].sort()).toEqual([40000, 40001]);
    store.close();
  });

  it('still finds fresh ports when most of the ephemeral range was used in the last 2 MSL (a busy machine\'s ledger)', async () => {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    // all but every 50th port of the range avoided: the kernel's picks are nearly all avoided ones
    const avoid = new Set(Array.from({ length: high - low + 1 }, (_, i) => low + i).filter((p) => p % 50 !== 0));
    const reserved = await reserveFreshPorts(168, avoid, 4);
    try {
      expect(reserved.ports).toHaveLength(168);
      expect(new Set(reserved.ports).size).toBe(168);
      expect(reserved.ports.filter((p) => avoid.has(p))).toEqual([]);
    } finally {
      reserved.release();
    }
  });

  it('reserves ports outside the avoided set', async () => {
    const first = await reserveFreshPorts(20, new Set(), 4);
    const avoid = new Set(first.ports);
    first.release();
    const second = await reserveFreshPorts(20, avoid, 4);
    try {
      expect(second.ports).toHaveLength(20);
      expect(second.ports.filter((p) => avoid.has(p))).toEqual([]);
    } finally {
      second.release();
    }
  });
});

describe('the machine\'s ledger of recently used local ports (whatever database a run wrote to)', () => {
  it('gives the ports runs to the same responder recorded within 2 MSL, removes older records, and skips what is half written', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mbprobe-ledger-'));
    try {
      const ledger = new PortLedger(dir);
      const now = Date.parse('2026-11-28T06:00:00Z');
      ledger.record('a', '198.19.0.2', [40000, 40001], now - 10_000);
      ledger.record('b', '198.19.0.2', [40002], now - TUPLE_REUSE_MS - 1);
      ledger.record('c', '203.0.113.7', [40003], now - 10_000);
      ledger.record('d', null, [40004], now - 10_000);
      writeFileSync(join(ledger.dir, `${now - 5000}-e.json.tmp`), '{"responder":"198.19.0.2","por');
      writeFileSync(join(ledger.dir, `${now - 5000}-f.json`), 'not json');
      // another process (a second --db) sees the first run's ports
      expect([...new PortLedger(dir).recent('198.19.0.2', now)].sort()).toEqual([40000, 40001]);
      expect([...ledger.recent(null, now)]).toEqual([40004]);
      // b's record is gone; nothing half written was taken
      expect(readdirSync(ledger.dir).some((n) => n.endsWith('-b.json'))).toBe(false);
      expect(readdirSync(ledger.dir).some((n) => n.endsWith('-a.json'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('costs nothing but its protection where its directory cannot be written', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mbprobe-ledger-'));
    try {
      const file = join(dir, 'a-file');
      writeFileSync(file, '');
      // a directory under a file can never be made
      const ledger = new PortLedger(file);
      expect(() => ledger.record('a', '198.19.0.2', [40000])).not.toThrow();
      expect(ledger.recent('198.19.0.2').size).toBe(0);
      expect(existsSync(ledger.dir)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
