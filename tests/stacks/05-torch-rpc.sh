# torch.distributed.rpc of PyTorch 2.13 (TensorPipe over TCP, its libuv
# transport) between a rank on node a and a rank on node b, both under
# the shim: rpc_sync, rpc_async and a remote object with 4 MiB tensors
# come back exact (tests/progs/rpc_job.py), and the connections between
# the nodes, the TCPStore's and TensorPipe's, are protected. It needs
# TLSHIM_STRICT=1: the libuv inside torch 2.13 registers sockets with
# epoll through an io_uring even with UV_USE_IO_URING=0, which no hook
# sees, and without strict mode the RPCs stall (the shim logs that the
# process creates an io_uring); strict mode makes io_uring unavailable
# and libuv falls back to epoll_ctl.
. tests/e2e/lib.sh
[ -n "${TORCH_PYTHON:-}" ] || skip "TORCH_PYTHON not set (make check-stacks)"
make_nodes
make_creds
# The ranks tell TensorPipe their node's address by interface.
rank() {
	node=$1 r=$2
	if [ $node = a ]; then ifname=$VETH_A; else ifname=$VETH_B; fi
	eval on_$node $(shim $node) TLSHIM_STRICT=1 TP_SOCKET_IFNAME=$ifname \
	    GLOO_SOCKET_IFNAME=$ifname timeout 120 "$TORCH_PYTHON" \
	    tests/progs/rpc_job.py $r $IP_A 29620
}
bg rank a 0 >"$T/r0.out" 2>&1
r0=$BG_LAST
rank b 1 >"$T/r1.out" 2>&1 || fail "rank 1 failed: $(tail -n 5 "$T/r1.out")"
wait_pid "$r0" 120 || fail "rank 0 failed: $(tail -n 5 "$T/r0.out")"
grep -q '"rpc_ok": true' "$T/r0.out" && grep -q '"rpc_ok": true' "$T/r1.out" ||
    fail "no result"
from_b=$(grep -c "protected as server, peer spiffe://e2e/node/b" "$T/a.log" || true)
to_b=$(grep -c "protected as client, peer spiffe://e2e/node/b" "$T/a.log" || true)
[ "$from_b" -ge 2 ] || fail "only $from_b connections from node b were protected"
echo "rpc: $(tail -n 1 "$T/r0.out"); $from_b connections from b and" \
    "$to_b to b protected"
exit 0
