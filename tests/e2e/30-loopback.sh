# The shim's hooks on loopback (TLSHIM_LOOPBACK=1), with no network
# namespaces, so that this tier needs no root: a socat transfer arrives
# intact between two shimmed processes, each end logs its protected
# connection, a client of another CA and a client without the shim are
# refused and their bytes never reach the server program, and a Python
# echo server answers a shimmed client byte for byte.
. tests/e2e/lib.sh
make_creds
make_marked_file "$T/data" 3000000
lo() {
	echo env LD_PRELOAD=$LIB TLSHIM=1 TLSHIM_LOOPBACK=1 TLSHIM_DIR=$T/$1 \
	    TLSHIM_LOG=info TLSHIM_LOG_FILE=$T/$1.log TLSHIM_HANDSHAKE_TIMEOUT=5
}
listening() {
	i=0
	until ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; do
		i=$((i + 1))
		[ $i -lt 200 ] || fail "nothing listens on 127.0.0.1:$1"
		sleep 0.05
	done
}
PORT=$((20000 + $$ % 20000))

bg $(lo b) socat -u TCP4-LISTEN:$PORT,bind=127.0.0.1,reuseaddr OPEN:"$T/got",creat
listening $PORT
$(lo a) socat -u OPEN:"$T/data" TCP4:127.0.0.1:$PORT || fail "the transfer failed"
wait_bg 20 || fail "the receiving socat failed"
cmp -s "$T/data" "$T/got" || fail "the bytes differ"
grep -q "protected as client, peer spiffe://e2e/node/b at 127.0.0.1:$PORT" "$T/a.log" ||
    fail "the client did not log its protected connection"
grep -q "protected as server, peer spiffe://e2e/node/a" "$T/b.log" ||
    fail "the server did not log its protected connection"

for who in evil plain; do
	PORT=$((PORT + 1))
	rm -f "$T/got"
	bg $(lo b) socat -u TCP4-LISTEN:$PORT,bind=127.0.0.1,reuseaddr OPEN:"$T/got",creat
	listening $PORT
	if [ $who = evil ]; then
		$(lo evil) socat -u OPEN:"$T/data" TCP4:127.0.0.1:$PORT 2>/dev/null &&
		    fail "a client of another CA reported success"
	else
		socat -u OPEN:"$T/data" TCP4:127.0.0.1:$PORT 2>/dev/null || true
	fi
	wait_bg 20 || true
	[ ! -s "$T/got" ] || fail "$who: the server program received bytes"
done
grep -q "connection refused as server" "$T/b.log" || fail "the refusals were not logged"

PORT=$((PORT + 1))
bg $(lo b) python3 tests/progs/adversary.py echo-server $PORT
listening $PORT
got=$(echo "echo over loopback" | $(lo a) timeout 10 socat - TCP4:127.0.0.1:$PORT)
[ "$got" = "echo over loopback" ] || fail "the echo came back as: $got"
echo "loopback: transfer intact, other CA and no shim refused, echo answered" \
    "(no root needed)"
exit 0
