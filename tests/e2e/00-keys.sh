# tlshim-keys init and issue. Good credentials have the promised
# shape (CA, leaf not a CA, both TLS usages, URI identity, back-dated
# NotBefore, 0600 keys); bad input gets a clear message, the documented
# exit code, and writes nothing.
. tests/e2e/lib.sh
cd "$T"
expect() {
	code=$1 what=$2
	shift 2
	rc=0
	"$@" >out 2>err || rc=$?
	[ "$rc" = "$code" ] || fail "$what: exit $rc, expected $code ($(cat err))"
	[ "$code" = 0 ] || [ -s err ] || fail "$what: no message"
}
expect 0 "init" "$KEYS" init --dir ca --name lab
expect 0 "issue" "$KEYS" issue --ca ca --node n1 --ip 198.18.0.1,2001:2::1 \
    --dns n1.lab --job j7 --days 3 --out n1
[ "$(stat -c %a ca/ca.key)" = 600 ] || fail "ca.key not 0600"
[ "$(stat -c %a n1/node.key)" = 600 ] || fail "node.key not 0600"
openssl verify -CAfile ca/ca.crt n1/node.crt >/dev/null || fail "leaf does not verify"
text=$(openssl x509 -in n1/node.crt -noout -text)
echo "$text" | grep -q "URI:spiffe://lab/job/j7/node/n1" || fail "no URI identity"
echo "$text" | grep -q "IP Address:198.18.0.1" || fail "no IP SAN"
echo "$text" | grep -q "TLS Web Server Authentication, TLS Web Client Authentication" ||
    fail "not usable as client and server"
echo "$text" | grep -q "CA:TRUE" && fail "the leaf is a CA"
openssl x509 -in ca/ca.crt -noout -text | grep -q "CA:TRUE" || fail "the CA is not a CA"
nb=$(date -d "$(openssl x509 -in n1/node.crt -noout -startdate | cut -d= -f2)" +%s)
[ $(( $(date +%s) - nb )) -ge 300 ] || fail "NotBefore is not back-dated"

expect 1 "no arguments" "$KEYS"
expect 1 "unknown command" "$KEYS" frobnicate
expect 1 "missing --out" "$KEYS" issue --ca ca --node n2
expect 1 "bad node name" "$KEYS" issue --ca ca --node "a/b" --out x
expect 1 "bad days" "$KEYS" issue --ca ca --node n2 --days zero --out x
expect 1 "bad IP" "$KEYS" issue --ca ca --node n2 --ip 300.1.1.1 --out x
[ -e x ] && fail "a failed issue left files"
expect 2 "missing CA" "$KEYS" issue --ca nowhere --node n2 --out x
grep -q "cannot open nowhere/ca.crt" err || fail "missing CA: unclear message"
cp -r ca loose
chmod 644 loose/ca.key
expect 2 "readable CA key" "$KEYS" issue --ca loose --node n2 --out x
grep -q "readable by others" err || fail "loose key: unclear message"
cp -r ca broken
echo garbage >broken/ca.crt
expect 2 "corrupt CA" "$KEYS" issue --ca broken --node n2 --out x
expect 3 "existing CA" "$KEYS" init --dir ca --name lab
expect 3 "existing node files" "$KEYS" issue --ca ca --node n1 --out n1
cmp -s ca/ca.key loose/ca.key || fail "a refused init changed the CA key"
expect 0 "forced reissue" "$KEYS" issue --ca ca --node n1 --out n1 --force
"$KEYS" --help | grep -q "exit codes" || fail "--help lacks exit codes"

# show: what a credential directory holds, and whether it is usable.
expect 0 "show a node" "$KEYS" show n1
grep -q "identity     spiffe://lab/node/n1" out || fail "show: no identity"
grep -q "verifies     yes" out || fail "show: no verification"
grep -q "key matches  yes" out || fail "show: no key check"
grep -q "days left    7" out || fail "show: days left"
expect 0 "show the CA" "$KEYS" show ca
grep -q "is a CA      yes" out || fail "show: the CA"
"$KEYS" issue --ca ca --node other --out other >/dev/null
cp -r n1 mixed
cp other/node.key mixed/node.key
expect 2 "show a mismatched key" "$KEYS" show mixed
grep -q "node.key does not match" err || fail "show: mismatch unclear"
cp -r n1 foreign
"$KEYS" init --dir ca2 --name lab >/dev/null
cp ca2/ca.crt foreign/ca.crt
expect 2 "show against another CA" "$KEYS" show foreign
grep -q "does not verify" err || fail "show: foreign CA unclear"

# pin: sha256 of the CA's SubjectPublicKeyInfo, as openssl computes it.
expect 0 "pin" "$KEYS" pin --ca ca
want="sha256:$(openssl x509 -in ca/ca.crt -pubkey -noout |
    openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)"
[ "$(cat out)" = "$want" ] || fail "pin $(cat out) differs from $want"
expect 2 "pin of a missing CA" "$KEYS" pin --ca nowhere
exit 0
