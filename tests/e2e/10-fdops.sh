# Descriptors and blocking modes as the application sees them
# (dup, dup2 replacement, F_DUPFD, fcntl and FIONBIO views, SO_RCVTIMEO,
# SO_ERROR for a refused connect and for a failed handshake,
# syscall(SYS_close), closefrom). Every protected connection must end with
# a clean, authenticated close at the echo server.
. tests/e2e/lib.sh
make_nodes
make_creds
bg on_b $(shim b) timeout 60 "$BUILD/tests/echo" 7500 4
echo_pid=$BG_LAST
wait_port_or_fail b 7500
# A server that accepts TCP and then never says anything.
bg on_b sh -c 'exec socat -u TCP4-LISTEN:7502,reuseaddr OPEN:/dev/null'
wait_port_or_fail b 7502
on_a $(shim a) env TLSHIM_HANDSHAKE_TIMEOUT=1 timeout 60 \
    "$BUILD/tests/fdops" $IP_B 7500 7501 7502 || { cat $T/a.log; fail "fdops failed"; }
wait_pid "$echo_pid" || fail "a protected connection did not end cleanly"
[ "$(grep -c "protected as server" "$T/b.log")" = 4 ] ||
    fail "not all 4 echo connections were protected"
exit 0
