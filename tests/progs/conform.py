"""Socket scenarios whose every observable result is recorded, so that a
run on plain sockets and a run under the shim can be compared line by
line (tests/e2e/31-conformance.sh).

  conform.py list          the scenarios, one a line
  conform.py run NAME      run one; print its observations, one a line

Each scenario connects a client and a server on 127.0.0.1 inside this one
process and records return values, errno names, bytes and readiness, in
order. Nothing depends on timing but through explicit waits.
"""
import errno
import fcntl
import os
import select
import signal
import socket
import struct
import sys
import termios
import threading
import time

SCENARIOS = {}


def scenario(fn):
    SCENARIOS[fn.__name__] = fn
    return fn


class Log:
    def __init__(self):
        self.lines = []

    def __call__(self, label, thunk):
        """Record what ${thunk}() returns, or the errno it raises."""
        try:
            value = thunk()
        except OSError as e:
            value = "error " + errno.errorcode.get(e.errno, str(e.errno))
        if isinstance(value, (bytes, bytearray)):
            value = "bytes %r" % bytes(value)
        self.lines.append("%s: %s" % (label, value))
        return value


def listener():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    return srv, srv.getsockname()[1]


def pair():
    srv, port = listener()
    cli = socket.create_connection(("127.0.0.1", port))
    conn, _ = srv.accept()
    srv.close()
    return cli, conn


def wait_readable(sock, timeout=5.0):
    select.select([sock], [], [], timeout)


def recv_exactly(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def poll_events(sock, timeout_ms=2000, want=select.POLLIN):
    p = select.poll()
    p.register(sock, want | select.POLLRDHUP)
    got = p.poll(timeout_ms)
    names = []
    for bit, name in ((select.POLLIN, "IN"), (select.POLLOUT, "OUT"),
                      (select.POLLERR, "ERR"), (select.POLLHUP, "HUP"),
                      (select.POLLRDHUP, "RDHUP")):
        if got and got[0][1] & bit:
            names.append(name)
    return "|".join(names) or "none"


# --- the connect state machine ---------------------------------------

@scenario
def connect_nonblocking(log):
    srv, port = listener()
    cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    cli.setblocking(False)
    log("connect", lambda: errno.errorcode.get(
        cli.connect_ex(("127.0.0.1", port)), 0))
    log("poll out", lambda: poll_events(cli, want=select.POLLOUT))
    log("connect again", lambda: errno.errorcode.get(
        cli.connect_ex(("127.0.0.1", port)), 0))
    log("SO_ERROR", lambda: cli.getsockopt(socket.SOL_SOCKET,
                                           socket.SO_ERROR))
    conn, _ = srv.accept()
    log("peer port is ours", lambda: conn.getpeername()[1] ==
        cli.getsockname()[1])
    log("accepted blocking", lambda: conn.getblocking())


@scenario
def connect_refused(log):
    srv, port = listener()
    srv.close()
    cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    log("blocking connect", lambda: cli.connect(("127.0.0.1", port)))
    cli.close()
    cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    cli.setblocking(False)
    log("connect", lambda: errno.errorcode.get(
        cli.connect_ex(("127.0.0.1", port)), 0))
    log("poll", lambda: poll_events(cli, want=select.POLLOUT))
    log("SO_ERROR", lambda: errno.errorcode.get(cli.getsockopt(
        socket.SOL_SOCKET, socket.SO_ERROR), 0))
    log("SO_ERROR again", lambda: cli.getsockopt(socket.SOL_SOCKET,
                                                 socket.SO_ERROR))


# --- receiving flags -------------------------------------------------

@scenario
def peek_then_read(log):
    cli, conn = pair()
    cli.sendall(b"hello world")
    wait_readable(conn)
    time.sleep(0.05)
    log("peek 5", lambda: conn.recv(5, socket.MSG_PEEK))
    log("read 11", lambda: recv_exactly(conn, 11))


@scenario
def dontwait_on_empty(log):
    cli, conn = pair()
    log("recv dontwait", lambda: conn.recv(10, socket.MSG_DONTWAIT))
    conn.setblocking(False)
    log("recv nonblocking", lambda: conn.recv(10))


@scenario
def waitall_across_sends(log):
    cli, conn = pair()

    def later():
        for piece in (b"aaaa", b"bbbb", b"cccc"):
            time.sleep(0.05)
            cli.sendall(piece)
    t = threading.Thread(target=later)
    t.start()
    log("recv 12 waitall", lambda: conn.recv(12, socket.MSG_WAITALL))
    t.join()


@scenario
def fionread_counts_plaintext(log):
    cli, conn = pair()
    cli.sendall(b"x" * 100)
    wait_readable(conn)
    time.sleep(0.1)

    def fionread():
        buf = fcntl.ioctl(conn, termios.FIONREAD, struct.pack("i", 0))
        return struct.unpack("i", buf)[0]
    log("FIONREAD", fionread)
    log("read", lambda: len(recv_exactly(conn, 100)))
    log("FIONREAD after", fionread)


@scenario
def zero_length_receive(log):
    cli, conn = pair()
    for piece in (b"first message", b"second", b"third"):
        cli.sendall(piece)
        time.sleep(0.02)
    wait_readable(conn)
    time.sleep(0.05)
    log("recv 5", lambda: conn.recv(5))
    log("recv 0", lambda: conn.recv(0))
    log("recvmsg 0", lambda: conn.recvmsg(0)[0])
    log("the rest", lambda: recv_exactly(conn, 19))


TCP_INQ = 36    # <linux/tcp.h>; also the type of its TCP_CM_INQ message


@scenario
def tcp_inq_counts_what_waits(log):
    cli, conn = pair()
    conn.setsockopt(socket.IPPROTO_TCP, TCP_INQ, 1)
    cli.sendall(b"y" * 100)
    wait_readable(conn)
    time.sleep(0.1)

    def read_with_inq(n):
        data, anc, flags, _ = conn.recvmsg(n, socket.CMSG_SPACE(4))
        inq = [struct.unpack("i", d[:4])[0] for lvl, typ, d in anc
               if lvl == socket.IPPROTO_TCP and typ == TCP_INQ]
        return "%d bytes, inq %s" % (len(data), inq)
    log("recvmsg 10", lambda: read_with_inq(10))
    log("recvmsg 200", lambda: read_with_inq(200))


@scenario
def rcvlowat_is_kept(log):
    cli, conn = pair()
    log("set SO_RCVLOWAT 64",
        lambda: conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 64))
    log("get SO_RCVLOWAT",
        lambda: conn.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT))
    cli.sendall(b"z" * 100)
    log("read 100", lambda: len(recv_exactly(conn, 100)))


