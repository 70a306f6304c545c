# The manual pages render without a warning (man -l works on them in the
# tree) and cannot drift from the programs: every option that --help of
# tlshim, tlshim-bench, tlshim-keys and each of its commands prints is in
# the matching page, every exit code tlshim-keys lists is described, and
# every TLSHIM_* variable the library reads is in tlshim(7). No root.
. tests/e2e/lib.sh
M=tools/man
render() { groff -man -Tascii -P-cbou -ww "$M/$1" 2>"$T/warn"; }
for page in tlshim.1 tlshim-keys.1 tlshim-bench.1 tlshim.7; do
	render $page >"$T/$page.txt"
	[ ! -s "$T/warn" ] || fail "$page: $(cat "$T/warn")"
	grep -q "^NAME" "$T/$page.txt" || fail "$page does not render"
	MANWIDTH=80 man -l "$M/$page" 2>/dev/null | grep -q "SEE ALSO" ||
	    fail "man -l cannot show $page"
done
options() { grep -o -- '--[a-z][a-z-]*' | sort -u; }
covered() {
	page=$1
	shift
	for o in $("$@" --help 2>&1 | options); do
		grep -q -- "$o" "$T/$page.txt" || fail "$page lacks $o (from $* --help)"
	done
}
covered tlshim.1 "$BUILD/tlshim"
covered tlshim-bench.1 "$BUILD/tlshim-bench"
covered tlshim-keys.1 "$BUILD/tlshim-keys"
n=0
for c in $("$BUILD/tlshim-keys" --help | sed -n 's/^  \([a-z]*\)  .*/\1/p'); do
	covered tlshim-keys.1 "$BUILD/tlshim-keys" "$c"
	grep -q "^ *$c " "$T/tlshim-keys.1.txt" || fail "tlshim-keys.1 lacks the $c command"
	n=$((n + 1))
done
[ $n -ge 10 ] || fail "only $n commands found in tlshim-keys --help"
"$BUILD/tlshim-keys" --help | sed -n 's/^  \([0-9]\)  \(.*\)/\1|\2/p' |
while IFS='|' read -r code text; do
	words=$(echo "$text" | cut -d' ' -f1-3)
	tr -s ' \n' ' ' <"$T/tlshim-keys.1.txt" | grep -q "$code $words" ||
	    fail "tlshim-keys.1 does not describe exit code $code ($text)"
done
for v in $(grep -ho 'getenv\(_fn\)\?("TLSHIM[A-Z_]*")' shim/*.c |
    sed 's/.*"\(TLSHIM[A-Z_]*\)".*/\1/' | sort -u); do
	grep -q "$v" "$T/tlshim.7.txt" || fail "tlshim.7 lacks $v"
done
echo "manpages: 4 pages render cleanly; every option, $n commands, the exit" \
    "codes and every TLSHIM_* variable are documented"
exit 0
