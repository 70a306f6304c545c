# 1,000 protected connections open at once in one process
# (each echoing, so every handshake finished), then closed cleanly; the
# time and resident memory per connection are reported, and the plaintext
# run beside it shows what the shim adds. The server's handshakes use
# more than one core when the host has them.
. tests/e2e/lib.sh
make_nodes
make_creds
C=$BUILD/tests/conns
for how in plain shim; do
	pre_a="" pre_b=""
	if [ $how = shim ]; then pre_a=$(shim a); pre_b=$(shim b); fi
	bg on_b $pre_b "$C" server 8100 1000 >"$T/$how.server"
	wait_port_or_fail b 8100
	on_a $pre_a "$C" client $IP_B 8100 1000 >"$T/$how.out" ||
	    fail "$how: 1,000 connections failed: $(cat "$T/$how.out")"
	sed "s/^/$how: /" "$T/$how.out"
	wait_bg 60 || fail "$how: the server did not see every connection close"
done
# Resident memory per protected connection stays bounded (65 KiB when
# last measured; a sanitizer's bookkeeping says nothing about it).
per=$(sed -n 's/.* \([0-9.]*\) KiB resident per connection.*/\1/p' "$T/shim.out")
[ -n "$per" ] || fail "no memory figure: $(cat "$T/shim.out")"
[ -n "${SAN_PRELOAD:-}" ] || awk -v k="$per" 'BEGIN { exit !(k <= 128) }' ||
    fail "$per KiB resident per protected connection (bound: 128 KiB)"
[ "$(grep -c "protected as server" "$T/b.log")" = 1000 ] ||
    fail "not all 1,000 connections were protected"
# The handshakes of 1,000 connections arriving at once are spread over
# the shim's threads, one per core (up to 4): more than one did work.
cores=$(nproc)
[ "$cores" -gt 4 ] && cores=4
busy=$(awk '$1 == "thread" && $2 == "tlshim-progress" && $3 > 0' \
    "$T/shim.server" | wc -l)
if [ "$cores" -gt 1 ]; then
	[ "$busy" -ge 2 ] || fail "handshakes ran on $busy thread(s) on a" \
	    "$cores-core host: $(grep thread "$T/shim.server")"
fi
echo "server: handshakes on $busy threads ($(nproc) cores)"
exit 0
