/**
 * The initiator's control requests on a lossy path: a registration or a collection whose answer does
 * not come is sent again, so the responder never keeps a test the initiator gave up on (behind a
 * split-connection proxy it would take the next test's flow). A stand-in responder here serves
 * the first request of each kind without ever answering it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlClient, RATE_LIMIT_ATTEMPTS } from '../../initiator/control-client.js';

const REGISTRATION = { testId: 't1', name: 'syn-mss', port: 80, initiatorPort: 40000, initiatorIsn: 1, plan: {} };

/** A responder that acts on every request but leaves the first of each path unanswered; counts what it got. */
async function swallowingFirst(answer: (path: string, seen: number) => { status: number; body: unknown }): Promise<{ server: Server; port: number; seen: Map<string, number> }> {
  const seen = new Map<string, number>();
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const count = (seen.get(path) ?? 0) + 1;
    seen.set(path, count);
    req.resume();
    req.on('end', () => {
      if (count === 1) return; // served, but its answer never leaves
      const { status, body } = answer(path, count);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

describe('control requests whose answer does not come (initiator/control-client.ts)', () => {
  let server: Server | undefined;
  afterEach(() => {
    server?.closeAllConnections();
    server?.close();
  });

  it('registers a test again, and takes "already registered" for the first one having arrived', async () => {
    const stand = await swallowingFirst(() => ({ status: 409, body: { error: 'test t1 is already registered in this session' } }));
    server = stand.server;
    const client = new ControlClient('127.0.0.1', stand.port, 300, { insecure: true });
    await expect(client.registerTest('s', REGISTRATION)).resolves.toEqual({ testId: 't1' });
    expect(stand.seen.get('/v1/sessions/s/tests')).toBe(2);
    client.close();
  });

  it('collects again, and says the view was lost when the first collection was served', async () => {
    const stand = await swallowingFirst(() => ({ status: 404, body: { error: 'no active test t1' } }));
    server = stand.server;
    const client = new ControlClient('127.0.0.1', stand.port, 300, { insecure: true });
    await expect(client.collect('s', 't1', 0)).rejects.toThrow(/handed over the view of test t1, but its answer was lost/);
    expect(stand.seen.get('/v1/sessions/s/tests/t1/collect')).toBe(2);
    client.close();
  });

  it('does not send again a request the responder refused', async () => {
    const stand = await swallowingFirst(() => ({ status: 400, body: {} }));
    server = stand.server;
    // the first answer does come here: a refusal is final
    stand.seen.set('/v1/sessions/s/tests', 1);
    const client = new ControlClient('127.0.0.1', stand.port, 300, { insecure: true });
    await expect(client.registerTest('s', REGISTRATION)).rejects.toThrow(/refused/);
    expect(stand.seen.get('/v1/sessions/s/tests')).toBe(2);
    client.close();
  });

  it('gives up after three requests without an answer', async () => {
    const stand = await swallowingFirst(() => ({ status: 201, body: {} }));
    server = stand.server;
    server.removeAllListeners('request');
    server.on('request', (req) => {
      const path = (req.url ?? '').split('?')[0];
      stand.seen.set(path, (stand.seen.get(path) ?? 0) + 1);
      req.resume();
    });
    const client = new ControlClient('127.0.0.1', stand.port, 200, { insecure: true });
    await expect(client.registerTest('s', REGISTRATION)).rejects.toThrow(/cannot reach/);
    expect(stand.seen.get('/v1/sessions/s/tests')).toBe(3);
    client.close();
  });
});

describe('waits measured from round trips (initiator/control-client.ts)', () => {
  it('asks about a binding with a wait and a hold that are fractions of a millisecond, as measured round trips are', async () => {
    let url = '';
    const server = createServer((req, res) => {
      url = req.url ?? '';
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bound: true, rule: 'only-test', held: true })));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const client = new ControlClient('127.0.0.1', (server.address() as AddressInfo).port, 5000, { insecure: true });
      expect(await client.whenBound('s', 't1', 10_000, 103.27)).toEqual({ bound: true, rule: 'only-test', held: true });
      expect(url).toBe('/v1/sessions/s/tests/t1/bound?waitMs=10000&holdMs=103');
      client.close();
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('a responder busy with a crowd (initiator/control-client.ts)', () => {
  /** A responder that refuses the first `refusals` requests with 429 and Retry-After `retryAfter`, then registers. */
  async function refusing(refusals: number, retryAfter: string): Promise<{ server: Server; port: number; seen: () => number }> {
    let seen = 0;
    const server = createServer((req, res) => {
      seen++;
      req.resume();
      req.on('end', () => {
        if (seen <= refusals) res.writeHead(429, { 'content-type': 'application/json', 'retry-after': retryAfter }).end(JSON.stringify({ error: 'too many requests; slow down' }));
        else res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ testId: 't1' }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { server, port: (server.address() as AddressInfo).port, seen: () => seen };
  }

  it('sends a request refused as too many again after the wait the responder asked for', async () => {
    const stand = await refusing(2, '1');
    try {
      const client = new ControlClient('127.0.0.1', stand.port, 2000, { insecure: true });
      await expect(client.registerTest('s', REGISTRATION)).resolves.toEqual({ testId: 't1' });
      expect(stand.seen()).toBe(3);
      client.close();
    } finally {
      stand.server.closeAllConnections();
      stand.server.close();
    }
  });

  it('passes the refusal on when the wait asked for is long (an hour\'s upload limit) or the refusals go on', async () => {
    const long = await refusing(1, '3600');
    const endless = await refusing(100, '1');
    try {
      const client = new ControlClient('127.0.0.1', long.port, 2000, { insecure: true });
      await expect(client.registerTest('s', REGISTRATION)).rejects.toThrow(/429 too many requests/);
      expect(long.seen()).toBe(1);
      client.close();
      const busy = new ControlClient('127.0.0.1', endless.port, 2000, { insecure: true });
      await expect(busy.registerTest('s', REGISTRATION)).rejects.toThrow(/429/);
      expect(endless.seen()).toBe(RATE_LIMIT_ATTEMPTS);
      busy.close();
    } finally {
      for (const s of [long, endless]) {
        s.server.closeAllConnections();
        s.server.close();
      }
    }
  }, 15_000);
});
