import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { errorsBefore, hasCompleteListing } from '../../shared/net/firewall.js';
import { initiatorRules, reservePorts, responderRules } from '../../shared/net/kernel-tcp.js';
import { MbprobeError } from '../../shared/wire/errors.js';

describe('kernel-tcp rule bodies', () => {
  it('responderRules drops TCP to the local test ports in prerouting at raw priority', () => {
    expect(responderRules([34343, 80, 443])).toBe(
      '  chain prerouting {\n' +
        '    type filter hook prerouting priority raw; policy accept;\n' +
        '    fib daddr type local tcp dport { 34343, 80, 443 } drop\n' +
        '  }',
    );
    expect(responderRules([80])).toContain('tcp dport 80 drop');
    expect(responderRules([])).not.toContain('drop');
  });

  it('initiatorRules drops replies from the responder addresses and ports, per family', () => {
    const body = initiatorRules(['198.51.100.2', '2001:db8::2', '203.0.113.9'], [34343, 80]);
    expect(body).toContain('ip saddr { 198.51.100.2, 203.0.113.9 } tcp sport { 34343, 80 } fib daddr type local drop');
    expect(body).toContain('ip6 saddr 2001:db8::2 tcp sport { 34343, 80 } fib daddr type local drop');
    expect(initiatorRules(['198.51.100.2'], [80])).not.toContain('ip6');
  });

  it('rejects bad ports and addresses instead of writing them into nft syntax', () => {
    expect(() => responderRules([0])).toThrow(MbprobeError);
    expect(() => responderRules([65536])).toThrow(/not a TCP port/);
    expect(() => initiatorRules(['198.51.100.2; flush ruleset'], [80])).toThrow(/not an IPv4 or IPv6 address/);
  });
});

describe('reading nft -i output', () => {
  it('separates the load errors from the errors of our own probe commands', () => {
    const stderr =
      'In file included from <cmdline>:1:1-46:\n/tmp/x/ruleset.nft:3:5-9: Error: syntax error, unexpected drop\n    bogus drop\n    ^^^^^\n' +
      'Error: No such file or directory\nlist table inet t\n                ^\n' +
      'Error: No such file or directory\nlist table ip mbprobe_sync_1\n              ^\n';
    const errors = errorsBefore(stderr, ['list table inet t', 'list table ip mbprobe_sync_1']);
    expect(errors).toContain('syntax error, unexpected drop');
    expect(errors).not.toContain('list table');
    expect(errorsBefore('Error: No such file or directory\nlist table ip s\n  ^\n', ['list table ip s'])).toBe('');
  });

  it('recognises a complete table listing', () => {
    expect(hasCompleteListing('table inet t { # progname nft\n\tflags owner\n', 'inet', 't')).toBe(false);
    expect(hasCompleteListing('table inet t { # progname nft\n\tflags owner\n\n\tchain c {\n\t}\n}\n', 'inet', 't')).toBe(true);
    expect(hasCompleteListing('table ip t {\n}\n', 'inet', 't')).toBe(false);
  });
});

describe('reservePorts', () => {
  it('binds kernel-picked ports and releases them', async () => {
    const reserved = await reservePorts([0, 0], 4);
    expect(reserved.ports).toHaveLength(2);
    expect(new Set(reserved.ports).size).toBe(2);
    for (const p of reserved.ports) expect(p).toBeGreaterThan(0);
    reserved.release();
    reserved.release(); // idempotent
  });

  it('reserves both families with the same port when no family is given', async () => {
    const reserved = await reservePorts([0, 0]);
    expect(reserved.ports).toHaveLength(2);
    reserved.release();
  });

  it('reports a port another program listens on as PORT_IN_USE, with what to do', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const err = await reservePorts([port], 4).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(MbprobeError);
      expect((err as MbprobeError).code).toBe('PORT_IN_USE');
      expect((err as MbprobeError).message).toContain(String(port));
      expect((err as MbprobeError).message).toMatch(/Stop the program|choose other ports/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('cannot keep SO_REUSEADDR listeners (every Node server) off a reserved port: the documented limit', async () => {
    const reserved = await reservePorts([0], 4);
    try {
      // Node servers set SO_REUSEADDR, so they are NOT kept away: bind-only reservation cannot stop them.
      const server = net.createServer();
      const listened = await new Promise<boolean>((resolve) => {
        server.once('error', () => resolve(false));
        server.listen(reserved.ports[0], '127.0.0.1', () => resolve(true));
      });
      if (listened) await new Promise((resolve) => server.close(resolve));
      expect(listened).toBe(true);
    } finally {
      reserved.release();
    }
  });

  it('rejects duplicate and invalid ports', async () => {
    await expect(reservePorts([5, 5])).rejects.toThrow(/listed twice/);
    await expect(reservePorts([-1])).rejects.toThrow(/not a TCP port/);
  });
});
