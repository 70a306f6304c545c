# The SLURM example across two nodes. prolog-slurmctld
# makes the job's token; each node's prolog enrolls over the network with
# 'tlshim-keys serve' on the head node and gets job-bound credentials only
# the job's user can read; a node outside the job cannot use the token;
# a node of another job is refused by the shim; the batch script launches
# torchrun with the shim preloaded; the epilogs clean up.
. tests/e2e/lib.sh
make_nodes
"$KEYS" init --dir "$T/ca" --name e2e >/dev/null
bg on_a "$KEYS" serve --ca "$T/ca" --listen $IP_A:7650 2>"$T/serve.log"
wait_port_or_fail a 7650
export TLSHIM_CA="$T/ca" TLSHIM_TOKEN_DIR="$T/spool" TLSHIM_KEYS="$KEYS"
export TLSHIM_SERVER=$IP_A:7650 TLSHIM_PIN="$("$KEYS" pin --ca "$T/ca")"
export SLURM_JOB_ID=4242 SLURM_JOB_USER=root SLURM_JOB_NODELIST="gpu[17-18]"

# scontrol stood in for: the job's two nodes.
mkdir -p "$T/bin"
printf '#!/bin/sh\nprintf "gpu17\\ngpu18\\n"\n' >"$T/bin/scontrol"
chmod +x "$T/bin/scontrol"
PATH="$T/bin:$PATH" sh examples/slurm/prolog-slurmctld.sh ||
    fail "prolog-slurmctld failed"
[ "$(stat -c %a "$T/spool/$SLURM_JOB_ID")" = 600 ] || fail "token file not 0600"

# prolog NODE NAME: the node prolog on node NAME's namespace.
prolog() {
	on_$1 env TLSHIM_RUN_DIR="$T/run-$2" SLURMD_NODENAME=$2 \
	    sh examples/slurm/prolog.sh
}
prolog a gpu17 || fail "prolog on gpu17 failed"
prolog b gpu18 || fail "prolog on gpu18 failed"
dir=$T/run-gpu17/4242
[ "$(stat -c %a "$dir")" = 700 ] || fail "job credential directory not 0700"
[ "$(stat -c %a "$dir/node.key")" = 600 ] || fail "node.key not 0600"
openssl x509 -in "$dir/node.crt" -noout -ext subjectAltName |
    grep -q "URI:spiffe://e2e/job/4242/node/gpu17" ||
    fail "credentials are not bound to the job"
prolog b gpu30 2>"$T/err" && fail "a node outside the job used its token"
grep -q "name-not-allowed" "$T/err" || fail "outsider refusal unclear: $(cat "$T/err")"

# What the batch script gives the job (srun stood in for): its nodes as
# TLSHIM_PEERS, which the nodes resolve through their /etc/hosts.
printf '#!/bin/sh\necho "$TLSHIM_PEERS"\n' >"$T/bin/srun"
chmod +x "$T/bin/srun"
PEERS=$(PATH="$T/bin:$PATH" TLSHIM_LIB="$LIB" sh examples/slurm/job.sbatch) ||
    fail "job.sbatch failed"
[ "$PEERS" = gpu17,gpu18 ] || fail "job.sbatch set TLSHIM_PEERS=$PEERS"
node_hosts "$IP_A gpu17
$IP_B gpu18"

# The job's nodes talk through the shim; a node of another job cannot.
"$KEYS" issue --ca "$T/ca" --node gpu19 --job 999 --out "$T/other" >/dev/null
job_shim() {
	echo env LD_PRELOAD=$LIB TLSHIM=1 TLSHIM_DIR=$1 TLSHIM_JOB=$2 \
	    TLSHIM_LOG=info TLSHIM_LOG_FILE=$3 TLSHIM_HANDSHAKE_TIMEOUT=5 \
	    TLSHIM_PEERS=$PEERS
}
bg on_b $(job_shim "$T/run-gpu18/4242" 4242 "$T/srv.log") timeout 10 \
    socat -u TCP4-LISTEN:7651,reuseaddr OPEN:"$T/got",creat
wait_port_or_fail b 7651
echo "from the same job" | on_a $(job_shim "$dir" 4242 "$T/cli.log") \
    socat -u - TCP4:$IP_B:7651 || fail "a peer of the same job was refused"
wait_bg 10 || true
grep -q "from the same job" "$T/got" || fail "same-job transfer failed"
grep -q "policy: connections to the 2 addresses of TLSHIM_PEERS" "$T/cli.log" ||
    fail "the job's peers were not in force: $(cat "$T/cli.log")"
# With the peers job.sbatch derived, the job also reaches a service in its
# subnet that is not part of it (a dataset server), untouched.
outside_service
got=$(on_a $(job_shim "$dir" 4242 "$T/cli.log") python3 tests/progs/webserve.py \
    fetch "$OUTSIDE_URL") || fail "the job could not reach a service outside it"
[ "$got" = "$OUTSIDE_SHA" ] || fail "the download from outside the job differs"
bg on_b $(job_shim "$T/run-gpu18/4242" 4242 "$T/srv.log") timeout 10 \
    socat -u TCP4-LISTEN:7652,reuseaddr OPEN:"$T/got2",creat
wait_port_or_fail b 7652
echo "from another job" | on_a $(job_shim "$T/other" 999 "$T/cli2.log") \
    socat -u - TCP4:$IP_B:7652 2>/dev/null || true
wait_bg 10 || true
[ -s "$T/got2" ] && fail "a node of another job got through"
grep -q "is not in job 4242" "$T/srv.log" || fail "job refusal not logged"

# The batch script, with srun shown rather than run.
out=$(PATH="$T/bin:$PATH" DRY_RUN=1 TLSHIM_LIB="$LIB" \
    sh examples/slurm/job.sbatch) || fail "job.sbatch failed"
echo "$out" | grep -q "srun --export=ALL .*torchrun .*--master_addr gpu17" ||
    fail "job.sbatch does not launch torchrun: $out"
TLSHIM_RUN_DIR="$T/run-gpu17" sh examples/slurm/epilog.sh || fail "epilog failed"
[ -e "$dir" ] && fail "the epilog left the job's credentials"
sh examples/slurm/epilog-slurmctld.sh || fail "epilog-slurmctld failed"
[ -e "$T/spool/4242" ] && fail "the job's token was left"
exit 0
