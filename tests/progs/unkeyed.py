"""Sockets that reach a process around the shim's own connect and accept.

  exec HOST PORT      connect (protected), send a line, then run a child
                      that inherits the socket as stdout and by number
                      and writes the marker to both
  scm HOST PORT       connect (protected), send a line, then hand the
                      socket to another process over a Unix socket
                      (SCM_RIGHTS), which writes the marker
  pidfd HOST PORT     connect (protected), send a line, then let another
                      process take the socket with pidfd_getfd and write
                      the marker
  raw HOST PORT       connect, then send the marker with syscall(SYS_sendto)
                      and syscall(SYS_write)
  uring               create an io_uring with syscall(SYS_io_uring_setup)

Each prints one line saying what happened; exit 0 when it is what a
protected connection must do (the first two: every write fails with
ECONNRESET; raw: every byte sent).
"""
import ctypes
import errno
import os
import socket
import subprocess
import sys

MARKER = b"TLSHIM-PLAINTEXT-MARKER-unkeyed\n"
SYS_WRITE, SYS_SENDTO, SYS_IO_URING_SETUP = 1, 44, 425
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def try_write(fd):
    try:
        return "wrote %d bytes" % os.write(fd, MARKER)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def connected(host, port):
    s = socket.create_connection((host, int(port)))
    s.sendall(b"hello from the process that connected\n")
    return s


def run_exec(host, port):
    s = connected(host, port)
    fd = s.fileno()
    out = subprocess.run([sys.executable, __file__, "exec-child", str(fd)],
                         pass_fds=[fd], stdout=fd, stderr=subprocess.PIPE)
    said = out.stderr.decode().strip()
    print("exec: " + said)
    s.close()
    return said == "by number: ECONNRESET; as stdout: ECONNRESET"


def exec_child(fd):
    by_number = try_write(int(fd))
    as_stdout = try_write(1)
    sys.stderr.write("by number: %s; as stdout: %s\n" % (by_number, as_stdout))


def run_scm(host, port):
    s = connected(host, port)
    here, there = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    child = subprocess.Popen([sys.executable, __file__, "scm-child",
                              str(there.fileno())], pass_fds=[there.fileno()],
                             stdout=subprocess.PIPE)
    there.close()
    socket.send_fds(here, [b"x"], [s.fileno()])
    said = child.communicate()[0].decode().strip()
    print("scm: " + said)
    s.close()
    return said == "received socket: ECONNRESET"


def scm_child(fd):
    unix = socket.socket(fileno=int(fd))
    _, fds, _, _ = socket.recv_fds(unix, 1, 1)
    print("received socket: " + try_write(fds[0]))


def run_pidfd(host, port):
    s = connected(host, port)
    out = subprocess.run([sys.executable, __file__, "pidfd-child",
                          str(os.getpid()), str(s.fileno())],
                         stdout=subprocess.PIPE)
    said = out.stdout.decode().strip()
    print("pidfd: " + said)
    s.close()
    return said == "taken socket: ECONNRESET"


def pidfd_child(pid, fd):
    libc.pidfd_getfd.restype = ctypes.c_int
    pidfd = os.pidfd_open(int(pid))
    taken = libc.pidfd_getfd(pidfd, int(fd), 0)
    if taken < 0:
        print("pidfd_getfd failed: " +
              errno.errorcode.get(ctypes.get_errno(), "?"))
        return
    print("taken socket: " + try_write(taken))


def run_raw(host, port):
    s = socket.create_connection((host, int(port)))
    fd = s.fileno()
    n1 = libc.syscall(SYS_SENDTO, fd, MARKER, len(MARKER), 0, None, 0)
    n2 = libc.syscall(SYS_WRITE, fd, MARKER, len(MARKER))
    print("raw: sendto %d, write %d of %d bytes" % (n1, n2, len(MARKER)))
    s.close()
    return n1 == len(MARKER) and n2 == len(MARKER)


def run_uring():
    params = ctypes.create_string_buffer(120)
    fd = libc.syscall(SYS_IO_URING_SETUP, 4, params)
    if fd < 0:
        print("uring: " + errno.errorcode.get(ctypes.get_errno(), "?"))
    else:
        print("uring: created")
        os.close(fd)
    return True


def main():
    mode = sys.argv[1]
    if mode == "exec-child":
        exec_child(sys.argv[2])
        return 0
    if mode == "scm-child":
        scm_child(sys.argv[2])
        return 0
    if mode == "pidfd-child":
        pidfd_child(sys.argv[2], sys.argv[3])
        return 0
    ok = {"exec": run_exec, "scm": run_scm, "raw": run_raw, "pidfd": run_pidfd,
          "uring": run_uring}[mode](*sys.argv[2:])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
