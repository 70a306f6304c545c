# Hostile peers and a hostile network. A bit flipped in transit,
# a stream cut short, a record replayed, two records swapped and a record
# whose length field claims 16 MiB are detected: the receiving program
# gets an error, never a corrupted or silently short stream. A TLS 1.2-only
# client and a client sending random bytes are refused. A client that
# connects and stalls times out without holding up other connections to
# the same process.
. tests/e2e/lib.sh
make_nodes
make_creds
ADV=tests/progs/adversary.py
make_marked_file "$T/data" 2000000

# mitm MODE: a's client -> proxy on a (7700) -> b's server (7701).
mitm() {
	rm -f "$T/out"
	bg on_b $(shim b) python3 $ADV sink 7701 "$T/out"
	server=$BG_LAST
	wait_port_or_fail b 7701
	bg on_a python3 $ADV proxy 7700 $IP_B 7701 "$1" 300000
	proxy=$BG_LAST
	wait_port_or_fail a 7700
	# The proxy answers at a's own address with b's certificate: the
	# client trusts that address as NAT, or it would refuse it outright.
	on_a $(shim a) TLSHIM_TRUST_NAT=$IP_A socat -u OPEN:"$T/data" \
	    TCP4:$IP_A:7700 2>/dev/null || true
	rc=0
	wait_pid "$server" || rc=$?
	[ $rc = 3 ] || fail "$1: the receiving program saw no error (exit $rc)"
	wait_pid "$proxy" || true
	# What reached the program is an exact prefix of what was sent.
	size=$(stat -c %s "$T/out")
	[ "$size" -lt 2000000 ] || fail "$1: the server got the whole stream"
	head -c "$size" "$T/data" | cmp -s - "$T/out" ||
	    fail "$1: corrupted bytes reached the program"
	echo "$1: the program received a clean prefix of $size bytes, then an error"
}

mitm flip
grep -q "failed authentication" "$T/b.log" || fail "flip: not logged"
mitm cut
grep -q "ended without a close record (truncated)" "$T/b.log" ||
    fail "cut: truncation not logged"
for mode in replay reorder; do
	before=$(grep -c "failed authentication" "$T/b.log")
	mitm $mode
	[ "$(grep -c "failed authentication" "$T/b.log")" -gt "$before" ] ||
	    fail "$mode: not logged"
done
mitm oversize
grep -q "malformed record header" "$T/b.log" || fail "oversize: not logged"

# A client that speaks only TLS 1.2.
bg on_b $(shim b) socat -u TCP4-LISTEN:7702,reuseaddr OPEN:"$T/tls12",creat
wait_port_or_fail b 7702
echo secret | on_a timeout 10 openssl s_client -tls1_2 -quiet \
    -connect $IP_B:7702 >/dev/null 2>&1 && fail "a TLS 1.2 client got through"
wait_bg 10 || true
[ -s "$T/tls12" ] && fail "a TLS 1.2 client's bytes reached the program"
grep -q "connection refused as server" "$T/b.log" || fail "TLS 1.2 refusal not logged"

# Random bytes instead of a ClientHello.
before=$(grep -c "connection refused as server" "$T/b.log")
bg on_b $(shim b) socat -u TCP4-LISTEN:7704,reuseaddr OPEN:"$T/garbage",creat
wait_port_or_fail b 7704
head -c 100000 /dev/urandom | on_a timeout 10 socat -u - TCP4:$IP_B:7704 \
    2>/dev/null || true
wait_bg 10 || true
[ -s "$T/garbage" ] && fail "random bytes reached the program"
[ "$(grep -c "connection refused as server" "$T/b.log")" -gt "$before" ] ||
    fail "random bytes: refusal not logged"

# A stalled client (TCP only, nothing sent) against a concurrent server.
bg on_b $(shim b) python3 $ADV echo-server 7703
echo_server=$BG_LAST
wait_port_or_fail b 7703
bg on_a socat -u TCP4:$IP_B:7703 EXEC:"sleep 20"
stall=$BG_LAST
sleep 0.5
got=$(echo "still served" | on_a $(shim a) timeout 10 socat - TCP4:$IP_B:7703) ||
    fail "a good client was held up by a stalled one"
[ "$got" = "still served" ] || fail "a good client got '$got'"
i=0
until grep -q "TLS handshake as server with [0-9.:]* timed out" "$T/b.log"; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "the stalled handshake never timed out"
	sleep 0.1
done
kill "$stall" 2>/dev/null || true
echo "stalled client: timed out after TLSHIM_HANDSHAKE_TIMEOUT; others served"

# Hostile churn: rounds of 150 refused connections (random bytes, no
# shim, another CA). After a first round has warmed up the allocators,
# another round leaves the server's descriptors and memory where they were.
fds() { ls "/proc/$echo_server/fd" | wc -l; }
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$echo_server/status"; }
hostile_round() {
	for i in $(seq 50); do
		head -c 3000 /dev/urandom | on_a timeout 5 socat -u - \
		    TCP4:$IP_B:7703 2>/dev/null || true
		echo plain | on_a timeout 5 socat - TCP4:$IP_B:7703 >/dev/null \
		    2>&1 || true
		echo evil | on_a env LD_PRELOAD=$LIB TLSHIM=1 TLSHIM_DIR=$T/evil \
		    timeout 5 socat - TCP4:$IP_B:7703 >/dev/null 2>&1 || true
	done
	[ "$(echo again | on_a $(shim a) timeout 10 socat - TCP4:$IP_B:7703)" = again ] ||
	    fail "the server stopped serving after hostile churn"
	sleep 0.5
}
churn_start=$(date +%s)
hostile_round
fd0=$(fds) rss0=$(rss)
hostile_round
hostile_round
fd1=$(fds) rss1=$(rss)
# The log does not grow with the flood: at most 20 refusal lines every
# 10 s from the server process, and the rest counted.
lines=$(grep -c "tlshim\[$echo_server\]: error: .*refused" "$T/b.log" || true)
windows=$(( ($(date +%s) - churn_start) / 10 + 2 ))
[ "$lines" -le $((20 * windows)) ] ||
    fail "$lines refusal lines for 450 hostile connections: not rate-limited"
[ "$fd1" -le "$fd0" ] || fail "descriptors grew from $fd0 to $fd1 after hostile churn"
# (Under ASan, freed memory waits in its quarantine: RSS says nothing.)
[ -n "${SAN_PRELOAD:-}" ] || [ $((rss1 - rss0)) -lt 1024 ] ||
    fail "memory grew by $((rss1 - rss0)) KiB over 300 hostile connections"
echo "hostile churn: 450 refused connections; over the last 300, fds" \
    "$fd0 -> $fd1, RSS $rss0 -> $rss1 KiB; $lines log lines" \
    "($(grep -c "tlshim\[$echo_server\]: warn: .*similar lines suppressed" "$T/b.log" || true) summaries)"
exit 0
