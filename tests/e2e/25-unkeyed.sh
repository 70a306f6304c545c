# A protected connection never carries plaintext, whatever path its bytes
# take. A child that inherits the socket across exec (by number and as
# its stdout), a process that receives it over a Unix socket (SCM_RIGHTS)
# and one that takes it with pidfd_getfd have no keys for it: their
# writes fail with ECONNRESET and a log line says why. Raw syscall(SYS_sendto) and syscall(SYS_write) go
# through the record layer like the libc calls. io_uring: creating a ring
# is logged; with TLSHIM_STRICT=1 it fails with ENOSYS. Plain files read
# through the shim are classified once, not per call.
. tests/e2e/lib.sh
make_nodes
make_creds
PROG=tests/progs/unkeyed.py

# receive PORT FILE: a protected one-shot server on b.
receive() {
	bg on_b $(shim b) socat -u TCP4-LISTEN:$1,reuseaddr OPEN:"$2",creat,trunc
	wait_port_or_fail b $1
}

capture_start unkeyed
receive 7301 "$T/exec.out"
on_a $(shim a) python3 $PROG exec $IP_B 7301 ||
    fail "an exec'd child's writes to the inherited socket did not fail"
wait_bg 20 || true
receive 7302 "$T/scm.out"
on_a $(shim a) python3 $PROG scm $IP_B 7302 ||
    fail "writes to a socket received over SCM_RIGHTS did not fail"
wait_bg 20 || true
receive 7304 "$T/pidfd.out"
on_a $(shim a) python3 $PROG pidfd $IP_B 7304 ||
    fail "writes to a socket taken with pidfd_getfd did not fail"
wait_bg 20 || true
receive 7303 "$T/raw.out"
on_a $(shim a) python3 $PROG raw $IP_B 7303 || fail "raw syscalls did not send"
wait_bg 20 || true
capture_stop

capture_has unkeyed "$MARKER" && fail "the marker went out in plaintext"
[ "$(capture_tcp_bytes unkeyed)" -gt 0 ] || fail "the capture saw nothing"
grep -q "hello from the process that connected" "$T/exec.out" ||
    fail "the connecting process's own bytes did not arrive"
grep -q "$MARKER" "$T/exec.out" "$T/scm.out" "$T/pidfd.out" &&
    fail "an unkeyed write arrived"
[ "$(grep -c "$MARKER" "$T/raw.out")" = 2 ] ||
    fail "the raw syscalls' bytes did not arrive decrypted"
grep -q "did not key it (inherited across exec, or received from another process)" "$T/a.log" ||
    fail "the refusal of an unkeyed socket was not logged"
echo "unkeyed: exec'd child and SCM_RIGHTS receiver refused (ECONNRESET)," \
    "raw syscalls encrypted, no marker on the wire"

# io_uring: created and logged, or refused in strict mode.
said=$(on_a $(shim a) python3 $PROG uring)
[ "$said" = "uring: created" ] || fail "io_uring without strict mode: $said"
grep -q "creates an io_uring: socket I/O through it bypasses tlshim" "$T/a.log" ||
    fail "the io_uring bypass was not logged"
said=$(on_a $(shim a) TLSHIM_STRICT=1 python3 $PROG uring)
[ "$said" = "uring: ENOSYS" ] || fail "strict mode let an io_uring through: $said"
echo "io_uring: logged when created; strict mode makes it ENOSYS"

# A file read through the shim is classified once: 2,000 reads cost no
# more getsockopt calls than 20.
head -c 100000 /dev/zero >"$T/zeros"
sockopts() {
	on_a $(shim a) strace -qq -e trace=getsockopt -o "$T/strace" \
	    /usr/bin/python3 -c "
import os
fd = os.open('$T/zeros', os.O_RDONLY)
for i in range($1):
    os.lseek(fd, 0, 0)
    os.read(fd, 10)
"
	grep -c "getsockopt(" "$T/strace" || true
}
few=$(sockopts 20)
many=$(sockopts 2000)
[ "$many" -le $((few + 2)) ] ||
    fail "plain file reads cost a getsockopt each ($few for 20 reads, $many for 2000)"
echo "classification: $few getsockopt calls for 20 reads of a file, $many for 2,000"
exit 0