# --- ends of streams ---------------------------------------------------

@scenario
def half_close_both_ways(log):
    cli, conn = pair()
    cli.sendall(b"request")
    log("client shutdown WR", lambda: cli.shutdown(socket.SHUT_WR))
    log("server reads", lambda: recv_exactly(conn, 7))
    log("server reads EOF", lambda: conn.recv(10))
    log("server replies", lambda: conn.sendall(b"reply"))
    conn.close()
    log("client reads", lambda: recv_exactly(cli, 5))
    log("client reads EOF", lambda: cli.recv(10))


@scenario
def poll_after_peer_closed(log):
    cli, conn = pair()
    cli.sendall(b"last words")
    cli.close()
    time.sleep(0.1)
    log("poll", lambda: poll_events(conn))
    log("read", lambda: recv_exactly(conn, 10))
    log("poll at EOF", lambda: poll_events(conn))
    log("read EOF", lambda: conn.recv(10))


@scenario
def linger_zero_resets(log):
    cli, conn = pair()
    cli.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                   struct.pack("ii", 1, 0))
    cli.close()
    wait_readable(conn)
    time.sleep(0.1)
    log("recv after reset", lambda: conn.recv(10))


@scenario
def epoll_rdhup_and_edge(log):
    cli, conn = pair()
    ep = select.epoll()
    ep.register(conn, select.EPOLLIN | select.EPOLLET | select.EPOLLRDHUP)
    cli.sendall(b"0123456789")
    log("wait", lambda: sorted(e for _, e in ep.poll(2)))
    log("read 4", lambda: conn.recv(4))
    log("edge: no new event", lambda: ep.poll(0.2))
    log("read rest", lambda: recv_exactly(conn, 6))
    cli.shutdown(socket.SHUT_WR)
    log("wait rdhup", lambda: sorted(e for _, e in ep.poll(2)))


