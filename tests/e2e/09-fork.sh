# A forked child that exits, closes the inherited protected
# descriptor, or tries to write on it (and gets an error), and a vforked
# child that closes it: the parent's connection keeps working each time,
# so no record was sealed with the parent's keys elsewhere.
. tests/e2e/lib.sh
make_nodes
make_creds
F=$BUILD/tests/forktest
bg on_b $(shim b) timeout 30 "$BUILD/tests/echo" 7300 1
wait_port_or_fail b 7300
on_a $(shim a) timeout 30 "$F" $IP_B 7300 || fail "fork cases failed"
wait_bg 30 || fail "echo server saw an unclean end of stream"
grep -q "a forked child cannot use its parent's protected connection" \
    "$T/a.log" || fail "the child's refused write was not logged"
exit 0
