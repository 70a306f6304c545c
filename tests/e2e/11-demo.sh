# `make demo` end to end (examples/demo.sh through
# examples/torchrun.sh): the report shows the job's result, protected
# connections, no plaintext on the wire (and the plaintext control run
# showing it), and the overhead; without root it explains what it needs.
. tests/e2e/lib.sh
need_root
BUILD=$BUILD examples/demo.sh >"$T/demo.out" 2>&1 || {
	cat "$T/demo.out"
	fail "the demo failed"
}
cat "$T/demo.out"
grep -q "identical parameters on every rank: true" "$T/demo.out" ||
    fail "the report lacks the job's result"
grep -q "label absent; without: the label in clear" "$T/demo.out" ||
    fail "the report lacks the wire check"
grep -q "^overhead: " "$T/demo.out" || fail "the report lacks the overhead"
grep -q "^outside: .*not a peer, no tlshim): checksum matches" "$T/demo.out" ||
    fail "the job could not download from a service outside it"
grep -q "^ *198.18.0.[12] -> 198.18.0.[12]: [0-9]* connections" "$T/demo.out" &&
    grep -q "^ *in clear to a peer: none" "$T/demo.out" ||
    fail "the demo does not end with the audit summary"
ip netns list | grep -q "tlshim-.-demo" && fail "the demo left namespaces behind"
ls -d /tmp/tlshim-demo.* 2>/dev/null && fail "the demo left files behind"
# Without root: a clear explanation, nothing half-done.
if setpriv --reuid=65534 --regid=65534 --clear-groups \
    sh examples/demo.sh >"$T/nonroot.out" 2>&1; then
	fail "the demo claimed success without root"
fi
grep -q "needs root" "$T/nonroot.out" || fail "no explanation without root"
exit 0
