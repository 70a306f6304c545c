#!/bin/sh
# make demo: a PyTorch DDP training job between two nodes (network
# namespaces on this machine) launched with torchrun, first in the clear,
# then protected by tlshim, with a capture of the wire. Prints a report.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
BUILD=$(cd "${BUILD:-$top/build}" && pwd)
STEPS=${STEPS:-40}

if [ "$(id -u)" != 0 ]; then
	cat >&2 <<'MSG'
make demo needs root: it creates two network namespaces joined by a veth
pair (ip netns) to stand for two nodes, and captures their link with
dumpcap. tlshim itself never needs root. Run:  sudo make demo
MSG
	exit 1
fi

T=$(mktemp -d /tmp/tlshim-demo.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	netns_down
	rm -rf "$T"
}
trap cleanup EXIT
trap 'echo "demo: interrupted, cleaning up" >&2; exit 130' INT TERM HUP

. "$top/tools/netns.sh"
say() { printf '%s\n' "$*"; }

say "== tlshim demo: two nodes, one PyTorch DDP job, torchrun, gloo"
netns_up demo$$
KEYS=$BUILD/tlshim-keys
say "-- creating the cluster CA; node1 runs the enrollment server"
"$KEYS" init --dir "$T/ca" --name demo >/dev/null
PIN=$("$KEYS" pin --ca "$T/ca")
ip netns exec "$NS_A" "$KEYS" serve --ca "$T/ca" --listen 198.18.0.1:7443 \
    2>"$T/serve.log" &
PIDS="$PIDS $!"
wait_port a 7443 || { say "demo: the enrollment server did not start"; exit 1; }
TOKEN=$("$KEYS" token --ca "$T/ca" --uses 2 --node node1,node2 --ttl 10m \
    2>/dev/null)
say "   CA pin $PIN"
say "   one token for two nodes (only node1 and node2, 10 minutes)"

# A dataset service that is not part of the job and has no tlshim, in the
# nodes' own subnet (as object stores usually are): 198.18.0.9 on node2's
# link. TLSHIM_PEERS names the job's nodes, so the download is left alone.
say "-- a dataset server at 198.18.0.9:8080 (no tlshim, not part of the job)"
ip -n "$NS_B" addr add 198.18.0.9/24 dev "$VETH_B"
mkdir -p "$T/www"
head -c 2000000 /dev/urandom >"$T/www/dataset.bin"
DATASET_SHA=$(sha256sum "$T/www/dataset.bin" | cut -c1-16)
ip netns exec "$NS_B" python3 -m http.server --bind 198.18.0.9 \
    --directory "$T/www" 8080 >/dev/null 2>&1 &
PIDS="$PIDS $!"
wait_port b 8080 || { say "demo: the dataset server did not start"; exit 1; }

