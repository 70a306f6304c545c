# An NCCL-style bootstrap ring of 4 processes on 2 nodes: each
# does a non-blocking connect to the next, sends 12 bytes with MSG_DONTWAIT
# expecting the whole write, then blocks in accept for the previous rank.
. tests/e2e/lib.sh
make_nodes
make_creds
R=$BUILD/tests/ring
bg on_a $(shim a) timeout 30 "$R" 0 4 $IP_A 7200 $IP_A 7201
p0=$BG_LAST
bg on_a $(shim a) timeout 30 "$R" 1 4 $IP_A 7201 $IP_B 7202
p1=$BG_LAST
bg on_b $(shim b) timeout 30 "$R" 2 4 $IP_B 7202 $IP_B 7203
p2=$BG_LAST
on_b $(shim b) timeout 30 "$R" 3 4 $IP_B 7203 $IP_A 7200 || fail "rank 3 failed"
for p in $p0 $p1 $p2; do wait "$p" || fail "a rank failed (deadlock or error)"; done
[ "$(cat "$T/a.log" "$T/b.log" | grep -c "protected as")" -ge 8 ] ||
    fail "the ring's connections were not all protected"
exit 0
