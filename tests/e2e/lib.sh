# Shared helpers for the end-to-end tests: two nodes in network namespaces
# joined by a veth pair (198.18.0.0/15 and 2001:2::/48, the benchmarking
# ranges), cluster credentials, wire captures, and cleanup on any exit.
set -eu

LIB=$BUILD/libtlshim.so
KEYS=$BUILD/tlshim-keys
T=$(mktemp -d /tmp/tlshim-e2e.XXXXXX)
NS_A=tlshim-a-$$
NS_B=tlshim-b-$$
VETH_A=tsa$$
VETH_B=tsb$$
IP_A=198.18.0.1
IP_B=198.18.0.2
IP6_A=2001:2::1
IP6_B=2001:2::2
BG_PIDS=""

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

skip() {
	echo "SKIP: $*" >&2
	exit 77
}

cleanup() {
	for p in $BG_PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $BG_PIDS; do wait "$p" 2>/dev/null || true; done
	ip netns del "$NS_A" 2>/dev/null || true
	ip netns del "$NS_B" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# bg CMD...: run in the background (its PID in BG_LAST), killed at exit.
bg() {
	"$@" &
	BG_LAST=$!
	BG_PIDS="$BG_PIDS $BG_LAST"
}

# wait_bg [SECONDS]: wait for the last background command; its exit code.
wait_bg() {
	limit=${1:-60}
	i=0
	while kill -0 "$BG_LAST" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt $((limit * 10)) ]; then
			kill "$BG_LAST" 2>/dev/null || true
			wait "$BG_LAST" 2>/dev/null || true
			return 124
		fi
		sleep 0.1
	done
	wait "$BG_LAST"
}

need_root() {
	[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
}

# Two nodes: a (198.18.0.1, 2001:2::1) and b (198.18.0.2, 2001:2::2).
make_nodes() {
	need_root
	ip netns add "$NS_A"
	ip netns add "$NS_B"
	ip link add "$VETH_A" type veth peer name "$VETH_B"
	ip link set "$VETH_A" netns "$NS_A"
	ip link set "$VETH_B" netns "$NS_B"
	ip -n "$NS_A" link set lo up
	ip -n "$NS_B" link set lo up
	ip -n "$NS_A" addr add "$IP_A/24" dev "$VETH_A"
	ip -n "$NS_B" addr add "$IP_B/24" dev "$VETH_B"
	ip -n "$NS_A" addr add "$IP6_A/64" dev "$VETH_A" nodad
	ip -n "$NS_B" addr add "$IP6_B/64" dev "$VETH_B" nodad
	ip -n "$NS_A" link set "$VETH_A" up
	ip -n "$NS_B" link set "$VETH_B" up
}

on_a() { ip netns exec "$NS_A" "$@"; }
on_b() { ip netns exec "$NS_B" "$@"; }

# make_creds: CA in $T/ca, node credentials in $T/a and $T/b, and a node
# of an unrelated CA (same cluster name) in $T/evil.
make_creds() {
	"$KEYS" init --dir "$T/ca" --name e2e >/dev/null
	"$KEYS" issue --ca "$T/ca" --node a --ip "$IP_A,$IP6_A" --out "$T/a" >/dev/null
	"$KEYS" issue --ca "$T/ca" --node b --ip "$IP_B,$IP6_B" --out "$T/b" >/dev/null
	"$KEYS" init --dir "$T/otherca" --name e2e >/dev/null
	"$KEYS" issue --ca "$T/otherca" --node evil --out "$T/evil" >/dev/null
}

# shim NODE: the env command that preloads the shim with NODE's
# credentials, logging to $T/NODE.log: on_a $(shim a) socat ...
shim() {
	echo env LD_PRELOAD=$LIB TLSHIM=1 TLSHIM_DIR=$T/$1 TLSHIM_LOG=info \
	    TLSHIM_LOG_FILE=$T/$1.log TLSHIM_HANDSHAKE_TIMEOUT=5
}

# A file whose every 64-byte line carries a marker that must never be
# seen on the wire: MARKER is what tests grep for.
MARKER=TLSHIM-PLAINTEXT-MARKER
make_marked_file() {
	python3 -c "
import sys, os
n = int(sys.argv[2])
line = b'$MARKER-%08d-' 
with open(sys.argv[1], 'wb') as f:
    for i in range(n // 64):
        f.write((line % i).ljust(63, b'.') + b'\n')
" "$1" "$2"
}

# capture_start NAME: dumpcap on node a's veth into $T/NAME.pcap.
capture_start() {
	on_a dumpcap -q -i "$VETH_A" -w "$T/$1.pcap" >/dev/null 2>&1 &
	CAPTURE_PID=$!
	# Wait until the capture runs (the file appears with its header).
	i=0
	while [ ! -s "$T/$1.pcap" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	sleep 0.3
}

capture_stop() {
	sleep 0.3
	kill "$CAPTURE_PID" 2>/dev/null || true
	wait "$CAPTURE_PID" 2>/dev/null || true
}

# capture_has NAME TEXT: does the capture contain TEXT in any packet?
capture_has() {
	grep -c -a -F "$2" "$T/$1.pcap" >/dev/null 2>&1
}

# capture_tcp_bytes NAME: TCP payload bytes captured (to show the capture
# did see the transfer).
capture_tcp_bytes() {
	tshark -r "$T/$1.pcap" -T fields -e tcp.len 2>/dev/null |
	    awk '{s += $1} END {print s + 0}'
}

# wait_port NODE PORT: until something listens on PORT in NODE.
wait_port() {
	i=0
	while ! ip netns exec "tlshim-$1-$$" ss -ltnH "sport = :$2" | grep -q .; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "nothing listens on port $2 on node $1"
		sleep 0.05
	done
}
