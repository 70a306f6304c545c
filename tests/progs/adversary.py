"""Hostile network pieces for the end-to-end tests.

  adversary.py proxy LISTEN_PORT HOST PORT flip|cut OFFSET
      forward one connection; in the client-to-server direction, flip one
      bit of the byte at OFFSET (flip) or cut both directions there (cut)
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
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def proxy(listen_port, host, port, mode, offset):
    srv = socket.create_server(("0.0.0.0", listen_port))
    client, _ = srv.accept()
    upstream = socket.create_connection((host, port))
    t = threading.Thread(target=pump, args=(upstream, client))
    t.start()
    pump(client, upstream, mode, offset)
    t.join(30)


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
    import time
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
    else:
        sys.exit(__doc__)
