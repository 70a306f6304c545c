# The library exports only the hooked calls, and with TLSHIM=0
# (or unset) it is inert: real programs behave as without it (the bytes
# cross the wire as they are, no thread is started, no log is written).
. tests/e2e/lib.sh
want=$(sed -n '/global:/,/local:/p' shim/tlshim.map | tr -s ' \t;' '\n' |
    grep -v -e '^global:' -e '^local:' -e '^$' | sort)
have=$(nm -D --defined-only "$LIB_FILE" | awk '{print $3}' | grep -v '^$' | sort)
[ "$want" = "$have" ] || fail "exported symbols differ from shim/tlshim.map:
$(printf '%s\n' "$want" >"$T/want"; printf '%s\n' "$have" >"$T/have"; diff "$T/want" "$T/have")"
echo "exports: $(echo "$have" | wc -l) symbols, exactly the hooked calls"

make_nodes
make_creds
make_marked_file "$T/data" 1000000
off() {
	echo env LD_PRELOAD=$LIB TLSHIM=0 TLSHIM_DIR=$T/$1 TLSHIM_LOG=debug \
	    TLSHIM_LOG_FILE=$T/off-$1.log
}
capture_start off
bg on_b $(off b) socat -u TCP4-LISTEN:7800,reuseaddr OPEN:"$T/out",creat
wait_port_or_fail b 7800
on_a $(off a) socat -u OPEN:"$T/data" TCP4:$IP_B:7800 || fail "transfer failed"
wait_bg 20 || fail "server failed"
capture_stop
cmp -s "$T/data" "$T/out" || fail "the transfer was altered"
capture_has off "$MARKER" || fail "TLSHIM=0 still changed the bytes on the wire"
[ -e "$T/off-a.log" ] || [ -e "$T/off-b.log" ] && fail "TLSHIM=0 wrote a log"

for mode in lt oneshot threads; do
	bg on_b $(off b) "$BUILD/tests/stress" server 7801 $mode 32
	wait_port_or_fail b 7801
	on_a $(off a) "$BUILD/tests/stress" client $IP_B 7801 $mode 32 ||
	    fail "stress $mode failed with TLSHIM=0"
	wait_bg 60 || fail "stress $mode server failed with TLSHIM=0"
done
bg on_b $(off b) timeout 60 /usr/bin/python3 tests/progs/pyapps.py \
    asyncio-server 7802
wait_port_or_fail b 7802
on_a $(off a) timeout 60 /usr/bin/python3 tests/progs/pyapps.py \
    asyncio-client $IP_B 7802 || fail "asyncio client failed"
wait_bg 60 || fail "asyncio server failed"

# No thread: a sleeping preloaded process has just its own.
$(off a) sleep 5 &
pid=$!
sleep 0.5
threads=$(awk '/^Threads:/ {print $2}' /proc/$pid/status)
kill $pid
[ "$threads" = 1 ] || fail "TLSHIM=0 process has $threads threads"
exit 0