@scenario
def epoll_oneshot_rearm(log):
    cli, conn = pair()
    ep = select.epoll()
    ep.register(conn, select.EPOLLIN | select.EPOLLONESHOT)
    cli.sendall(b"one")
    log("first", lambda: len(ep.poll(2)))
    log("disarmed", lambda: len(ep.poll(0.2)))
    log("read", lambda: conn.recv(3))
    cli.sendall(b"two")
    time.sleep(0.1)
    ep.modify(conn, select.EPOLLIN | select.EPOLLONESHOT)
    log("rearmed", lambda: len(ep.poll(2)))
    log("read", lambda: conn.recv(3))


# --- descriptors ---------------------------------------------------------

@scenario
def dup_then_close_original(log):
    cli, conn = pair()
    fd = os.dup(cli.fileno())
    cli.close()
    log("write through dup", lambda: os.write(fd, b"via dup"))
    log("peer reads", lambda: recv_exactly(conn, 7))
    os.close(fd)
    log("peer reads EOF", lambda: conn.recv(10))


@scenario
def sendfile_to_socket(log):
    cli, conn = pair()
    path = "/tmp/tlshim-conform-%d" % os.getpid()
    with open(path, "wb") as f:
        f.write(bytes(range(256)) * 100)
    with open(path, "rb") as f:
        log("sendfile", lambda: os.sendfile(cli.fileno(), f.fileno(), 0,
                                            25600))
    os.unlink(path)
    log("peer reads", lambda: recv_exactly(conn, 25600) ==
        bytes(range(256)) * 100)


@scenario
def msg_more_and_cork(log):
    cli, conn = pair()
    log("send more", lambda: cli.send(b"part1-", socket.MSG_MORE))
    log("send", lambda: cli.send(b"part2"))
    cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    log("corked send", lambda: cli.send(b"-part3"))
    cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
    log("peer reads", lambda: recv_exactly(conn, 17))


@scenario
def splice_from_socket(log):
    cli, conn = pair()
    cli.sendall(b"spliced")
    wait_readable(conn)
    time.sleep(0.05)
    r, w = os.pipe()
    log("splice", lambda: os.splice(conn.fileno(), w, 7))
    log("then recv", lambda: conn.recv(7, socket.MSG_DONTWAIT))


