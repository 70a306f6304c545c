"""Hostile network pieces for the end-to-end tests.

  adversary.py proxy LISTEN_PORT HOST PORT MODE OFFSET
      forward one connection; in the client-to-server direction, flip one
      bit of the byte at OFFSET (flip) or cut both directions there (cut);
      or, at the first tlshim record starting after OFFSET, send it twice
      (replay), swap it with the next one (reorder), or rewrite its length
      field to 16 MiB - 1 (oversize)
  adversary.py paced-send HOST PORT FILE CHUNK DELAY
      send FILE in CHUNK-byte pieces, sleeping DELAY seconds after each,
      then close (a transfer long enough to break in the middle)
  adversary.py echo-server PORT
      a concurrent echo server (one thread per connection), until killed
  adversary.py hold HOST PORT FILE
      one connection that echoes "first", waits until FILE exists, then
      echoes "last": exit 0 when both came back intact
  adversary.py sink PORT FILE
      receive one connection into FILE; exit 0 at a clean end of stream,
      3 with the error's name when receiving fails
"""
import socket
import sys
import threading
import time


def shutdown_both(*socks):
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def pump(src, dst, mode=None, offset=None):
    seen = 0
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if mode is not None and seen <= offset < seen + len(data):
                if mode == "cut":
                    dst.sendall(data[:offset - seen])
                    break
                i = offset - seen
                data = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]
            seen += len(data)
            dst.sendall(data)
    except OSError:
        pass
    shutdown_both(src, dst)


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        piece = sock.recv(n - len(data))
        if not piece:
            raise EOFError
        data += piece
    return data


def next_record(src):
    """One record off the stream: a TLS record (5-byte header) during the
    handshake, then tlshim records (type 1-3, 24-bit length)."""
    first = read_exact(src, 1)
    if first[0] in (20, 21, 22, 23):
        header = first + read_exact(src, 4)
        return header, read_exact(src, int.from_bytes(header[3:5], "big")), False
    header = first + read_exact(src, 3)
    return header, read_exact(src, int.from_bytes(header[1:4], "big")), True


def pump_records(src, dst, mode, offset):
    """Forward record by record and tamper with one tlshim record."""
    seen, done = 0, False
    try:
        while True:
            header, body, ours = next_record(src)
            if ours and not done and seen >= offset:
                done = True
                if mode == "replay":
                    dst.sendall(header + body + header + body)
                elif mode == "reorder":
                    header2, body2, _ = next_record(src)
                    dst.sendall(header2 + body2 + header + body)
                elif mode == "oversize":
                    dst.sendall(header[:1] + b"\xff\xff\xff" + body)
                seen += len(header) + len(body)
                continue
            seen += len(header) + len(body)
            dst.sendall(header + body)
    except (OSError, EOFError):
        pass
    shutdown_both(src, dst)


def proxy(listen_port, host, port, mode, offset):
    srv = socket.create_server(("0.0.0.0", listen_port))
    client, _ = srv.accept()
    upstream = socket.create_connection((host, port))
    t = threading.Thread(target=pump, args=(upstream, client))
    t.start()
    if mode in ("flip", "cut"):
        pump(client, upstream, mode, offset)
    else:
        pump_records(client, upstream, mode, offset)
    t.join(30)


def paced_send(host, port, path, chunk, delay):
    s = socket.create_connection((host, port))
    data = open(path, "rb").read()
    for i in range(0, len(data), chunk):
        s.sendall(data[i:i + chunk])
        time.sleep(delay)
    s.close()


def echo_server(port):
    srv = socket.create_server(("0.0.0.0", port))

    def serve(conn):
        with conn:
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except OSError:
                pass

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def hold(host, port, trigger):
    import os
    s = socket.create_connection((host, port))
    for word in (b"first", b"last"):
        if word == b"last":
            while not os.path.exists(trigger):
                time.sleep(0.05)
        s.sendall(word)
        got = b""
        while len(got) < len(word):
            chunk = s.recv(100)
            if not chunk:
                sys.exit(f"hold: connection ended before {word!r} came back")
            got += chunk
        if got != word:
            sys.exit(f"hold: sent {word!r}, got {got!r}")
        print(f"hold: {word.decode()} echoed", flush=True)
    s.close()


def sink(port, path):
    srv = socket.create_server(("0.0.0.0", port))
    conn, _ = srv.accept()
    with open(path, "wb") as f:
        try:
            while data := conn.recv(1 << 20):
                f.write(data)
        except OSError as e:
            print(f"sink: {type(e).__name__}: {e}", flush=True)
            sys.exit(3)


if __name__ == "__main__":
    if sys.argv[1] == "proxy":
        proxy(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5],
              int(sys.argv[6]))
    elif sys.argv[1] == "hold":
        hold(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "sink":
        sink(int(sys.argv[2]), sys.argv[3])
    elif sys.argv[1] == "echo-server":
        echo_server(int(sys.argv[2]))
    elif sys.argv[1] == "paced-send":
        paced_send(sys.argv[2], int(sys.argv[3]), sys.argv[4],
                   int(sys.argv[5]), float(sys.argv[6]))
    else:
        sys.exit(__doc__)
