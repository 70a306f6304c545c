# What must be refused is refused, and nothing leaks: a client
# without the shim, a client whose certificate comes from another CA, a
# client of another job, a shimmed client facing a server without the
# shim, and a client whose configuration is invalid.
. tests/e2e/lib.sh
make_nodes
make_creds
"$KEYS" issue --ca "$T/ca" --node j1node --job j1 --out "$T/j1" >/dev/null
# Larger than what the shim queues during a handshake (1 MiB), so the
# client must wait for the handshake's outcome and see it fail.
make_marked_file "$T/data" 3000000

# serve_to FILE PORT [shim args]: one-shot server on b writing to FILE.
serve_to() {
	out=$1 port=$2
	shift 2
	bg on_b "$@" socat -u TCP4-LISTEN:$port,reuseaddr OPEN:"$out",creat,trunc
	wait_port_or_fail b "$port"
}

received_nothing() {
	[ ! -s "$1" ] || fail "$2: the server program received $(wc -c <"$1") bytes"
}

# 1. A client without the shim.
serve_to "$T/out1" 7010 $(shim b)
on_a socat -u OPEN:"$T/data" TCP4:$IP_B:7010 2>/dev/null || true
wait_bg 20 || true
received_nothing "$T/out1" "plaintext client"
grep -q "connection refused as server (from [0-9.]*:[0-9]*): TLS handshake failed" "$T/b.log" ||
    fail "no refusal logged for the plaintext client"

# 2. A client with a certificate from another CA.
serve_to "$T/out2" 7011 $(shim b)
if on_a $(shim evil) socat -u OPEN:"$T/data" TCP4:$IP_B:7011 2>/dev/null; then
	fail "client from another CA reported success"
fi
wait_bg 20 || true
received_nothing "$T/out2" "client from another CA"
grep -q "certificate verify failed\|received alert" "$T/evil.log" ||
    fail "client from another CA: no clear log line"

# 3. A client of another job, against a server that requires job j2.
bg on_b env TLSHIM_JOB=j2 $(shim b) socat -u TCP4-LISTEN:7013,reuseaddr \
    OPEN:"$T/out3",creat,trunc
wait_port_or_fail b 7013
on_a $(shim j1) socat -u OPEN:"$T/data" TCP4:$IP_B:7013 2>/dev/null || true
wait_bg 20 || true
received_nothing "$T/out3" "client of another job"
grep -q "is not in job j2" "$T/b.log" || fail "job mismatch not logged"

# 4. A shimmed client facing a server without the shim: the client fails
# and no plaintext reaches the server.
capture_start leak
serve_to "$T/out4" 7012
if on_a $(shim a) socat -u OPEN:"$T/data" TCP4:$IP_B:7012 2>/dev/null; then
	fail "shimmed client reported success against a plaintext server"
fi
wait_bg 20 || true
capture_stop
if grep -q -a -F "$MARKER" "$T/out4"; then
	fail "plaintext reached a server without the shim"
fi
if capture_has leak "$MARKER"; then
	fail "plaintext on the wire toward a server without the shim"
fi
grep -q "timed out\|connection refused as client" "$T/a.log" ||
    fail "shimmed client: no clear log line"
grep -q "$IP_B:7012.*list the nodes in TLSHIM_PEERS" "$T/a.log" ||
    fail "shimmed client: the address and TLSHIM_PEERS are not named"

# 5. Invalid configuration: refused before anything is sent.
serve_to "$T/out5" 7014 $(shim b)
if on_a env TLSHIM_INCLUDE=not-a-cidr $(shim a) \
    socat -u OPEN:"$T/data" TCP4:$IP_B:7014 2>/dev/null; then
	fail "client with invalid configuration reported success"
fi
grep -q "invalid configuration: TLSHIM_INCLUDE" "$T/a.log" ||
    fail "invalid configuration not logged"
on_a socat -u /dev/null TCP4:$IP_B:7014 2>/dev/null || true
wait_bg 20 || true
received_nothing "$T/out5" "client with invalid configuration"
exit 0
