# The Kubernetes example, checked without a cluster. The
# manifest's pieces must fit together (tests/progs/k8s_pod.py), and its
# init container's own script enrolls "pods" for real: it runs in node b's
# network namespace with the Secret and the memory volume mounted where the
# manifest puts them, against 'tlshim-keys serve' on node a. A restarted
# pod keeps its credentials; a replaced pod enrolls its name again.
. tests/e2e/lib.sh
make_nodes
YAML=examples/kubernetes/trainer.yaml
/usr/bin/python3 tests/progs/k8s_pod.py $YAML check || fail "the manifest does not fit together"
"$KEYS" init --dir "$T/ca" --name e2e >/dev/null
bg on_a "$KEYS" serve --ca "$T/ca" --listen $IP_A:7800 2>"$T/serve.log"
wait_port_or_fail a 7800
# As the manifest's header says.
"$KEYS" token --ca "$T/ca" --job trainer --uses 4 --node trainer-0,trainer-1 \
    --ttl 30m >"$T/token" 2>/dev/null
/usr/bin/python3 tests/progs/k8s_pod.py $YAML init-script >"$T/init.sh"
mkdir -p "$T/bin"
# POD NAME VOLUME: the init container of pod NAME, with VOLUME as its
# memory-backed credentials volume.
# pod NAME DIR NODE: the pod's address is its node's.
pod() {
	ip=$IP_B
	[ "$3" = a ] && ip=$IP_A
	printf '#!/bin/sh\necho %s\n' "$1" >"$T/bin/hostname"
	chmod +x "$T/bin/hostname"
	mkdir -p "$2"
	on_$3 unshare -m sh -c "mount -t tmpfs none /run &&
	    mkdir -p /run/tlshim /run/tlshim-token &&
	    mount --bind $2 /run/tlshim &&
	    cp $T/token /run/tlshim-token/token &&
	    PATH=$T/bin:$(dirname "$KEYS"):\$PATH TLSHIM_SERVER=$IP_A:7800 \
	    TLSHIM_PIN=$("$KEYS" pin --ca "$T/ca") POD_IP=$ip sh $T/init.sh"
}
pod trainer-0 "$T/pod0" a || fail "the init container of trainer-0 failed"
pod trainer-1 "$T/pod1" b || fail "the init container of trainer-1 failed"
openssl x509 -in "$T/pod0/node.crt" -noout -ext subjectAltName |
    grep -q "URI:spiffe://e2e/job/trainer/node/trainer-0" ||
    fail "trainer-0 did not get its job identity"
cp "$T/pod0/node.crt" "$T/pod0.crt"
pod trainer-0 "$T/pod0" a || fail "a restarted init container failed"
cmp -s "$T/pod0/node.crt" "$T/pod0.crt" || fail "a restart enrolled again"
pod trainer-0 "$T/pod0-replaced" a || fail "a replaced pod could not enroll"
pod intruder "$T/pod9" b 2>"$T/err" && fail "a pod outside the token's names enrolled"
grep -q "name-not-allowed" "$T/err" || fail "outsider refusal unclear: $(cat "$T/err")"

# The two pods' credentials carry a protected connection with the job
# check and the manifest's TLSHIM_PEERS, resolved as cluster DNS would.
PEERS=$(python3 tests/progs/k8s_pod.py examples/kubernetes/trainer.yaml peers)
node_hosts "$IP_A trainer-0.trainer
$IP_B trainer-1.trainer"
bg on_b env LD_PRELOAD=$LIB TLSHIM=1 TLSHIM_DIR=$T/pod1 TLSHIM_JOB=trainer \
    TLSHIM_PEERS="$PEERS" \
    TLSHIM_LOG=info TLSHIM_LOG_FILE=$T/pod1.log timeout 10 \
    socat -u TCP4-LISTEN:7801,reuseaddr OPEN:"$T/got",creat
wait_port_or_fail b 7801
echo "pod to pod" | on_a env LD_PRELOAD=$LIB TLSHIM=1 TLSHIM_DIR=$T/pod0 \
    TLSHIM_JOB=trainer TLSHIM_LOG_FILE=$T/pod0.log TLSHIM_LOG=info \
    TLSHIM_PEERS="$PEERS" \
    socat -u - TCP4:$IP_B:7801 || fail "pod-to-pod connection failed"
wait_bg 10 || true
grep -q "pod to pod" "$T/got" || fail "nothing arrived"
grep -q "policy: connections to the 2 addresses of TLSHIM_PEERS" "$T/pod0.log" ||
    fail "the manifest's peers were not in force: $(cat "$T/pod0.log")"
# With the manifest's peers, a pod also reaches a service in its subnet
# that is not part of the job (a dataset server), untouched.
outside_service
got=$(on_a env LD_PRELOAD=$LIB TLSHIM=1 TLSHIM_DIR=$T/pod0 TLSHIM_JOB=trainer \
    TLSHIM_PEERS="$PEERS" python3 tests/progs/webserve.py fetch "$OUTSIDE_URL") ||
    fail "the pod could not reach a service outside the job"
[ "$got" = "$OUTSIDE_SHA" ] || fail "the download from outside the job differs"
grep -q "peer spiffe://e2e/job/trainer/node/trainer-0" "$T/pod1.log" ||
    fail "the connection was not protected by the pods' identities"
echo "kubernetes: manifest consistent, init container enrolled 2 pods," \
    "restart kept, replacement enrolled, outsider refused"
exit 0
