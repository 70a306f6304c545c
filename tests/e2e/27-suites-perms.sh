# Only encrypting TLS suites are negotiated: a client offering only the
# integrity-only TLS13-SHA256-SHA256 or a CCM_8 suite is refused, one
# offering AES-GCM gets through. Credentials the process's user cannot
# read are reported as "permission denied", with the uid, not as missing.
. tests/e2e/lib.sh
make_nodes
make_creds
PROBE=$BUILD/tests/suite_probe

# probe SUITE: a fresh protected server on b, and the probe from a.
port=7400
probe() {
	port=$((port + 1))
	bg on_b $(shim b) socat -u TCP4-LISTEN:$port,reuseaddr /dev/null
	wait_port_or_fail b $port
	on_a "$PROBE" "$T/a" $IP_B $port "$1"
}
offered=0
for suite in TLS13-SHA256-SHA256 TLS13-AES128-CCM-8-SHA256; do
	rc=0
	out=$(probe $suite) || rc=$?
	case $rc in
	1) offered=$((offered + 1)) ;;
	3) echo "($suite is not built into this wolfSSL)" ;;
	*) fail "$suite: $out (exit $rc)" ;;
	esac
done
[ $offered -gt 0 ] || skip "this wolfSSL has neither integrity-only nor CCM_8 suites"
out=$(probe TLS13-AES128-GCM-SHA256) ||
    fail "an AES-GCM client was refused: $out"
[ "$out" = "ok TLS13-AES128-GCM-SHA256" ] || fail "probe: $out"
echo "suites: $offered non-AEAD suite(s) refused, AES-GCM accepted"

# A process running as nobody, with root's credentials directory.
cp "$LIB_FILE" "$T/lib.so"
chmod 755 "$T" "$T/lib.so"
chmod 700 "$T/a"
bg on_b socat -u TCP4-LISTEN:7399,reuseaddr /dev/null
wait_port_or_fail b 7399
out=$(on_a runuser -u nobody -- env LD_PRELOAD=$T/lib.so TLSHIM=1 \
    TLSHIM_DIR=$T/a TLSHIM_HANDSHAKE_TIMEOUT=5 \
    socat -u /dev/null TCP4:$IP_B:7399 2>&1 || true)
echo "$out" | grep -q "cannot read $T/a/ca.crt: permission denied for uid $(id -u nobody)" ||
    fail "unreadable credentials: $out"
echo "permissions: an unreadable directory is reported as permission denied"
exit 0
