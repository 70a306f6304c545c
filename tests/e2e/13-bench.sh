# The overhead tool runs end to end on two namespaces and writes
# its table, JSON, CSV and SVG; every path it measured produced a result,
# and it cleans up. (Speed is reported by `make bench`, not asserted here.)
. tests/e2e/lib.sh
need_root
"$BUILD/tlshim-bench" --seconds 0.2 --sizes 64,1M --ranks 2 --ring-bytes 1M \
    --threads 1,4 --connectors 1,2 \
    --json "$T/b.json" --csv "$T/b.csv" --svg "$T/b.svg" >"$T/table" \
    2>"$T/progress" || { cat "$T/progress"; fail "tlshim-bench failed"; }
cat "$T/table"
grep -q "^1 MiB " "$T/table" || fail "no throughput row"
grep -q "tlshim latency overhead" "$T/table" || fail "no latency section"
grep -q "^round trips, 4 threads " "$T/table" || fail "no small-message section"
python3 - "$T/b.json" <<'PY' || fail "JSON incomplete"
import json, sys
d = json.load(open(sys.argv[1]))
for row in d["throughput_gbps"]:
    assert row["plaintext"] > 0 and row["tlshim"] > 0, row
assert d["latency_us"]["tlshim"]["median"] > 0
assert d["connect_ms"]["tlshim"]["median"] > 0
assert d["ring_allreduce"]["tlshim_MBps"] > 0
small = d["small_messages"]
assert small["size"] == 64 and small["pipelined"]["depth"] == 16
for row in [small["pipelined"]] + small["round_trips"] + small["connections"]:
    assert row["plaintext"] > 0 and row["tlshim"] > 0, row
assert [r["threads"] for r in small["round_trips"]] == [1, 4]
assert [r["connectors"] for r in small["connections"]] == [1, 2]
PY
grep -q "^throughput_gbps,1048576,tlshim," "$T/b.csv" || fail "CSV incomplete"
grep -q "^connections_per_s_connectors_2,,tlshim," "$T/b.csv" || fail "CSV lacks small messages"
python3 -c "import sys, xml.dom.minidom as m; m.parse(sys.argv[1])" "$T/b.svg" ||
    fail "SVG is not well-formed"
ip netns list | grep -q tlshim-bench && fail "namespaces left behind"
exit 0
