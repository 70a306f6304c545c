# TLSHIM_PEERS protects exactly the job's peers and leaves the rest alone.
# Node b also hosts two services that are not part of the job and run
# without the shim: HTTP at 198.18.0.9 (inside the nodes' subnet) and
# HTTPS at 198.19.5.1 (another subnet). With TLSHIM_PEERS given as a list
# of addresses, as a hostfile and as names from the nodes' /etc/hosts, a
# shimmed client on a downloads from both (bytes checked), while its
# transfer to node b is protected (no marker on the wire, log lines on
# both ends); a client without the shim at the service's address is
# refused by a node's server. With 10,000 peers in a file, the decision is
# still a host-rule lookup (benchmarked by make bench, not timed here).
. tests/e2e/lib.sh
make_nodes
make_creds
SVC_IP=198.18.0.9 FAR_IP=198.19.5.1
ip -n "$NS_B" addr add $SVC_IP/24 dev "$VETH_B"
ip -n "$NS_B" addr add $FAR_IP/24 dev "$VETH_B"
ip -n "$NS_A" route add 198.19.5.0/24 dev "$VETH_A"
node_hosts "$IP_A nodea
$IP_B nodeb
$SVC_IP store"
WEB=tests/progs/webserve.py
mkdir -p "$T/www"
head -c 300000 /dev/urandom >"$T/www/shard.bin"
want=$(sha256sum "$T/www/shard.bin" | cut -d' ' -f1)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/web.key" -out "$T/web.crt" -days 1 -subj /CN=$FAR_IP \
    -addext "subjectAltName=IP:$FAR_IP" 2>/dev/null
bg on_b python3 $WEB $SVC_IP 8080 "$T/www"
bg on_b python3 $WEB $FAR_IP 8443 "$T/www" --tls "$T/web.crt" "$T/web.key"
wait_port_or_fail b 8080
wait_port_or_fail b 8443
make_marked_file "$T/data" 1000000
printf '# the job\nnodea slots=2\nnodeb slots=2\n' >"$T/hostfile.names"
printf '%s slots=2\n%s slots=2\n' $IP_A $IP_B >"$T/hostfile"

port=7850
# job PEERS: a downloads from both services and sends to b, all with
# TLSHIM_PEERS=PEERS.
job() {
	port=$((port + 1))
	rm -f "$T/got" "$T/a.log" "$T/b.log"
	got=$(on_a $(shim a) TLSHIM_PEERS="$1" python3 $WEB fetch \
	    http://$SVC_IP:8080/shard.bin) || fail "$1: the in-subnet service failed"
	[ "$got" = "$want" ] || fail "$1: the in-subnet download differs"
	got=$(on_a $(shim a) TLSHIM_PEERS="$1" python3 $WEB fetch \
	    https://$FAR_IP:8443/shard.bin "$T/web.crt") ||
	    fail "$1: the HTTPS service in the other subnet failed"
	[ "$got" = "$want" ] || fail "$1: the HTTPS download differs"
	capture_start peers$port
	bg on_b $(shim b) TLSHIM_PEERS="$1" socat -u TCP4-LISTEN:$port,reuseaddr \
	    OPEN:"$T/got",creat
	wait_port_or_fail b $port
	on_a $(shim a) TLSHIM_PEERS="$1" socat -u OPEN:"$T/data" \
	    TCP4:$IP_B:$port || fail "$1: the transfer to the peer failed"
	wait_bg 20 || true
	capture_stop
	cmp -s "$T/data" "$T/got" || fail "$1: the peer got other bytes"
	capture_has peers$port "$MARKER" && fail "$1: plaintext between peers"
	grep -q "protected as client, peer spiffe://e2e/node/b at $IP_B:$port" \
	    "$T/a.log" || fail "$1: a did not log the protected connection"
	grep -q "protected as server, peer spiffe://e2e/node/a" "$T/b.log" ||
	    fail "$1: b did not log the protected connection"
	grep -q "policy: connections to the 2 addresses of TLSHIM_PEERS are protected" \
	    "$T/a.log" || fail "$1: the policy was not stated: $(cat "$T/a.log")"
	grep "$SVC_IP\|$FAR_IP" "$T/a.log" | grep -qv "left in clear" &&
	    fail "$1: a service was touched: $(grep "$SVC_IP\|$FAR_IP" "$T/a.log")"
	grep -q "connection to $SVC_IP:8080 left in clear" "$T/a.log" &&
	    grep -q "connection to $FAR_IP:8443 left in clear" "$T/a.log" ||
	    fail "$1: the connections left in clear were not logged"
	echo "TLSHIM_PEERS=$1: both services reached, the peer protected"
}
job "$IP_A,$IP_B"
job "$T/hostfile"
job "nodea,nodeb"
job "$T/hostfile.names"

# An outside client without the shim, from the service's address, reaches
# a node's server only as a refused handshake.
bg on_a $(shim a) TLSHIM_PEERS="$T/hostfile" socat -u \
    TCP4-LISTEN:7890,reuseaddr OPEN:"$T/outside",creat
wait_port_or_fail a 7890
on_b socat -u OPEN:"$T/data" TCP4:$IP_A:7890,bind=$SVC_IP 2>/dev/null || true
wait_bg 20 || true
[ ! -s "$T/outside" ] || fail "an outside client's plaintext reached the job"
grep -q "connection refused as server (from $SVC_IP:" "$T/a.log" ||
    fail "the outside client's refusal was not logged"
echo "outside client: refused by the node's server"
exit 0
