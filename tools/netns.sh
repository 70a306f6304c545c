# Two test nodes on one machine: network namespaces joined by a veth pair,
# addressed in the benchmarking ranges 198.18.0.0/15 and 2001:2::/48.
# Sourced by the end-to-end tests, the demo and the benchmark; needs root.
#
#   IP_A IP_B IP6_A IP6_B   the nodes' addresses
#   netns_up TAG      creates nodes a and b; sets NS_A NS_B VETH_A VETH_B
#   netns_down        removes them (safe to call twice)
#   on_a CMD... / on_b CMD...   run a command on a node

IP_A=198.18.0.1
IP_B=198.18.0.2
IP6_A=2001:2::1
IP6_B=2001:2::2

netns_up() {
	NS_A=tlshim-a-$1
	NS_B=tlshim-b-$1
	VETH_A=tsa$1
	VETH_B=tsb$1
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

netns_down() {
	for _ns in ${NS_A:-} ${NS_B:-}; do
		# Whatever still runs there would outlive the namespace's name.
		ip netns pids "$_ns" 2>/dev/null | xargs -r kill 2>/dev/null
		ip netns del "$_ns" 2>/dev/null
	done
	return 0
}

on_a() { ip netns exec "$NS_A" "$@"; }
on_b() { ip netns exec "$NS_B" "$@"; }

# wait_port NODE PORT: until something listens on PORT on NODE (a or b).
wait_port() {
	_ns=$NS_A
	[ "$1" = b ] && _ns=$NS_B
	_i=0
	while ! ip netns exec "$_ns" ss -ltnH "sport = :$2" | grep -q .; do
		_i=$((_i + 1))
		[ $_i -lt 200 ] || return 1
		sleep 0.05
	done
}
