# PyTorch DDP over gloo (TCPStore rendezvous plus gloo pairs),
# unmodified: collectives on 1 KiB to 64 MiB tensors are exact with 2 ranks
# across the nodes and with 4 ranks (2 per node), a small DDP model trains
# to identical parameters, and the wire holds no tensor bytes in clear.
# TORCH_PYTHON picks another Python with torch (make check-stacks: a
# current torch from PyPI); by default Debian's python3-torch.
. tests/e2e/lib.sh
PY=${TORCH_PYTHON:-/usr/bin/python3}
[ -x "$PY" ] && "$PY" -c "import torch" 2>/dev/null ||
    fail "$PY has no torch (tools/deps.sh test installs python3-torch)"
make_nodes
make_creds
JOB=tests/progs/gloo_job.py
MARK=TLSHIM-PLAINTEXT-MARKER-TENSOR

# job NODE SHIM RANK WORLD PORT: one rank on NODE (SHIM: "shim" or "plain").
job() {
	node=$1 how=$2
	shift 2
	if [ "$node" = a ]; then ifname=$VETH_A ns=$NS_A; else ifname=$VETH_B ns=$NS_B; fi
	pre=""
	[ "$how" = shim ] && pre=$(shim "$node")
	ip netns exec "$ns" env GLOO_SOCKET_IFNAME="$ifname" $pre \
	    timeout 120 "$PY" "$JOB" "$1" "$2" "$IP_A" "$3"
}

# Control: the marker tensor is visible without the shim.
capture_start plain
bg job a plain 0 2 29400 --quick
job b plain 1 2 29400 --quick >"$T/plain.json" || fail "plaintext job failed"
wait_bg 60 || fail "plaintext rank 0 failed"
capture_stop
capture_has plain "$MARK" || fail "control: tensor bytes not seen in capture"

capture_start enc
bg job a shim 0 2 29401
job b shim 1 2 29401 >"$T/two.json" || fail "2-rank job under the shim failed"
wait_bg 120 || fail "2-rank job: rank 0 failed"
capture_stop
cat "$T/two.json"
grep -q '"ddp_params_identical": true' "$T/two.json" || fail "2 ranks: no result"
if capture_has enc "$MARK"; then
	fail "tensor bytes in clear on the wire"
fi

bg job a shim 0 4 29402
r0=$BG_LAST
bg job a shim 1 4 29402
r1=$BG_LAST
bg job b shim 2 4 29402
r2=$BG_LAST
job b shim 3 4 29402 >"$T/four.json" || fail "4-rank job: rank 3 failed"
for p in $r0 $r1 $r2; do wait_pid "$p" 120 || fail "4-rank job: a rank failed"; done
cat "$T/four.json"
grep -q '"ddp_params_identical": true' "$T/four.json" || fail "4 ranks: no result"

# Every cross-node connection was protected: rendezvous and gloo pairs.
[ "$(grep -c "protected as server, peer spiffe://e2e/node/b" "$T/a.log")" -ge 3 ] ||
    fail "rank 0's node did not log protected connections from node b"
exit 0
