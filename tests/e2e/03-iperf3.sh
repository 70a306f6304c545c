# iperf3 (select-based, non-blocking) client and server under the
# shim complete and report throughput; the capture holds no control JSON.
. tests/e2e/lib.sh
make_nodes
make_creds
json='"client_version"'

capture_start plain
bg on_b iperf3 -s -1 -p 5201
wait_port_or_fail b 5201
on_a iperf3 -c $IP_B -p 5201 -t 1 >/dev/null || fail "plaintext iperf3 failed"
wait_bg 20 || fail "plaintext iperf3 server failed"
capture_stop
capture_has plain "$json" || fail "control: iperf3 JSON not seen in capture"

capture_start enc
bg on_b $(shim b) iperf3 -s -1 -p 5202
wait_port_or_fail b 5202
on_a $(shim a) iperf3 -c $IP_B -p 5202 -t 2 -f g >"$T/iperf.out" ||
    fail "iperf3 under the shim failed"
wait_bg 20 || fail "iperf3 server under the shim failed"
capture_stop
grep -E "sender|receiver" "$T/iperf.out"
grep -q "receiver" "$T/iperf.out" || fail "iperf3 reported no result"
if capture_has enc "$json"; then
	fail "iperf3 control JSON in clear on the wire"
fi
[ "$(grep -c "protected as server" "$T/b.log")" -ge 2 ] ||
    fail "iperf3's control and data connections were not both protected"
exit 0
