# An unmodified program (socat) moves a multi-megabyte file both
# ways between two nodes, over IPv4 and IPv6; the bytes arrive intact and
# a capture on the wire holds none of the plaintext.
. tests/e2e/lib.sh
make_nodes
make_creds
make_marked_file "$T/data" 4000000

# Control: without the shim the marker is on the wire, so the capture
# check below can fail.
capture_start plain
bg on_b socat -u TCP-LISTEN:7000,reuseaddr OPEN:"$T/plain.out",creat,trunc
wait_port_or_fail b 7000
on_a socat -u OPEN:"$T/data" TCP:$IP_B:7000
wait_bg 30 || fail "plaintext control transfer failed"
capture_stop
capture_has plain "$MARKER" || fail "control: plaintext not seen in capture"

for family in 4 6; do
	if [ $family = 4 ]; then
		listen=TCP4-LISTEN connect="TCP4:$IP_B"
	else
		listen=TCP6-LISTEN connect="TCP6:[$IP6_B]"
	fi
	capture_start "enc$family"

	# a sends to b.
	bg on_b $(shim b) socat -u $listen:7001,reuseaddr \
	    OPEN:"$T/ab$family",creat,trunc
	wait_port_or_fail b 7001
	on_a $(shim a) socat -u OPEN:"$T/data" "$connect:7001" ||
	    fail "IPv$family: client a -> b failed"
	wait_bg 30 || fail "IPv$family: server b did not finish"
	cmp -s "$T/data" "$T/ab$family" || fail "IPv$family: a -> b corrupted"

	# b sends to a (the accepting side writes).
	bg on_b $(shim b) socat -u OPEN:"$T/data" $listen:7002,reuseaddr
	wait_port_or_fail b 7002
	on_a $(shim a) socat -u "$connect:7002" OPEN:"$T/ba$family",creat,trunc ||
	    fail "IPv$family: client b -> a failed"
	wait_bg 30 || fail "IPv$family: server b did not finish"
	cmp -s "$T/data" "$T/ba$family" || fail "IPv$family: b -> a corrupted"

	capture_stop
	bytes=$(capture_tcp_bytes "enc$family")
	# Most of the 8 MB (a busy capture may drop a few packets).
	[ "$bytes" -gt 6000000 ] ||
	    fail "IPv$family: capture saw only $bytes bytes of TCP payload"
	if capture_has "enc$family" "$MARKER"; then
		fail "IPv$family: plaintext marker found on the wire"
	fi
	# The servers chose X25519 for the key exchange (29; the cheaper one).
	groups=$(tshark -r "$T/enc$family.pcap" -Y "tls.handshake.type == 2" \
	    -T fields -e tls.handshake.extensions_key_share_group 2>/dev/null |
	    sort -u | tr '\n' ' ')
	[ "$groups" = "29 " ] || fail "IPv$family: key exchange groups '$groups', not X25519"
	echo "IPv$family: 2 x 4 MB intact, $bytes TCP payload bytes captured," \
	    "no plaintext on the wire, X25519 key exchange"
done

# A client that sends a few bytes and exits at once: the shim finishes the
# handshake and delivers them before the process is gone, as the kernel
# would after close().
bg on_b $(shim b) socat -u TCP4-LISTEN:7003,reuseaddr OPEN:"$T/short",creat,trunc
wait_port_or_fail b 7003
echo "short-lived client" | on_a $(shim a) socat -u - TCP4:$IP_B:7003 ||
    fail "short-lived client failed"
wait_bg 30 || fail "server for the short-lived client failed"
grep -q "short-lived client" "$T/short" ||
    fail "a short-lived client's bytes were lost at exit"

# sendfile(2) from a file to a protected socket goes through the record
# layer (Python's socket.sendfile uses os.sendfile): intact, and no
# plaintext on the wire.
capture_start sendfile
bg on_b $(shim b) socat -u TCP4-LISTEN:7004,reuseaddr OPEN:"$T/sf",creat,trunc
wait_port_or_fail b 7004
on_a $(shim a) /usr/bin/python3 -c '
import socket, sys
s = socket.create_connection((sys.argv[1], 7004))
with open(sys.argv[2], "rb") as f:
    sent = s.sendfile(f)
s.close()
import os; assert sent == os.path.getsize(sys.argv[2]), sent
' $IP_B "$T/data" || fail "sendfile client failed"
wait_bg 30 || fail "sendfile server failed"
capture_stop
cmp -s "$T/data" "$T/sf" || fail "sendfile: bytes altered"
capture_has sendfile "$MARKER" && fail "sendfile put plaintext on the wire"

# sendmmsg and recvmmsg go through the record layer too.
capture_start mmsg
bg on_b $(shim b) /usr/bin/python3 tests/progs/mmsg.py server 7005
wait_port_or_fail b 7005
on_a $(shim a) /usr/bin/python3 tests/progs/mmsg.py client $IP_B 7005 ||
    fail "sendmmsg client failed"
wait_bg 20 || fail "recvmmsg server failed"
capture_stop
capture_has mmsg aaaaabbbbb && fail "sendmmsg put plaintext on the wire"

grep -q "protected as server, peer spiffe://e2e/node/a" "$T/b.log" ||
    fail "b's log does not show protected connections from a"
grep -q "protected as client, peer spiffe://e2e/node/b" "$T/a.log" ||
    fail "a's log does not show protected connections to b"
exit 0
