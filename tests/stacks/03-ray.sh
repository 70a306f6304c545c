# Ray 2.60 from PyPI (made by make check-stacks): a head on node a and a
# worker node on b, every Ray process under the shim with TLSHIM_PEERS
# naming the two nodes. Tasks and an actor on b move objects of several
# MiB both ways (tests/progs/ray_job.py checks every byte; gRPC between
# raylets, workers and the GCS, the object manager's chunks), connections
# from each node to the other are protected, a marker object never
# crosses in clear, and Ray's Unix sockets are left alone.
. tests/e2e/lib.sh
[ -n "${TORCH_PYTHON:-}" ] || skip "TORCH_PYTHON not set (make check-stacks)"
BIN=$(dirname "$TORCH_PYTHON")
[ -x "$BIN/ray" ] || fail "no ray beside $TORCH_PYTHON"
make_nodes
make_creds
export RAY_USAGE_STATS_ENABLED=0
# ray_env NODE: the env command for a Ray process on NODE.
ray_env() {
	echo "$(shim $1) TLSHIM_PEERS=$IP_A,$IP_B"
}
capture_start ray
on_a $(ray_env a) timeout 120 "$BIN/ray" start --head --node-ip-address=$IP_A \
    --port=6379 --num-cpus=2 --resources='{"node_a": 1}' \
    --object-store-memory=200000000 --include-dashboard=false \
    --disable-usage-stats --temp-dir="$T/ray-a" >"$T/head.out" 2>&1 ||
    fail "the head did not start: $(tail -5 "$T/head.out")"
on_b $(ray_env b) timeout 120 "$BIN/ray" start --address=$IP_A:6379 \
    --node-ip-address=$IP_B --num-cpus=2 --resources='{"node_b": 1}' \
    --object-store-memory=200000000 --disable-usage-stats \
    --temp-dir="$T/ray-b" >"$T/worker.out" 2>&1 ||
    fail "the worker node did not join: $(tail -5 "$T/worker.out")"
bg on_a $(ray_env a) "$BIN/python" tests/progs/ray_job.py $IP_A:6379 \
    "$MARKER-ray" >"$T/job.out" 2>&1
wait_pid "$BG_LAST" 120 || fail "the Ray job failed: $(tail -5 "$T/job.out")"
capture_stop
tail -1 "$T/job.out"
grep -q '"nodes": \["198.18.0.1", "198.18.0.2"\]' "$T/job.out" ||
    fail "the job did not see both nodes"
capture_has ray "$MARKER-ray" && fail "the marker object crossed in clear"
from_b=$(grep -c "protected as server, peer spiffe://e2e/node/b" "$T/a.log" || true)
from_a=$(grep -c "protected as server, peer spiffe://e2e/node/a at $IP_A" "$T/b.log" || true)
[ "$from_b" -ge 3 ] || fail "only $from_b connections from node b were protected"
[ "$from_a" -ge 1 ] || fail "no connection from node a to b was protected"
grep -h "failed authentication\|connection refused as" "$T/a.log" "$T/b.log" &&
    fail "a protected connection failed during the job"
echo "ray: $(sed -n 's/.*"ray": "\([^"]*\)".*/\1/p' "$T/job.out"); $from_b" \
    "connections from b and $from_a from a protected"
exit 0
