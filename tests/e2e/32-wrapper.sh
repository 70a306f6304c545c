# The tlshim command: `tlshim --dir DIR COMMAND` protects the command's
# connections (a socat transfer between the nodes, no marker on the wire,
# both ends logged) with no LD_PRELOAD line written by hand; `tlshim
# --check` says whether credentials are usable, and both refuse, with
# the reason and exit code 2 and without running anything, credentials
# that are missing, whose key belongs to another certificate, or whose
# CRL lists the node.
. tests/e2e/lib.sh
make_nodes
make_creds
W=$BUILD/tlshim
make_marked_file "$T/data" 2000000

# Checks.
"$W" --check --dir "$T/a" | grep -q "credentials in $T/a are usable" ||
    fail "--check refused good credentials"
expect2() {
	rc=0
	"$W" "$@" >"$T/out" 2>"$T/err" || rc=$?
	[ $rc = 2 ] || fail "$*: exit $rc, not 2"
	grep -q "nothing was run" "$T/err" || fail "$*: unclear: $(cat "$T/err")"
	[ ! -e "$T/ran" ] || fail "$*: the command ran"
}
expect2 --check --dir "$T/nowhere"
grep -q "cannot open $T/nowhere/ca.crt" "$T/err" || fail "missing: $(cat "$T/err")"
cp -r "$T/a" "$T/mixed"
cp "$T/b/node.key" "$T/mixed/node.key"
expect2 --dir "$T/mixed" touch "$T/ran"
grep -q "node.key does not match" "$T/err" || fail "mismatch: $(cat "$T/err")"
"$KEYS" revoke --ca "$T/ca" --node b >/dev/null || fail "revoke"
cp -r "$T/b" "$T/revoked"
cp "$T/ca/crl.pem" "$T/revoked/crl.pem"
expect2 --dir "$T/revoked" touch "$T/ran"
grep -q "this node's certificate is revoked" "$T/err" || fail "revoked: $(cat "$T/err")"
"$W" 2>"$T/err" && fail "no command was accepted"
grep -q "usage: tlshim" "$T/err" || fail "no usage"

# A transfer through the wrapper (b's certificate, revoked above, is
# issued again).
"$KEYS" issue --ca "$T/ca" --node b2 --ip "$IP_B" --out "$T/b2" >/dev/null
capture_start wrapper
bg on_b env TLSHIM_LOG_FILE=$T/b2.log "$W" --dir "$T/b2" --log info \
    --peers $IP_A,$IP_B socat -u TCP4-LISTEN:7960,reuseaddr OPEN:"$T/got",creat
wait_port_or_fail b 7960
on_a env TLSHIM_LOG_FILE=$T/a.log "$W" --dir "$T/a" --log info \
    --peers $IP_A,$IP_B socat -u OPEN:"$T/data" TCP4:$IP_B:7960 ||
    fail "the wrapped transfer failed"
wait_bg 20 || fail "the wrapped receiver failed"
capture_stop
cmp -s "$T/data" "$T/got" || fail "the bytes differ"
capture_has wrapper "$MARKER" && fail "plaintext on the wire"
grep -q "protected as client, peer spiffe://e2e/node/b2" "$T/a.log" ||
    fail "the client was not protected"
grep -q "protected as server, peer spiffe://e2e/node/a" "$T/b2.log" ||
    fail "the server was not protected"
echo "wrapper: checks refuse missing, mismatched and revoked credentials" \
    "(exit 2, nothing run); a wrapped transfer is protected"
exit 0
