# A certificate is good only at its own addresses, and a job-scoped node
# talks only to its job. An enrolled node m (its certificate names
# 198.18.0.4) relaying between a client on a and a server on a, from node
# b's address, is refused by both ends and the server program receives
# nothing; a's own certificate presented from b's address is refused the
# same way; TLSHIM_TRUST_NAT accepts a named address, with a log line; a
# node of job j1 refuses a node of job j2 with no TLSHIM_JOB set, and
# accepts one of its own job.
. tests/e2e/lib.sh
make_nodes
make_creds
M_IP=198.18.0.4
"$KEYS" issue --ca "$T/ca" --node m --ip $M_IP --out "$T/m" >/dev/null
"$KEYS" issue --ca "$T/ca" --node a1 --job j1 --ip "$IP_A" --out "$T/ja" >/dev/null
"$KEYS" issue --ca "$T/ca" --node b1 --job j1 --ip "$IP_B" --out "$T/jb" >/dev/null
"$KEYS" issue --ca "$T/ca" --node b2 --job j2 --ip "$IP_B" --out "$T/jx" >/dev/null
# Larger than what the shim queues during a handshake (1 MiB), so a
# refused client sees the refusal.
make_marked_file "$T/data" 3000000

# server NODE CREDS PORT FILE: a one-shot receiving server.
server() {
	bg on_$1 $(shim $2) socat -u TCP4-LISTEN:$3,reuseaddr OPEN:"$4",creat,trunc
	wait_port_or_fail $1 $3
}

# send NODE CREDS ADDR PORT: send the marked file; 0 when socat says so.
send() {
	on_$1 $(shim $2) socat -u OPEN:"$T/data" TCP4:$3:$4 2>/dev/null
}

got_nothing() {
	[ ! -s "$1" ] || fail "$2: the server program received $(wc -c <"$1") bytes"
}

# 1. m relays: a client on a believes it talks to b (198.18.0.2:7101);
# m's relay there forwards to the real server on a (7102).
server a a 7102 "$T/relayed"
bg on_b $(shim m) socat TCP4-LISTEN:7101,reuseaddr TCP4:$IP_A:7102
relay=$BG_LAST
wait_port_or_fail b 7101
capture_start relay
send a a $IP_B 7101 && fail "the client sent its data to a relaying node"
# The relay's own leg to the server, tried directly as m would.
send b m $IP_A 7102 && fail "the server accepted m connecting from b's address"
capture_stop
got_nothing "$T/relayed" "relay"
grep -q "connection refused as client (to $IP_B:7101): peer spiffe://e2e/node/m answered at $IP_B:7101, but its certificate's addresses are: $M_IP" "$T/a.log" ||
    fail "the client did not say which address and SANs disagreed"
grep -q "connection refused as server (from $IP_B:[0-9]*): peer spiffe://e2e/node/m connected from $IP_B:[0-9]*, but its certificate's addresses are: $M_IP" "$T/a.log" ||
    fail "the server did not say which address and SANs disagreed"
capture_has relay "$MARKER" && fail "plaintext on the wire"
kill "$relay" 2>/dev/null || true
echo "relay: refused by the client (m answered at b's address) and by the server (m from b's address)"

# 2. a's own certificate and key, used from b: refused both ways.
server b a 7103 "$T/stolen1"
send a a $IP_B 7103 && fail "a client accepted a's certificate presented at b"
server a a 7104 "$T/stolen2"
send b a $IP_A 7104 && fail "a server accepted a's certificate from b's address"
got_nothing "$T/stolen1" "a's certificate at b"
got_nothing "$T/stolen2" "a's certificate from b"
echo "stolen credentials: a's certificate refused at and from b's address"

# 3. TLSHIM_TRUST_NAT names b's address: m from there is accepted, logged.
bg on_a $(shim a) TLSHIM_TRUST_NAT=$IP_B socat -u TCP4-LISTEN:7105,reuseaddr \
    OPEN:"$T/nat",creat,trunc
wait_port_or_fail a 7105
send b m $IP_A 7105 || fail "TLSHIM_TRUST_NAT did not admit the named address"
wait_bg 20 || fail "the server under TLSHIM_TRUST_NAT failed"
cmp -s "$T/data" "$T/nat" || fail "TLSHIM_TRUST_NAT: bytes differ"
grep -q "TLSHIM_TRUST_NAT=$IP_B: peers at these addresses are accepted" "$T/a.log" ||
    fail "TLSHIM_TRUST_NAT not announced at start"
grep -q "peer spiffe://e2e/node/m at $IP_B:[0-9]*: its certificate's addresses ($M_IP) do not include it; accepted (TLSHIM_TRUST_NAT)" "$T/a.log" ||
    fail "the trusted mismatch was not logged"
echo "TLSHIM_TRUST_NAT: the named address admitted, and logged"

# 4. Honest nodes: protected, and the log names the peer's address.
server b b 7106 "$T/honest"
send a a $IP_B 7106 || fail "an honest transfer failed"
wait_bg 20 || true
cmp -s "$T/data" "$T/honest" || fail "honest transfer: bytes differ"
grep -q "protected as client, peer spiffe://e2e/node/b at $IP_B:7106" "$T/a.log" ||
    fail "the connection line does not name the peer's address"

# 5. Job scope from the node's own certificate, no TLSHIM_JOB anywhere.
server b jx 7107 "$T/otherjob"
send a ja $IP_B 7107 && fail "a node of job j1 sent to a node of job j2"
got_nothing "$T/otherjob" "another job"
grep -q "is not in job j1 (the job of this node's certificate" "$T/ja.log" ||
    fail "the job refusal was not explained"
server b jb 7108 "$T/samejob"
send a ja $IP_B 7108 || fail "two nodes of job j1 could not talk"
wait_bg 20 || true
cmp -s "$T/data" "$T/samejob" || fail "same job: bytes differ"
echo "job scope: j1 refused j2 and accepted j1 with no TLSHIM_JOB"
exit 0
