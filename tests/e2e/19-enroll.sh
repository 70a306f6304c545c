# Nodes enroll over the network. 'serve' runs on node a; nodes
# join from node b with a token after checking the CA pin; the joined
# credentials carry a real protected transfer; wrong, expired and reused
# tokens and a wrong pin are refused and write nothing; no private key or
# token reaches the server's disk or logs; garbage and a stalled client do
# not stop the server; renewal swaps the certificate under a live
# connection; a revoked node's new connections are refused.
. tests/e2e/lib.sh
make_nodes
cd "$T"
"$KEYS" init --dir ca --name e2e >/dev/null
PIN=$("$KEYS" pin --ca ca)
SERVER=$IP_A:7500
# A token that expired two days ago is deleted when serve starts (tokens
# that expired within a day stay, so that holders hear "expired").
stale=$("$KEYS" token --ca ca 2>/dev/null)
sed -i "s/^expires=.*/expires=$(( $(date +%s) - 2 * 86400 ))/" ca/tokens/${stale%%.*}
bg on_a "$KEYS" serve --ca ca --listen $SERVER --timeout 3 --validity 2d \
    2>serve.log
SERVE_PID=$BG_LAST
JOIN="$KEYS join --server $SERVER --pin $PIN --retries 0"
wait_port_or_fail a 7500
[ ! -e ca/tokens/${stale%%.*} ] || fail "a token expired for two days was kept"
grep -q "deleted 1 token expired for over a day" serve.log || fail "pruning not logged"

# expect CODE WHAT CMD...: run on node b, check exit code and a message.
expect() {
	code=$1 what=$2
	shift 2
	rc=0
	on_b "$@" >out 2>err || rc=$?
	[ "$rc" = "$code" ] || fail "$what: exit $rc, expected $code ($(cat err))"
	[ "$code" = 0 ] || [ -s err ] || fail "$what: no message"
}

# Node a (the head node) and node b enroll with single-use tokens.
ta=$("$KEYS" token --ca ca --node a 2>/dev/null)
tb=$("$KEYS" token --ca ca --ttl 10m 2>/dev/null)
on_a "$KEYS" join --server $SERVER --pin "$PIN" --token "$ta" --node a \
    --ip $IP_A --out a >/dev/null || fail "node a could not join"
expect 0 "join b" $JOIN --token "$tb" --node b --ip $IP_B --out b
grep -q "joined as spiffe://e2e/node/b" out || fail "join b: no identity"
[ "$(stat -c %a b/node.key)" = 600 ] || fail "node.key is not 0600"
[ ! -e b/.pending.key ] || fail "the pending key was left behind"
"$KEYS" show b >/dev/null || fail "joined credentials are not usable"

# The joined credentials protect a real transfer between the nodes.
make_marked_file data 2000000
capture_start joined
bg on_b $(shim b) socat -u TCP4-LISTEN:7501,reuseaddr OPEN:recv,creat,trunc
wait_port_or_fail b 7501
on_a $(shim a) socat -u OPEN:data TCP4:$IP_B:7501 || fail "transfer failed"
wait_bg 30 || fail "the receiver did not finish"
capture_stop
cmp -s data recv || fail "the transfer arrived corrupted"
capture_has joined "$MARKER" && fail "plaintext on the wire with joined credentials"
n=$(capture_tcp_bytes joined)
[ "$n" -gt 1000000 ] || fail "the capture missed the transfer ($n bytes)"
grep -q "protected as server, peer spiffe://e2e/node/a" b.log ||
    fail "the transfer was not protected by the joined identities"

# Refusals: documented exit codes, clear messages, no files.
expect 5 "wrong token" $JOIN --token "${tb%????}AAAA" --node c --out c
grep -q "token-invalid" err || fail "wrong token: unclear message"
expect 5 "reused token" $JOIN --token "$tb" --node c --out c
grep -q "token-used" err || fail "reused token: unclear message"
tx=$("$KEYS" token --ca ca --ttl 1s 2>/dev/null)
sleep 1.5
expect 5 "expired token" $JOIN --token "$tx" --node c --out c
grep -q "token-expired" err || fail "expired token: unclear message"
tc=$("$KEYS" token --ca ca 2>/dev/null)
expect 7 "wrong pin" "$KEYS" join --server $SERVER --token "$tc" --node c \
    --out c --retries 0 --pin "sha256:$(printf '%064d' 0)"
