# The audit trail: with TLSHIM_LOG_FORMAT=json every connection event is
# one JSON object (time, pid, program, role, local and peer address, peer
# identity, suites, handshake time, bytes at close, refusals with their
# reason, connections left in clear by the policy), and `tlshim audit`
# summarises a job's logs: protected connections per pair of nodes,
# refusals, what was left in clear, and, as a warning with exit code 1,
# anything left in clear to an address that is a peer.
. tests/e2e/lib.sh
make_nodes
make_creds
W=$BUILD/tlshim
SVC_IP=198.18.0.9
ip -n "$NS_B" addr add $SVC_IP/24 dev "$VETH_B"
mkdir -p "$T/www"
head -c 5000 /dev/urandom >"$T/www/f"
bg on_b python3 tests/progs/webserve.py $SVC_IP 8080 "$T/www"
wait_port_or_fail b 8080
json() {
	echo env LD_PRELOAD=$LIB TLSHIM=1 TLSHIM_DIR=$T/$1 TLSHIM_LOG=info \
	    TLSHIM_LOG_FORMAT=json TLSHIM_LOG_FILE=$T/$1.json \
	    TLSHIM_PEERS=$IP_A,$IP_B TLSHIM_HANDSHAKE_TIMEOUT=5 ${2:-}
}
on_a $(json a) python3 tests/progs/webserve.py fetch http://$SVC_IP:8080/f \
    >/dev/null || fail "the download failed"
bg on_b $(json b) socat -u TCP4-LISTEN:7990,reuseaddr OPEN:"$T/got",creat
wait_port_or_fail b 7990
head -c 100000 /dev/urandom | on_a $(json a) socat -u - TCP4:$IP_B:7990 ||
    fail "the transfer failed"
wait_bg 20 || true
# A client of another CA, refused by b.
bg on_b $(json b) socat -u TCP4-LISTEN:7991,reuseaddr OPEN:"$T/got2",creat
wait_port_or_fail b 7991
echo x | on_a $(json evil) socat -u - TCP4:$IP_B:7991 2>/dev/null || true
wait_bg 20 || true

for f in a b; do
	python3 -c "
import json, sys
for line in open(sys.argv[1]):
    json.loads(line)" "$T/$f.json" || fail "$f.json is not one JSON object a line"
done
grep -q '"event":"protected","role":"client","local":"198.18.0.1:[0-9]*","peer":"198.18.0.2:7990","identity":"spiffe://e2e/node/b"' "$T/a.json" ||
    fail "the protected connection is not in the audit trail"
grep -q '"event":"clear","role":"client","peer":"198.18.0.9:8080"' "$T/a.json" ||
    fail "the download left in clear is not in the audit trail"
grep -q '"event":"refused","role":"server".*"reason":"TLS handshake failed' "$T/b.json" ||
    fail "the refusal is not in the audit trail"
"$W" audit "$T/a.json" "$T/b.json" >"$T/audit" || fail "audit: $(cat "$T/audit")"
cat "$T/audit"
grep -q "198.18.0.1 -> 198.18.0.2: 1 connections, 100000 bytes sent" "$T/audit" ||
    fail "no pair, or not its bytes, in the summary"
grep -q "1 x to 198.18.0.9:8080" "$T/audit" || fail "the clear download is not summarised"
grep -q "in clear to a peer: none" "$T/audit" || fail "a peer in clear?"

# A peer's port excluded by mistake: audit says so and fails.
bg on_b socat -u TCP4-LISTEN:7992,reuseaddr OPEN:"$T/got3",creat
wait_port_or_fail b 7992
echo clear | on_a $(json a TLSHIM_EXCLUDE=$IP_B:7992) socat -u - TCP4:$IP_B:7992 ||
    fail "the excluded transfer failed"
wait_bg 20 || true
rc=0
"$W" audit "$T/a.json" "$T/b.json" >"$T/audit2" || rc=$?
[ $rc = 1 ] || fail "audit did not fail on clear traffic to a peer (exit $rc)"
grep -q "WARNING: 1 connection(s) in clear to 198.18.0.2, a peer" "$T/audit2" ||
    fail "the warning is missing: $(cat "$T/audit2")"
echo "audit: JSON trail checked, summary and the warning for a peer in clear"
exit 0
