import { describe, expect, it } from 'vitest';
import { Store } from '../../shared/store.js';
import { recentlyUsedPorts, reserveFreshPorts, TUPLE_REUSE_MS } from '../../initiator/local-ports.js';

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
