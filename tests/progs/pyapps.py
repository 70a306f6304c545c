"""Plain Python socket programs for the end-to-end tests.

  pyapps.py asyncio-server PORT        asyncio echo server, N connections
  pyapps.py asyncio-client HOST PORT   many concurrent echo clients
  pyapps.py threaded-server PORT       one thread per connection, echo
  pyapps.py threaded-client HOST PORT  a sender and a receiver thread on
                                       one socket, plus a subprocess that
                                       closes all inherited descriptors
                                       and one that connects by itself
"""
import asyncio
import hashlib
import os
import socket
import subprocess
import sys
import threading

CLIENTS = 20
PAYLOAD = 256 * 1024


def payload(i):
    return hashlib.sha256(str(i).encode()).digest() * (PAYLOAD // 32)


async def echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def asyncio_server(port):
    done = asyncio.Event()
    count = 0

    async def handle(reader, writer):
        nonlocal count
        await echo(reader, writer)
        count += 1
        if count == CLIENTS:
            done.set()

    server = await asyncio.start_server(handle, None, port)
    async with server:
        await asyncio.wait_for(done.wait(), 60)
    print(f"asyncio server: echoed {count} connections", flush=True)


async def asyncio_client(host, port):
    async def one(i):
        reader, writer = await asyncio.open_connection(host, port)
        data = payload(i)
        writer.write(data)
        await writer.drain()
        got = await reader.readexactly(len(data))
        writer.close()
        await writer.wait_closed()
        return got == data

    results = await asyncio.gather(*(one(i) for i in range(CLIENTS)))
    if not all(results):
        sys.exit("asyncio client: an echo came back wrong")
    print(f"asyncio client: {CLIENTS} concurrent connections echoed "
          f"{CLIENTS * PAYLOAD} bytes correctly", flush=True)


def threaded_server(port):
    srv = socket.create_server(("::", port), family=socket.AF_INET6,
                               dualstack_ipv6=True)
    threads = []
    for _ in range(2):  # the client's own connection, then its child's
        conn, _ = srv.accept()

        def serve(c):
            with c:
                while data := c.recv(65536):
                    c.sendall(data)

        t = threading.Thread(target=serve, args=(conn,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join(60)
    print("threaded server: served 2 connections", flush=True)


CHILD = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.sendall(b"from the exec'd child")
got = b""
while len(got) < 21:
    got += s.recv(100)
s.close()
sys.exit(0 if got == b"from the exec'd child" else 1)
"""


def threaded_client(host, port):
    s = socket.create_connection((host, port))
    data = payload(7) * 16
    received = bytearray()

    def receive():
        while len(received) < len(data):
            chunk = s.recv(100000)
            if not chunk:
                break
            received.extend(chunk)

    r = threading.Thread(target=receive)
    r.start()
    # Python's subprocess closes every inherited descriptor in the child
    # (close_range, under vfork); the parent's connection must not notice.
    subprocess.run(["/bin/true"], close_fds=True, check=True)
    s.sendall(data)
    r.join(60)
    if bytes(received) != data:
        sys.exit("threaded client: echo came back wrong")
    # A preloaded child after exec makes a protected connection of its own.
    subprocess.run([sys.executable, "-c", CHILD, host, str(port)], check=True,
                   timeout=60)
    s.close()
    print(f"threaded client: {len(data)} bytes echoed with concurrent send "
          "and receive threads; subprocesses fine", flush=True)


def main():
    mode = sys.argv[1]
    if mode == "asyncio-server":
        asyncio.run(asyncio_server(int(sys.argv[2])))
    elif mode == "asyncio-client":
        asyncio.run(asyncio_client(sys.argv[2], int(sys.argv[3])))
    elif mode == "threaded-server":
        threaded_server(int(sys.argv[2]))
    elif mode == "threaded-client":
        threaded_client(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
