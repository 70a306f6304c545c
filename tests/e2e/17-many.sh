# Issues 5 and 6: 1,000 protected connections open at once in one process
# (each echoing, so every handshake finished), then closed cleanly; the
# time and resident memory per connection are reported, and the plaintext
# run beside it shows what the shim adds.
. tests/e2e/lib.sh
make_nodes
make_creds
C=$BUILD/tests/conns
for how in plain shim; do
	pre_a="" pre_b=""
	if [ $how = shim ]; then pre_a=$(shim a); pre_b=$(shim b); fi
	bg on_b $pre_b "$C" server 8100 1000
	wait_port_or_fail b 8100
	on_a $pre_a "$C" client $IP_B 8100 1000 | sed "s/^/$how: /" ||
	    fail "$how: 1,000 connections failed"
	wait_bg 60 || fail "$how: the server did not see every connection close"
done
[ "$(grep -c "protected as server" "$T/b.log")" = 1000 ] ||
    fail "not all 1,000 connections were protected"
exit 0
