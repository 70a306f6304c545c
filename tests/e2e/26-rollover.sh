# A CA rollover with revocations on both CAs honoured throughout: the new
# CA joins every node's bundle (tlshim-keys trust, then crl), nodes renew
# with the new CA one at a time while old- and new-CA nodes keep talking,
# a node revoked by either CA is refused at every step, the old CA leaves
# the bundle, and a node still holding an old certificate is then
# refused. The shim loads one CRL per CA, and a CRL of a CA that is no
# longer trusted is set aside instead of failing every connection.
. tests/e2e/lib.sh
make_nodes
make_creds
cd "$T"
OLD=$T/ca NEW=$T/ca2
# Each CA revokes one node that sits at b's address.
"$KEYS" issue --ca "$OLD" --node x --ip "$IP_B" --out x >/dev/null
"$KEYS" revoke --ca "$OLD" --node x >/dev/null || fail "revoke at the old CA"
"$KEYS" init --dir "$NEW" --name e2e >/dev/null
"$KEYS" issue --ca "$NEW" --node y --ip "$IP_B" --out y >/dev/null
"$KEYS" revoke --ca "$NEW" --node y >/dev/null || fail "revoke at the new CA"
# A node that will never renew.
"$KEYS" issue --ca "$OLD" --node z --ip "$IP_B" --out z >/dev/null
make_marked_file data 100000

"$KEYS" trust --ca "$OLD" --add "$NEW" >/dev/null 2>&1 || fail "trust old -> new"
"$KEYS" trust --ca "$NEW" --add "$OLD" >/dev/null 2>&1 || fail "trust new -> old"
"$KEYS" init --dir foreign --name elsewhere >/dev/null
"$KEYS" trust --ca "$NEW" --add foreign 2>err >/dev/null &&
    fail "trusted a CA of another cluster"
grep -q "is a CA of cluster elsewhere, not e2e" err || fail "$(cat err)"
bg on_a "$KEYS" serve --ca "$OLD" --listen $IP_A:7610 2>old.log
OLD_SERVE=$BG_LAST
bg on_a "$KEYS" serve --ca "$NEW" --listen $IP_A:7611 2>new.log
NEW_SERVE=$BG_LAST
wait_port_or_fail a 7610
wait_port_or_fail a 7611

# transfer FROM TO PORT: FROM's node sends to TO's server on b's or a's
# address; 0 when the bytes arrived.
transfer() {
	from=$1 to=$2 port=$3
	rm -f got
	if [ "$from" = a ]; then snode=b sip=$IP_B; else snode=a sip=$IP_A; fi
	cnode=$([ $snode = a ] && echo b || echo a)
	bg on_$snode $(shim $to) socat -u TCP4-LISTEN:$port,reuseaddr OPEN:got,creat
	wait_port_or_fail $snode $port
	on_$cnode $(shim $from) timeout 10 socat -u OPEN:data TCP4:$sip:$port \
	    2>/dev/null || true
	wait_bg 10 || true
	cmp -s data got
}

# 1. Every node refreshes from the old server: both CAs, both CRLs.
for n in a b; do
	on_$n "$KEYS" crl --server $IP_A:7610 --dir $n >out 2>err ||
	    fail "refresh of $n: $(cat err)"
	grep -q "wrote $n/ca.crt (2 CAs) and crl.pem" out || fail "refresh: $(cat out)"
done
[ "$(grep -c 'BEGIN X509 CRL' a/crl.pem)" = 2 ] || fail "a did not get both CRLs"
on_b "$KEYS" crl --server $IP_A:7610 --dir z >/dev/null 2>&1 || fail "refresh of z"
transfer a b 7620 || fail "old-CA nodes stopped talking after the refresh"

# 2. b renews with the new CA; old-CA a and new-CA b talk both ways.
on_b "$KEYS" renew --server $IP_A:7611 --dir b >out 2>err || fail "renew b: $(cat err)"
openssl verify -CAfile "$NEW/ca.crt" b/node.crt >/dev/null 2>&1 ||
    fail "b's renewed certificate is not from the new CA"
transfer a b 7621 || fail "old-CA a could not send to new-CA b"
transfer b a 7622 || fail "new-CA b could not send to old-CA a"

# 3. Revoked by either CA: refused by a, during the rollover.
for r in x y; do
	cp a/ca.crt $r/ca.crt
	transfer a $r 7623 && fail "a accepted $r, revoked by its CA"
done
grep -q "revoked (crl.pem)" a.log || fail "the revocations were not logged"

# 4. a renews; the old CA leaves; nodes refresh from the new server.
on_a "$KEYS" renew --server $IP_A:7611 --dir a >/dev/null 2>&1 || fail "renew a"
"$KEYS" trust --ca "$NEW" --remove "$OLD" >/dev/null 2>&1 || fail "trust --remove"
kill $NEW_SERVE
bg on_a "$KEYS" serve --ca "$NEW" --listen $IP_A:7612 2>new2.log
wait_port_or_fail a 7612
for n in a b; do
	on_$n "$KEYS" crl --server $IP_A:7612 --dir $n >out 2>err ||
	    fail "final refresh of $n: $(cat err)"
	grep -q "wrote $n/ca.crt (1 CA) and crl.pem" out || fail "final: $(cat out)"
done
# z never renewed: the new server no longer knows its CA; z keeps its files.
cp z/ca.crt z-before.crt
on_b "$KEYS" crl --server $IP_A:7612 --dir z 2>err && fail "z, of the removed CA, was served"
grep -q "does the server still trust this node's certificate" err ||
    fail "z: $(cat err)"
cmp -s z/ca.crt z-before.crt || fail "a refused refresh changed z's files"
transfer a b 7624 || fail "new-CA nodes could not talk after the rollover"
cp a/ca.crt z/ca.crt
transfer a z 7625 && fail "a accepted z's certificate of the removed CA"
cp a/ca.crt y/ca.crt
transfer a y 7626 && fail "a accepted y, revoked by the new CA, after the rollover"

# 5. The shim alone: the old CA's CRL beside the new CA only is set aside.
cat "$OLD/crl.pem" >>a/crl.pem
transfer a b 7627 || fail "an old CA's CRL beside the new CA made a refuse its peers"
echo "rollover: both CAs trusted, nodes renewed one by one while talking," \
    "revocations of both CAs refused, old CA removed, its last node refused"
exit 0