grep -q "nothing was sent" err || fail "wrong pin: unclear message"
expect 5 "another node's name" $JOIN --token "$tc" --node a --out c
grep -q "name-taken" err || fail "name taken: unclear message"
expect 6 "unreachable server" "$KEYS" join --server $IP_A:7599 --pin "$PIN" \
    --token "$tc" --node c --out c --retries 0
[ ! -e c ] || fail "a refused join left files: $(ls -a c)"
expect 3 "joining twice" $JOIN --token "$tc" --node b --out b

# A retry after a lost answer uses the same key and costs no second use
# of a single-use token.
expect 0 "join c" $JOIN --token "$tc" --node c --out c
cp c/node.key c/.pending.key
rm c/node.key c/node.crt
expect 0 "retried join" $JOIN --token "$tc" --node c --out c --force
cmp -s c/node.key c/.pending.key 2>/dev/null && fail "pending key left"
grep -q "using the key of an earlier attempt" err || fail "retry did not reuse the key"

# A full disk: the certificate cannot be written, the single-use token
# is spent on the server, and the same join after space is freed
# succeeds with the kept key.
tf=$("$KEYS" token --ca ca 2>/dev/null)
mkdir full
on_b unshare -m sh -c "mount -t tmpfs -o size=4k none full &&
    { $JOIN --token $tf --node f --out full/f 2>full.err; echo \$? >full.rc; } &&
    cp -r full/f full-before && mount -o remount,size=1m full &&
    $JOIN --token $tf --node f --out full/f >/dev/null 2>full2.err &&
    cp -r full/f full-after" || fail "joined with a full disk and again: $(cat full.err full2.err)"
[ "$(cat full.rc)" = 2 ] || fail "a full disk: exit $(cat full.rc), expected 2"
grep -q "No space left on device" full.err || fail "a full disk: unclear message: $(cat full.err)"
grep -q "run the same command again" full.err || fail "a full disk: no advice to retry"
grep -q "using the key of an earlier attempt" full2.err || fail "the retry made a new key"
"$KEYS" show full-after >/dev/null || fail "credentials after the retry are not usable"

# The server never held a private key or a token.
for node in a b c; do
	body=$(sed -n 2p $node/node.key)
	grep -r -q -F "$body" ca && fail "node $node's private key is on the server"
done
for tok in "$ta" "$tb" "$tc"; do
	grep -r -q -F "${tok#*.}" ca && fail "a token secret is stored in the CA dir"
done

# Garbage and a stalled client: the server logs them and serves others.
on_b sh -c "head -c 200000 /dev/urandom | timeout 5 socat -u - TCP4:$SERVER" \
    2>/dev/null || true
bg on_b python3 -c "
import socket, time
s = socket.create_connection(('$IP_A', 7500)); time.sleep(8)"
td=$("$KEYS" token --ca ca 2>/dev/null)
expect 0 "join during a stall" $JOIN --token "$td" --node d --out d
kill -0 $SERVE_PID || fail "serve died"

# Renewal of b while a connection to b stays open; the old certificate is
# then revoked, so a new connection works only if it uses the new one.
ADV=$OLDPWD/tests/progs/adversary.py
bg on_b $(shim b) python3 $ADV echo-server 7502
wait_port_or_fail b 7502
bg on_a $(shim a) python3 $ADV hold $IP_B 7502 "$T/go"
held=$BG_LAST
i=0
until grep -q "protected as client" a.log 2>/dev/null &&
    [ "$(grep -c 'protected as client' a.log)" -ge 2 ]; do
	i=$((i + 1)); [ $i -lt 100 ] || fail "the long-lived client did not connect"
	sleep 0.05
done
old_serial=$(openssl x509 -in b/node.crt -noout -serial | cut -d= -f2)
cp b/node.key b-old.key
expect 0 "renew b" "$KEYS" renew --server $SERVER --dir b
cmp -s b/node.key b-old.key && fail "renew kept the old key"
new_serial=$(openssl x509 -in b/node.crt -noout -serial | cut -d= -f2)
[ "$old_serial" != "$new_serial" ] || fail "renew kept the old certificate"
openssl x509 -in b/node.crt -noout -text | grep -q "IP Address:$IP_B" ||
    fail "renew lost the IP SAN"
"$KEYS" revoke --ca ca --serial "$old_serial" >/dev/null || fail "revoke by serial"
openssl crl -in ca/crl.pem -CAfile ca/ca.crt -noout 2>/dev/null ||
    fail "the CRL does not verify with openssl"
