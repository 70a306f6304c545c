# Secrets do not linger. A protected server loads its private
# key, serves a connection, has its credentials renewed and serves the
# next connection with the new key. Its memory, read live: the new key is
# there (in wolfSSL's context, so the scan can see keys), the old key and
# both keys' PEM text are not anywhere (wiped when replaced and after
# loading). The debug log names no key material, and key files are 0600.
. tests/e2e/lib.sh
make_nodes
make_creds
ADV=tests/progs/adversary.py

# scalar DIR: the private scalar in DIR/node.key (SEC1: 30 77 02 01 01 04 20).
scalar() {
	python3 -c '
import base64, sys
der = base64.b64decode("".join(l for l in open(sys.argv[1]) if "-----" not in l))
assert der[:7] == bytes.fromhex("30770201010420"), "not a SEC1 P-256 key"
print(der[7:39].hex())' "$1/node.key"
}
# pem_text DIR: the first line of base64 in DIR/node.key, as hex.
pem_text() {
	sed -n 2p "$1/node.key" | tr -d '\n' | od -An -tx1 | tr -d ' \n'
}
echo_once() {
	echo "$1" | on_a $(shim a) timeout 10 socat - TCP4:$IP_B:8300 2>/dev/null
}

bg on_b $(shim b) TLSHIM_LOG=debug python3 $ADV echo-server 8300
server=$BG_LAST
wait_port_or_fail b 8300
old_key=$(scalar "$T/b") old_pem=$(pem_text "$T/b")
[ "$(echo_once first)" = first ] || fail "first connection failed"
"$KEYS" issue --ca "$T/ca" --node b --ip "$IP_B,$IP6_B" --out "$T/b" --force >/dev/null
[ "$(stat -c %a "$T/b/node.key")" = 600 ] || fail "renewed node.key is not 0600"
[ "$(echo_once second)" = second ] || fail "connection after renewal failed"
grep -q "credentials in $T/b changed" "$T/b.log" || fail "the server did not reload"
new_key=$(scalar "$T/b") new_pem=$(pem_text "$T/b")
sleep 0.3
python3 tests/progs/memscan.py "$server" old_key=$old_key old_pem=$old_pem \
    new_key=$new_key new_pem=$new_pem >"$T/scan" || fail "memory scan failed"
count() { awk -v n="$1" '$1 == n { print $2 }' "$T/scan"; }
[ "$(count new_key)" -ge 1 ] || fail "the scan cannot see the live key: $(cat "$T/scan")"
[ "$(count old_key)" = 0 ] || fail "the replaced private key is still in memory ($(count old_key) copies)"
[ "$(count old_pem)" = 0 ] || fail "the replaced key's PEM text is still in memory"
[ "$(count new_pem)" = 0 ] || fail "the key's PEM text was not wiped after loading"
for k in "$old_key" "$new_key"; do
	grep -q -i "$k" "$T/b.log" && fail "key material in the debug log"
done
grep -q -F "$(sed -n 2p "$T/b/node.key")" "$T/b.log" && fail "PEM key text in the log"
[ "$(grep -c . "$T/b.log")" -gt 3 ] || fail "the debug log is empty"
echo "secrets: live key seen $(count new_key)x in wolfSSL; replaced key 0x," \
    "PEM text 0x; debug log clean ($(grep -c . "$T/b.log") lines)"
exit 0