@scenario
def signal_interrupts_recv(log):
    """A signal whose handler is installed without SA_RESTART interrupts a
    blocking recv with EINTR (seen here through a raw libc call, since
    Python retries for us)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    cli, conn = pair()
    signal.signal(signal.SIGALRM, lambda *a: None)
    signal.siginterrupt(signal.SIGALRM, True)
    buf = ctypes.create_string_buffer(16)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    n = libc.recv(conn.fileno(), buf, 16, 0)
    err = ctypes.get_errno()
    log("recv", lambda: n if n >= 0 else
        "error " + errno.errorcode.get(err, str(err)))
    cli.sendall(b"after")
    log("recv after", lambda: recv_exactly(conn, 5))


@scenario
def readiness_means_data(log):
    """A socket reported readable has something to read: the first recv
    after the event never says EAGAIN (UCX's TCP transport loses its
    receive state if it does), with poll and with level- and
    edge-triggered epoll, while 4 MiB come through a small receive
    buffer (so the kernel mostly holds part of a record)."""
    payload = bytes(range(256)) * 16384
    for how in ("poll", "epoll", "epoll-et"):
        srv, port = listener()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        cli = socket.create_connection(("127.0.0.1", port))
        conn, _ = srv.accept()
        srv.close()
        conn.setblocking(False)
        sender = threading.Thread(target=lambda: (cli.sendall(payload),
                                                  cli.shutdown(socket.SHUT_WR)))
        sender.start()
        if how == "poll":
            waiter = select.poll()
            waiter.register(conn, select.POLLIN)
            wait = lambda: waiter.poll(5000)
        else:
            waiter = select.epoll()
            waiter.register(conn, select.EPOLLIN |
                            (select.EPOLLET if how == "epoll-et" else 0))
            wait = lambda: waiter.poll(5)
        got, spurious, stalled = bytearray(), 0, False
        while True:
            if not wait():
                stalled = True
                break
            first, done = True, False
            while True:
                try:
                    chunk = conn.recv(65536)
                except BlockingIOError:
                    spurious += first
                    break
                first = False
                if not chunk:
                    done = True
                    break
                got += chunk
                if how != "epoll-et":
                    break
            if done:
                break
        sender.join()
        log(how + ": received intact", lambda: bytes(got) == payload)
        log(how + ": EAGAIN right after readiness", lambda: spurious)
        log(how + ": stalled", lambda: stalled)
        cli.close()
        conn.close()


# --- what the issue also lists ----------------------------------------

def libc_call():
    import ctypes
    return ctypes.CDLL(None, use_errno=True), ctypes


def errno_text(rc, ctypes):
    err = ctypes.get_errno()
    return rc if rc >= 0 else "error " + errno.errorcode.get(err, str(err))


@scenario
def accept4_flags(log):
    """accept4(SOCK_NONBLOCK | SOCK_CLOEXEC) gives a socket with both, and
    plain accept() gives one with neither (O_NONBLOCK is not inherited)."""
    libc, ctypes = libc_call()
    srv, port = listener()
    srv.setblocking(False)
    cli = socket.create_connection(("127.0.0.1", port))
    cli2 = socket.create_connection(("127.0.0.1", port))
    wait_readable(srv)
    fd = libc.accept4(srv.fileno(), None, None,
                      socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    log("accept4", lambda: fd >= 0)
    log("O_NONBLOCK", lambda: bool(fcntl.fcntl(fd, fcntl.F_GETFL) &
                                   os.O_NONBLOCK))
    log("FD_CLOEXEC", lambda: bool(fcntl.fcntl(fd, fcntl.F_GETFD) &
                                   fcntl.FD_CLOEXEC))
    buf = ctypes.create_string_buffer(8)
    log("recv on it", lambda: errno_text(libc.recv(fd, buf, 8, 0), ctypes))
    fd2 = libc.accept(srv.fileno(), None, None)
    log("accept: O_NONBLOCK", lambda: bool(fcntl.fcntl(fd2, fcntl.F_GETFL) &
                                           os.O_NONBLOCK))
    cli.sendall(b"to the nonblocking one")
    time.sleep(0.1)
    log("recv it", lambda: errno_text(libc.recv(fd, buf, 8, 0), ctypes))
    os.close(fd)
    os.close(fd2)


@scenario
def msg_trunc_discards(log):
    """MSG_TRUNC on TCP discards the bytes it names: the next receive
    starts after them."""
    cli, conn = pair()
    cli.sendall(b"0123456789")
    wait_readable(conn)
    time.sleep(0.05)
    log("recv 4 MSG_TRUNC", lambda: len(conn.recv(4, socket.MSG_TRUNC)))
    log("the rest", lambda: recv_exactly(conn, 6))


@scenario
def siocoutq_after_delivery(log):
    """SIOCOUTQ counts bytes not yet acknowledged: none once the peer has
    them."""
    cli, conn = pair()
    cli.sendall(b"q" * 1000)
    log("received", lambda: len(recv_exactly(conn, 1000)))
    time.sleep(0.1)
    log("SIOCOUTQ", lambda: struct.unpack("i", fcntl.ioctl(
        cli, termios.TIOCOUTQ, struct.pack("i", 0)))[0])


@scenario
def epoll_exclusive(log):
    ep = select.epoll()
    cli, conn = pair()
    log("add EPOLLEXCLUSIVE", lambda: ep.register(
        conn, select.EPOLLIN | select.EPOLLEXCLUSIVE))
    log("modify it", lambda: ep.modify(conn, select.EPOLLIN))
    log("wait, nothing", lambda: ep.poll(0.1))
    cli.sendall(b"wake one")
    log("wait", lambda: [ev for _, ev in ep.poll(2)])
    log("read", lambda: recv_exactly(conn, 8))


@scenario
def names_of_the_ends(log):
    cli, conn = pair()
    log("peer of the server end is the client end",
        lambda: conn.getpeername() == cli.getsockname())
    log("peer of the client end is the server end",
        lambda: cli.getpeername() == conn.getsockname())
    log("address", lambda: conn.getsockname()[0])


@scenario
def connect_timeout(log):
    """A connect the listener never answers (its accept queue is full)
    times out for a caller with a timeout."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    held = []
    results = []
    for i in range(4):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(0.5)
        try:
            s.connect(("127.0.0.1", port))
            results.append("connected")
        except OSError as e:
            results.append(type(e).__name__)
        held.append(s)
    log("connects", lambda: results[-1])
    for s in held:
        s.close()
    srv.close()


