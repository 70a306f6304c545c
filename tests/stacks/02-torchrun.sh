# torchrun of PyTorch 2.13 (its rendezvous on the libuv TCPStore, the
# default since 2.4) through examples/torchrun.sh on both nodes, the shim
# on: the DDP job of the demo trains to identical parameters, every
# connection between the nodes is protected, and the ranks' plaintext
# label is not on the wire.
. tests/e2e/lib.sh
[ -n "${TORCH_PYTHON:-}" ] || skip "TORCH_PYTHON not set"
BIN=$(dirname "$TORCH_PYTHON")
[ -x "$BIN/torchrun" ] || fail "no torchrun beside $TORCH_PYTHON"
make_nodes
make_creds
# Both namespaces share this machine's host name; it resolves locally.
node_hosts "$IP_A $(hostname) node-a
$IP_B node-b"
capture_start c10d
for n in a b; do
	if [ $n = a ]; then rank=0 ifname=$VETH_A; else rank=1 ifname=$VETH_B; fi
	bg on_$n env PATH="$BIN:$PATH" TLSHIM=1 TLSHIM_LIB="$LIB_FILE" \
	    TLSHIM_DIR="$T/$n" TLSHIM_LOG=info TLSHIM_LOG_FILE="$T/$n.log" \
	    GLOO_SOCKET_IFNAME=$ifname NODE_RANK=$rank MASTER_ADDR=$IP_A \
	    MASTER_PORT=29530 \
	    TORCHRUN_ARGS="--log-dir $T/logs$n --redirects 3 --tee 3" \
	    timeout 180 sh examples/torchrun.sh --peers $IP_A,$IP_B \
	    examples/train_ddp.py --steps 10
	eval "pid_$n=\$BG_LAST"
done
wait_pid "$pid_a" 180 || fail "node a's torchrun failed"
wait_pid "$pid_b" 180 || fail "node b's torchrun failed"
capture_stop
capture_has c10d TLSHIM-DEMO-PLAINTEXT-LABEL && fail "the label crossed in clear"
cross=$(grep -c "protected as server, peer spiffe://e2e/node/b" "$T/a.log" || true)
[ "$cross" -ge 2 ] || fail "only $cross connections from node b were protected"
grep -rq '"identical_parameters": true' "$T/logsa" || fail "no result from rank 0"
echo "torchrun: torch $("$TORCH_PYTHON" -c 'import torch; print(torch.__version__)')," \
    "$cross connections from node b protected, identical parameters"
exit 0
