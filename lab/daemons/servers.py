#!/usr/bin/env python3
"""Ordinary Linux servers for the scan lab (lab/servers.ts): real kernel TCP listeners, configured as
operators configure them, answering a request with a small HTTP response and closing.

Reads a JSON list of listeners on stdin:
  [{"port": 80, "kind": "tcp" | "tfo" | "tfo-no-cookie" | "mptcp", "tfoKey": "<32 hex digits>"?, "families": [4, 6]?}]
Prints "ready" once every listener listens; exits when stdin closes (so it dies with its parent).
"""
import asyncio
import json
import socket
import sys

TCP_FASTOPEN = 23
TCP_FASTOPEN_KEY = 33
TCP_FASTOPEN_NO_COOKIE = 34
IPPROTO_MPTCP = 262
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"


def listener(spec, family):
    kind = spec["kind"]
    af = socket.AF_INET6 if family == 6 else socket.AF_INET
    proto = IPPROTO_MPTCP if kind == "mptcp" else 0
    sock = socket.socket(af, socket.SOCK_STREAM, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == 6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    if kind in ("tfo", "tfo-no-cookie"):
        # The queue of pending TFO requests: as large as the accept backlog, so that a scan at a high rate
        # (hundreds of connections at once, to every address of the namespace) never finds it full.
        sock.setsockopt(socket.IPPROTO_TCP, TCP_FASTOPEN, 65535)
        if spec.get("tfoKey"):
            sock.setsockopt(socket.IPPROTO_TCP, TCP_FASTOPEN_KEY, bytes.fromhex(spec["tfoKey"]))
    if kind == "tfo-no-cookie":
        sock.setsockopt(socket.IPPROTO_TCP, TCP_FASTOPEN_NO_COOKIE, 1)
    sock.bind(("::" if family == 6 else "0.0.0.0", spec["port"]))
    sock.listen(65535)  # the kernel caps it at net.core.somaxconn
    sock.setblocking(False)
    return sock


async def serve(reader, writer):
    try:
        # A request (HTTP, or a TLS ClientHello: anything) gets the same small answer; then the server closes.
        await asyncio.wait_for(reader.read(65536), timeout=2)
        writer.write(RESPONSE)
        await asyncio.wait_for(writer.drain(), timeout=2)
    except (OSError, asyncio.TimeoutError):
        pass
    finally:
        try:
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), timeout=2)
        except (OSError, asyncio.TimeoutError):
            pass


async def main():
    specs = json.loads(sys.stdin.readline())
    servers = []
    for spec in specs:
        for family in spec.get("families", [4, 6]):
            servers.append(await asyncio.start_server(serve, sock=listener(spec, family)))
    print("ready", flush=True)
    # Until the parent closes stdin (or dies).
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for server in servers:
        server.close()


if __name__ == "__main__":
    asyncio.run(main())
