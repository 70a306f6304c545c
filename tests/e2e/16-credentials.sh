# Credential files replaced while a job runs are used by
# the next connection without a restart, while an open connection goes
# on; removed or corrupted files make new connections fail closed with a
# clear log line, again without disturbing the open one.
. tests/e2e/lib.sh
make_nodes
make_creds
ADV=tests/progs/adversary.py
bg on_b $(shim b) python3 $ADV echo-server 7900
wait_port_or_fail b 7900

# A long-lived connection from node a, echoing before and after it all.
bg on_a $(shim a) python3 $ADV hold $IP_B 7900 "$T/go"
first=$BG_LAST
i=0
until grep -q "protected as client" "$T/a.log" 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 100 ] || fail "the long-lived client did not connect"
	sleep 0.05
done
cp "$T/b/node.crt" "$T/b-old.crt"

echo_once() {
	echo "$1" | on_a $(shim a) timeout 10 socat - TCP4:$IP_B:7900 2>/dev/null
}

# Renewal: node b gets a fresh key and certificate in place.
"$KEYS" issue --ca "$T/ca" --node b --ip "$IP_B,$IP6_B" --out "$T/b" --force >/dev/null
cmp -s "$T/b/node.crt" "$T/b-old.crt" && fail "the certificate did not change"
[ "$(echo_once renewed)" = renewed ] || fail "a new connection after renewal failed"
grep -q "credentials in $T/b changed" "$T/b.log" || fail "the reload was not logged"

# Removal: new connections fail closed, with the reason.
mv "$T/b/node.key" "$T/b-node.key"
[ -z "$(echo_once missing)" ] || fail "a connection succeeded without credentials"
grep -q "$T/b/node.key is missing" "$T/b.log" || fail "removal not logged"

# Corruption: the same.
mv "$T/b-node.key" "$T/b/node.key"
printf 'garbage' >"$T/b/node.crt"
[ -z "$(echo_once corrupt)" ] || fail "a connection succeeded with corrupt credentials"
grep -q "node.crt" "$T/b.log" || fail "corruption not logged"

# A key that belongs to another certificate.
"$KEYS" issue --ca "$T/ca" --node b --ip "$IP_B,$IP6_B" --out "$T/b" --force >/dev/null
cp "$T/a/node.key" "$T/b/node.key"
[ -z "$(echo_once mismatched)" ] || fail "a connection succeeded with a wrong key"
grep -q "node.key does not match" "$T/b.log" || fail "wrong key not logged"

# Repaired: new connections work again.
"$KEYS" issue --ca "$T/ca" --node b --ip "$IP_B,$IP6_B" --out "$T/b" --force >/dev/null
[ "$(echo_once repaired)" = repaired ] || fail "no recovery after repair"

# The first connection lived through all of it.
touch "$T/go"
wait_pid "$first" || fail "the open connection was disturbed"
n=$(grep -c "protected as server, peer spiffe://e2e/node/a" "$T/b.log")
echo "credentials: renewal picked up, removal and corruption failed closed," \
    "$n connections protected, the open one unaffected"
exit 0