# run_job NAME PORT SHIM: the job on both nodes through examples/torchrun.sh
# (TLSHIM=1 or 0), capturing the link; rank 0's JSON in $T/NAME.json.
run_job() {
	name=$1 port=$2 shim=$3
	on_a dumpcap -q -i "$VETH_A" -w "$T/$name.pcap" >/dev/null 2>&1 &
	cap=$!
	PIDS="$PIDS $cap"
	i=0
	while [ ! -s "$T/$name.pcap" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	for n in 1 2; do
		if [ $n = 1 ]; then ns=$NS_A ifname=$VETH_A; else ns=$NS_B ifname=$VETH_B; fi
		# With TLSHIM=1 and no credentials yet, torchrun.sh joins.
		ip netns exec "$ns" env TLSHIM=$shim TLSHIM_LIB="$BUILD/libtlshim.so" \
		    TLSHIM_DIR="$T/node$n" TLSHIM_LOG=info TLSHIM_LOG_FORMAT=json \
		    TLSHIM_SERVER=198.18.0.1:7443 TLSHIM_PIN="$PIN" \
		    TLSHIM_TOKEN="$TOKEN" TLSHIM_NODE=node$n TLSHIM_KEYS="$KEYS" \
		    TLSHIM_LOG_FILE="$T/node$n.log" GLOO_SOCKET_IFNAME="$ifname" \
		    NODE_RANK=$((n - 1)) MASTER_ADDR=198.18.0.1 MASTER_PORT="$port" \
		    TORCHRUN_ARGS="$TORCHRUN_FIX --log_dir $T/$name.logs$n" \
		    timeout 150 "$here/torchrun.sh" --peers 198.18.0.1,198.18.0.2 \
		    "$here/train_ddp.py" \
		    --steps "$STEPS" \
		    --dataset-url http://198.18.0.9:8080/dataset.bin >"$T/$name.node$n.out" 2>"$T/$name.node$n.err" &
		eval "pid$n=\$!"
		PIDS="$PIDS $!"
	done
	wait "$pid1" && wait "$pid2" || {
		say "demo: the $name job failed:"
		for f in "$T/$name.node1.err" "$T/$name.node2.err"; do tail -n 5 "$f"; done
		exit 1
	}
	sleep 0.3
	kill "$cap" 2>/dev/null || true
	wait "$cap" 2>/dev/null || true
	grep -o '{.*}' "$T/$name.node1.out" >"$T/$name.json"
}

# Debian's torchrun (torch 1.13) fails on Python 3.11 before starting any
# worker when output redirection is off (its Std enum parsing returns None:
# AttributeError: 'NoneType' object has no attribute 'get'). Redirecting
# stdout and teeing it avoids that path; newer torch needs nothing.
TORCHRUN_FIX="--redirects 1 --tee 1"


say "-- run 1: the job without tlshim (baseline), capturing the link"
run_job plain 29400 0
say "   $(cat "$T/plain.json")"

say "-- run 2: the same job with TLSHIM=1 (LD_PRELOAD=libtlshim.so), capturing the link"
say "   each node first enrolls: key made on the node, server checked against the pin"
run_job tlshim 29401 1
grep -h "joined as" "$T"/tlshim.node*.err | sed 's/^/   /'
say "   $(cat "$T/tlshim.json")"

field() { sed -n "s/.*\"$2\": \\([^,}]*\\).*/\\1/p" "$T/$1.json" | tr -d '"'; }
protected=$(cat "$T/node1.log" "$T/node2.log" | grep -c "protected as" || true)
cross=$(grep -c "protected as server, peer spiffe://demo/node/node2" "$T/node1.log" || true)
failures=$(cat "$T/node1.log" "$T/node2.log" | grep -c '"level":"error"' || true)
captured=$(tshark -r "$T/tlshim.pcap" -T fields -e tcp.len 2>/dev/null |
    awk '{s += $1} END {print s + 0}')
tls=$(tshark -r "$T/tlshim.pcap" -Y "tls.handshake.type == 1" -T fields \
    -e frame.number 2>/dev/null | grep -c . || true)
label_in() {
	if grep -q -a -F TLSHIM-DEMO-PLAINTEXT-LABEL "$T/$1.pcap"; then
		echo "in clear"
	else
		echo "absent"
	fi
}
clear=$(label_in tlshim)
control=$(label_in plain)
plain_s=$(field plain seconds)
shim_s=$(field tlshim seconds)

say ""
say "== report"
say "job:        $(field tlshim world) ranks, $(field tlshim steps) steps," \
    "$(field tlshim parameters) parameters" \
    "($(field tlshim gradient_MB_per_step) MB of gradients all-reduced per step)"
say "result:     final loss $(field tlshim final_loss) (baseline $(field plain final_loss)), identical parameters on every rank: $(field tlshim identical_parameters)"
say "protection: $protected connection ends protected by mutual TLS 1.3" \
    "($cross accepted on node1 from node2), $failures errors"
say "wire:       with tlshim: $captured TCP payload bytes captured, $tls TLS" \
    "ClientHellos, the ranks' plaintext label $clear;" \
    "without: the label $control"
say "outside:    every rank downloaded $(field tlshim dataset_bytes) bytes" \
    "from http://198.18.0.9:8080 (not a peer, no tlshim):" \
    "checksum $( [ "$(field tlshim dataset_sha256)" = "$DATASET_SHA" ] &&
    echo matches || echo DIFFERS), left as the program made it"
say "overhead:   training loop $shim_s s with tlshim vs $plain_s s without" \
    "($(awk -v a="$shim_s" -v b="$plain_s" 'BEGIN {printf "%.2fx", a / b}'))"
say "logs:       one JSON object per connection event (TLSHIM_LOG_FORMAT=json), e.g."
grep -m1 '"event":"protected","role":"server"' "$T/node1.log" |
    sed 's/^/            /'
say ""
say "== audit (tlshim audit on both nodes' logs)"
"$BUILD/tlshim" audit "$T/node1.log" "$T/node2.log" | sed 's/^/   /'
[ "$clear" = absent ] && [ "$control" = "in clear" ] &&
    [ "$protected" -gt 0 ] && [ "$failures" = 0 ] &&
    [ "$(field tlshim dataset_sha256)" = "$DATASET_SHA" ]
