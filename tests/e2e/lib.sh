# Shared helpers for the end-to-end tests: two nodes in network namespaces
# joined by a veth pair (198.18.0.0/15 and 2001:2::/48, the benchmarking
# ranges), cluster credentials, wire captures, and cleanup on any exit.
set -eu

LIB_FILE=$BUILD/libtlshim.so
# What LD_PRELOAD gets: a sanitizer runtime first when the library was
# built with one (SAN_PRELOAD, set by make asan).
LIB=${SAN_PRELOAD:+$SAN_PRELOAD:}$LIB_FILE
KEYS=$BUILD/tlshim-keys
T=$(mktemp -d /tmp/tlshim-e2e.XXXXXX)
BG_PIDS=""
. tools/netns.sh

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
	# Whatever has not gone after 5 s is killed outright: a test must
	# never hang on its own leftovers.
	i=0
	for p in $BG_PIDS; do
		while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -9 "$p" 2>/dev/null || true
	done
	for p in $BG_PIDS; do wait "$p" 2>/dev/null || true; done
	netns_down
	# Name files a test gave its nodes (ip netns exec mounts them).
	for _ns in ${NS_A:-} ${NS_B:-}; do rm -rf "/etc/netns/$_ns"; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# bg CMD...: run in the background (its PID in BG_LAST), killed at exit.
bg() {
	# Not through the on_a/on_b functions: the PID must be the program's.
	case $1 in
	on_a) shift; ip netns exec "$NS_A" "$@" & ;;
	on_b) shift; ip netns exec "$NS_B" "$@" & ;;
	*) "$@" & ;;
	esac
	BG_LAST=$!
	BG_PIDS="$BG_PIDS $BG_LAST"
}

# wait_pid PID [SECONDS]: wait for a background command; its exit code,
# or 124 when it had to be killed after SECONDS (60): a test never hangs.
wait_pid() {
	limit=${2:-60}
	i=0
	while kill -0 "$1" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt $((limit * 10)) ]; then
			kill "$1" 2>/dev/null || true
			wait "$1" 2>/dev/null || true
			return 124
		fi
		sleep 0.1
	done
	wait "$1"
}

# wait_bg [SECONDS]: wait for the last background command; its exit code.
wait_bg() {
	wait_pid "$BG_LAST" "${1:-60}"
}

need_root() {
	[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
}

# Two nodes: a (198.18.0.1, 2001:2::1) and b (198.18.0.2, 2001:2::2).
make_nodes() {
	need_root
	netns_up $$
}

# node_hosts LINES: an /etc/hosts for both nodes (ip netns exec mounts
# /etc/netns/NAME/hosts over /etc/hosts); removed at exit.
node_hosts() {
	for _ns in $NS_A $NS_B; do
		mkdir -p "/etc/netns/$_ns"
		printf '127.0.0.1 localhost\n%s\n' "$1" >"/etc/netns/$_ns/hosts"
	done
}

# outside_service: a web server that is not part of the job and runs
# without the shim, at 198.18.0.9 in the nodes' subnet (on node b's link),
# serving $T/www/data.bin: OUTSIDE_URL. The job must reach it.
outside_service() {
	ip -n "$NS_B" addr add 198.18.0.9/24 dev "$VETH_B"
	mkdir -p "$T/www"
	head -c 54321 /dev/urandom >"$T/www/data.bin"
	OUTSIDE_SHA=$(sha256sum "$T/www/data.bin" | cut -d' ' -f1)
	OUTSIDE_URL=http://198.18.0.9:8080/data.bin
	bg on_b python3 tests/progs/webserve.py 198.18.0.9 8080 "$T/www"
	wait_port_or_fail b 8080
}

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

# wait_port NODE PORT (tools/netns.sh), failing the test on time-out.
wait_port_or_fail() {
	wait_port "$1" "$2" || fail "nothing listens on port $2 on node $1"
}
