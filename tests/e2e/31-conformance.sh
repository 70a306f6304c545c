# The shim behaves like the kernel: every scenario of
# tests/progs/conform.py (the connect state machine and a connect that
# times out, accept4's flags, MSG_PEEK, MSG_DONTWAIT, MSG_WAITALL,
# MSG_TRUNC, FIONREAD, SIOCOUTQ, TCP_INQ, SO_RCVLOWAT, receives of zero
# bytes, half-close, EOF and reset while blocked in recv, poll and epoll,
# readiness that promises data, EPOLLRDHUP, EPOLLET, EPOLLONESHOT,
# EPOLLEXCLUSIVE, SO_LINGER resets, getpeername and getsockname, dup, dup2
# and fcntl, sendfile, MSG_MORE and TCP_CORK, signals with and without
# SA_RESTART, splice) runs once on plain sockets and
# once under the shim (loopback, no root), and the two records of return
# values, errno names, bytes and readiness must be identical, except for
# the differences listed below, each with its reason (README, Limits). A
# listed difference that disappears fails too, so the list stays true.
. tests/e2e/lib.sh
make_creds
PROG=tests/progs/conform.py

# scenario|the diff's lines (plain "<", shim ">"), one case a line.
cat >"$T/known" <<'KNOWN'
splice_from_socket|< splice: 7|< then recv: error EAGAIN|> splice: error EINVAL|> then recv: bytes b'spliced'
KNOWN

same=0 listed=0
for sc in $(python3 $PROG list); do
	timeout 30 python3 $PROG run "$sc" >"$T/$sc.plain" 2>&1 ||
	    fail "$sc failed on plain sockets: $(cat "$T/$sc.plain")"
	env LD_PRELOAD=$LIB TLSHIM=1 TLSHIM_LOOPBACK=1 TLSHIM_DIR=$T/a \
	    TLSHIM_LOG_FILE=$T/$sc.log timeout 30 python3 $PROG run "$sc" \
	    >"$T/$sc.shim" 2>&1 || fail "$sc failed under the shim: $(cat "$T/$sc.shim")"
	got=$(diff "$T/$sc.plain" "$T/$sc.shim" | grep '^[<>]' | paste -sd'|' -)
	want=$(sed -n "s/^$sc|//p" "$T/known")
	if [ "$got" != "$want" ]; then
		diff "$T/$sc.plain" "$T/$sc.shim" >&2
		fail "$sc: the shim differs from the kernel${want:+ otherwise than listed}"
	fi
	if [ -n "$want" ]; then listed=$((listed + 1)); else same=$((same + 1)); fi
done
echo "conformance: $same scenarios identical to the kernel, $listed listed" \
    "difference(s)"
exit 0
