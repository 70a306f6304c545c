# redis-server and its clients (hiredis: redis-cli, redis-benchmark) under
# the shim on two nodes. hiredis connects non-blocking, waits for POLLOUT
# and calls connect() again to learn the outcome, expecting what the
# kernel says (EISCONN); a value set and read back arrives intact and the
# wire carries no plaintext.
. tests/e2e/lib.sh
command -v redis-server >/dev/null || fail "redis-server is missing"
make_nodes
make_creds
capture_start redis
bg on_b $(shim b) redis-server --bind $IP_B --port 6380 --save "" \
    --appendonly no --protected-mode no --daemonize no --logfile "$T/redis.log"
wait_port_or_fail b 6380
out=$(on_a $(shim a) timeout 20 redis-cli -h $IP_B -p 6380 SET greeting \
    "$MARKER-redis" 2>&1) || fail "redis-cli SET failed: $out"
[ "$out" = OK ] || fail "redis-cli SET: $out"
out=$(on_a $(shim a) timeout 20 redis-cli -h $IP_B -p 6380 GET greeting 2>&1)
[ "$out" = "$MARKER-redis" ] || fail "redis-cli GET: $out"
on_a $(shim a) timeout 60 redis-benchmark -h $IP_B -p 6380 -n 2000 -c 4 \
    -t set,get -q >"$T/bench.out" 2>&1 || fail "redis-benchmark: $(cat "$T/bench.out")"
capture_stop
grep -q "SET: .* requests per second" "$T/bench.out" ||
    fail "redis-benchmark reported nothing: $(cat "$T/bench.out")"
capture_has redis "$MARKER" && fail "the value crossed the wire in clear"
grep -q "protected as client, peer spiffe://e2e/node/b at $IP_B:6380" "$T/a.log" ||
    fail "redis-cli's connection was not protected"
echo "redis: redis-cli SET/GET and redis-benchmark through the shim;" \
    "$(grep -c "protected as server" "$T/b.log") connections protected"
exit 0
