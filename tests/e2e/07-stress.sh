# Two processes exchange 256 MiB in both directions at once, over
# non-blocking sockets with level-triggered and one-shot epoll loops, and
# with a sender and a receiver thread on one blocking socket: every byte
# checked.
. tests/e2e/lib.sh
make_nodes
make_creds
S=$BUILD/tests/stress
port=7100
for mode in lt oneshot threads; do
	bg on_b $(shim b) timeout 120 "$S" server $port $mode 256
	wait_port_or_fail b $port
	on_a $(shim a) timeout 120 "$S" client $IP_B $port $mode 256 ||
	    fail "$mode: client failed"
	wait_bg 120 || fail "$mode: server failed"
	port=$((port + 1))
done
[ "$(grep -c "protected as client" "$T/a.log")" = 3 ] ||
    fail "the stress connections were not protected"
exit 0
