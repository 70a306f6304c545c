#!/bin/sh
# Instructions per operation on the shim's data path, counted by callgrind
# (a count repeats on a busy machine where a time does not), beside a
# committed baseline.
#
#   instructions.sh BENCH_DATAPATH BASELINE            print, and fail when
#                                                      a count rose by more
#                                                      than the margin
#   instructions.sh BENCH_DATAPATH BASELINE --update   write the baseline
#
# The baseline holds "name count" lines and a "margin PERCENT" line. A
# change that is meant to cost more updates it deliberately (make
# instructions-baseline) and says why in its commit.
set -eu

bin=$1
baseline=$2
mode=${3:-check}
SMALL_ROUNDS=2000
BULK_ROUNDS=40

command -v valgrind >/dev/null || {
	echo "instructions: valgrind is needed (apt-get install valgrind)" >&2
	exit 1
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# count KIND ROUNDS: instructions per round inside measure_*.
count() {
	valgrind --tool=callgrind --callgrind-out-file="$tmp/$1.out" \
	    --collect-atstart=no --toggle-collect='measure_*' \
	    "$bin" "$1" "$2" >"$tmp/$1.log" 2>&1 || {
		cat "$tmp/$1.log" >&2
		echo "instructions: bench-datapath $1 failed" >&2
		exit 1
	}
	total=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$tmp/$1.out")
	[ -n "$total" ] || { echo "instructions: no count for $1" >&2; exit 1; }
	echo $((total / $2))
}

small=$(count small $SMALL_ROUNDS)
bulk=$(count bulk $BULK_ROUNDS)
plain=$(count plain $SMALL_ROUNDS)

if [ "$mode" = --update ]; then
	margin=$(sed -n 's/^margin \([0-9]*\)$/\1/p' "$baseline" 2>/dev/null || true)
	{
		echo "# Instructions per operation on the data path (callgrind)."
		echo "# Written by: make instructions-baseline"
		echo "margin ${margin:-5}"
		echo "small_64B_send_receive $small"
		echo "bulk_256KiB_record $bulk"
	} >"$baseline"
	echo "instructions: baseline written to $baseline"
fi

margin=$(sed -n 's/^margin \([0-9]*\)$/\1/p' "$baseline")
status=0
printf '\ninstructions per operation (callgrind)   %12s %12s %8s\n' now baseline change
row() {
	was=$(sed -n "s/^$1 \([0-9]*\)$/\1/p" "$baseline")
	if [ -z "$was" ]; then
		printf '%-40s %12s %12s\n' "$2" "$3" "none"
		status=1
		return
	fi
	change=$(awk -v a="$3" -v b="$was" 'BEGIN { printf "%+.1f%%", (a - b) * 100 / b }')
	printf '%-40s %12s %12s %8s\n' "$2" "$3" "$was" "$change"
	if [ "$3" -gt $((was + was * margin / 100)) ]; then
		echo "instructions: $2 costs more than ${margin}% over the baseline" \
		    "($3 against $was); if that is meant, run make" \
		    "instructions-baseline and say why in the commit" >&2
		status=1
	fi
}
row small_64B_send_receive "64 B send + receive" "$small"
row bulk_256KiB_record "256 KiB record, seal + write + read + open" "$bulk"
printf '%-40s %12s\n' "64 B send + receive without the shim" "$plain"
exit $status
