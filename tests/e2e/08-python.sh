# Python's asyncio (20 concurrent connections) and a threaded
# socket program (concurrent send and receive threads on one socket,
# subprocesses that close inherited descriptors or connect by themselves).
. tests/e2e/lib.sh
make_nodes
make_creds
P=tests/progs/pyapps.py
bg on_b $(shim b) timeout 60 /usr/bin/python3 $P asyncio-server 7400
wait_port_or_fail b 7400
on_a $(shim a) timeout 60 /usr/bin/python3 $P asyncio-client $IP_B 7400 ||
    fail "asyncio client failed"
wait_bg 60 || fail "asyncio server failed"
bg on_b $(shim b) timeout 60 /usr/bin/python3 $P threaded-server 7401
wait_port_or_fail b 7401
on_a $(shim a) timeout 60 /usr/bin/python3 $P threaded-client $IP_B 7401 ||
    fail "threaded client failed"
wait_bg 60 || fail "threaded server failed"
[ "$(grep -c "protected as server" "$T/b.log")" = 22 ] ||
    fail "not all 22 connections were protected"
exit 0