cp ca/crl.pem a/crl.pem
# From a timer: --within renews only near the end of the lifetime.
cp b/node.crt b-renewed.crt
expect 0 "renew --within" "$KEYS" renew --server $SERVER --dir b --within 1d
grep -q "not renewing" out || fail "renew --within renewed a 2-day certificate"
cmp -s b/node.crt b-renewed.crt || fail "renew --within replaced the certificate"
echo_once() {
	echo "$1" | on_a $(shim a) timeout 10 socat - TCP4:$IP_B:7502 2>/dev/null
}
[ "$(echo_once renewed)" = renewed ] || fail "no new connection after renewal"
grep -q "credentials in $T/b changed" b.log || fail "b did not reload"

# A revoked node: c's certificate is revoked; a refuses c's connection
# and the server refuses c's renewal.
"$KEYS" revoke --ca ca --node c >out || fail "revoke --node"
# Node a fetches the new CRL from the server (mutual TLS as node a).
expect 0 "crl" "$KEYS" crl --server $SERVER --dir b
on_a "$KEYS" crl --server $SERVER --dir a >out || fail "crl on node a failed"
grep -q "wrote a/ca.crt (1 CA) and crl.pem" out || fail "crl: $(cat out)"
cmp -s a/crl.pem ca/crl.pem || fail "the fetched CRL is not the CA's"
expect 2 "crl without credentials" "$KEYS" crl --server $SERVER --dir nowhere
bg on_a $(shim a) python3 $ADV echo-server 7503
wait_port_or_fail a 7503
got=$(echo hello | on_b env LD_PRELOAD=$LIB TLSHIM=1 TLSHIM_DIR=$T/c \
    TLSHIM_LOG_FILE=$T/c.log TLSHIM_HANDSHAKE_TIMEOUT=5 \
    timeout 10 socat - TCP4:$IP_A:7503 2>/dev/null || true)
[ -z "$got" ] || fail "a revoked node could still connect"
grep -q "revoked" a.log || fail "the refusal of a revoked peer was not logged"
expect 5 "renew revoked" "$KEYS" renew --server $SERVER --dir c
grep -q "revoked" err || fail "renew revoked: unclear message"

# revoke with no target writes a fresh CRL (b's old certificate and c's
# two); serve --once stops after one certificate.
"$KEYS" revoke --ca ca >out || fail "revoke (refresh) failed"
grep -q "lists 3 revoked certificates" out || fail "refresh: $(cat out)"
bg on_a "$KEYS" serve --ca ca --listen $IP_A:7510 --once 2>serve-once.log
wait_port_or_fail a 7510
te=$("$KEYS" token --ca ca 2>/dev/null)
expect 0 "join with serve --once" "$KEYS" join --server $IP_A:7510 \
    --pin "$PIN" --token "$te" --node e --out e
wait_bg 10 || fail "serve --once did not stop after one certificate"
cmp -s e/crl.pem ca/crl.pem || fail "join did not install the current CRL"

# A flood of garbage from one address (node a): logged up to the limit,
# then dropped quietly; node b is still served.
before=$(grep -c "$IP_A:.*refused" serve.log || true)
for i in $(seq 40); do
	on_a sh -c "head -c 2000 /dev/urandom | timeout 3 socat -u - TCP4:$SERVER" \
	    2>/dev/null || true
done
logged=$(( $(grep -c "$IP_A:.*refused" serve.log) - before ))
[ "$logged" -le 10 ] || fail "a flood was logged $logged times"
grep -q "further refusals of this address are not logged" serve.log ||
    fail "the flood's suppression was not said"
tg=$("$KEYS" token --ca ca 2>/dev/null)
expect 0 "join during a flood from elsewhere" $JOIN --token "$tg" --node g --out g

touch "$T/go"
wait_pid "$held" || fail "the open connection did not survive renewal"
kill -0 $SERVE_PID || fail "serve died"
grep -q "refused (tls)" serve.log || fail "garbage was not logged"
i=0
until grep -q "handshake not completed in 3 s" serve.log; do
	i=$((i + 1)); [ $i -lt 50 ] || fail "the stall was not logged"
	sleep 0.1
done
grep -q "refused (token-used)" serve.log || fail "refusals were not logged"
for tok in "$ta" "$tb" "$tc"; do
	grep -q -F "${tok#*.}" serve.log *.log && fail "a token secret was logged"
done
echo "enrollment: 4 joins, 6 refusals with their exit codes, retry" \
    "idempotent, renewal under a live connection, revocation honoured"
exit 0