@scenario
def eof_and_reset_while_blocked(log):
    """A thread blocked in recv, poll or epoll sees the peer's close (EOF)
    or reset as it happens."""
    for how in ("recv", "poll", "epoll"):
        for end in ("close", "reset"):
            cli, conn = pair()
            if end == "reset":
                cli.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                               struct.pack("ii", 1, 0))
            threading.Timer(0.2, cli.close).start()
            if how == "recv":
                log("%s %s" % (how, end), lambda: conn.recv(10))
            elif how == "poll":
                log("%s %s" % (how, end), lambda: poll_events(conn, 5000))
                log("%s %s then recv" % (how, end), lambda: conn.recv(10))
            else:
                ep = select.epoll()
                ep.register(conn, select.EPOLLIN | select.EPOLLRDHUP)
                log("%s %s" % (how, end),
                    lambda: sorted(ev for _, ev in ep.poll(5)))
                log("%s %s then recv" % (how, end), lambda: conn.recv(10))
                ep.close()
            conn.close()


@scenario
def dup2_and_fcntl(log):
    """Duplicates share one open file: dup2 onto a chosen number, close
    the original, use the copy; O_NONBLOCK set through one is seen
    through the other; F_DUPFD_CLOEXEC gives a close-on-exec copy."""
    cli, conn = pair()
    fd = os.dup2(conn.fileno(), 77)
    log("dup2", lambda: fd)
    cli.sendall(b"through the copy")
    time.sleep(0.05)
    log("read the copy", lambda: os.read(77, 16))
    flags = fcntl.fcntl(77, fcntl.F_GETFL)
    fcntl.fcntl(77, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    log("original non-blocking too",
        lambda: bool(fcntl.fcntl(conn.fileno(), fcntl.F_GETFL) &
                     os.O_NONBLOCK))
    log("read the original, nothing there",
        lambda: os.read(conn.fileno(), 4))
    fd3 = fcntl.fcntl(conn.fileno(), fcntl.F_DUPFD_CLOEXEC, 90)
    log("F_DUPFD_CLOEXEC", lambda: (fd3 >= 90, bool(
        fcntl.fcntl(fd3, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)))
    conn.close()
    cli.sendall(b"after the close")
    time.sleep(0.05)
    log("the copies live on", lambda: os.read(fd3, 15))
    os.close(fd3)
    log("and the last one", lambda: os.read(77, 15))
    os.close(77)


@scenario
def sa_restart_resumes(log):
    """A handler installed with SA_RESTART does not interrupt a blocking
    recv: it returns the data that comes after the signal."""
    libc, ctypes = libc_call()
    cli, conn = pair()
    seen = []
    signal.signal(signal.SIGALRM, lambda *a: seen.append("signal"))
    signal.siginterrupt(signal.SIGALRM, False)
    buf = ctypes.create_string_buffer(16)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    threading.Timer(0.5, lambda: cli.sendall(b"restarted")).start()
    n = libc.recv(conn.fileno(), buf, 16, 0)
    log("recv", lambda: errno_text(n, ctypes))
    log("bytes", lambda: buf.raw[:max(n, 0)])
    time.sleep(0.05)
    log("handler ran", lambda: seen)


def main():
    if sys.argv[1] == "list":
        print("\n".join(SCENARIOS))
        return 0
    log = Log()
    SCENARIOS[sys.argv[2]](log)
    print("\n".join(log.lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
