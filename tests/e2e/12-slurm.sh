# Issue 7: the SLURM example. The prolog issues job-bound credentials only
# the job's user can read, the epilog removes them, and the batch script
# launches torchrun with the shim preloaded for this job.
. tests/e2e/lib.sh
make_creds
export TLSHIM_CA="$T/ca" TLSHIM_RUN_DIR="$T/run" TLSHIM_KEYS="$KEYS"
export SLURM_JOB_ID=4242 SLURM_JOB_USER=root SLURMD_NODENAME=gpu17
sh examples/slurm/prolog.sh || fail "prolog failed"
dir=$T/run/4242
[ "$(stat -c %a "$dir")" = 700 ] || fail "job credential directory not 0700"
[ "$(stat -c %a "$dir/node.key")" = 600 ] || fail "node.key not 0600"
openssl x509 -in "$dir/node.crt" -noout -ext subjectAltName |
    grep -q "URI:spiffe://e2e/job/4242/node/gpu17" ||
    fail "credentials are not bound to the job"
# The job's credentials work with TLSHIM_JOB against a peer of the job.
"$KEYS" issue --ca "$T/ca" --node gpu18 --job 4242 --out "$T/peer" >/dev/null
"$KEYS" issue --ca "$T/ca" --node gpu19 --job 999 --out "$T/other" >/dev/null
export TLSHIM_LOOPBACK=1 TLSHIM_JOB=4242 TLSHIM_LOG=info
# serve_once PORT FILE: a one-shot server with the job's credentials.
serve_once() {
	LD_PRELOAD=$LIB TLSHIM=1 TLSHIM_DIR="$dir" TLSHIM_LOG_FILE="$T/srv.log" \
	    timeout 10 socat -u TCP4-LISTEN:$1,bind=127.0.0.1,reuseaddr \
	    OPEN:"$2",creat &
	srv=$!
	i=0
	until ss -ltnH "sport = :$1" | grep -q . || [ $i -gt 100 ]; do
		sleep 0.05
		i=$((i + 1))
	done
}
serve_once 7600 "$T/got"
echo "from the same job" | LD_PRELOAD=$LIB TLSHIM=1 TLSHIM_DIR="$T/peer" \
    TLSHIM_LOG_FILE="$T/cli.log" socat -u - TCP4:127.0.0.1:7600 ||
    fail "a peer of the same job was refused"
wait $srv || true
grep -q "from the same job" "$T/got" || { cat "$T/srv.log" "$T/cli.log"; fail "same-job transfer failed"; }
serve_once 7601 "$T/got2"
echo "from another job" | LD_PRELOAD=$LIB TLSHIM=1 TLSHIM_DIR="$T/other" \
    TLSHIM_LOG_FILE="$T/cli.log" TLSHIM_JOB=999 socat -u - \
    TCP4:127.0.0.1:7601 2>/dev/null || true
wait $srv || true
[ -s "$T/got2" ] && fail "a node of another job got through"
grep -q "is not in job 4242" "$T/srv.log" || fail "job refusal not logged"
# The batch script, with scontrol and srun stood in for.
mkdir -p "$T/bin"
printf '#!/bin/sh\nprintf "gpu17\\ngpu18\\n"\n' >"$T/bin/scontrol"
chmod +x "$T/bin/scontrol"
out=$(PATH="$T/bin:$PATH" DRY_RUN=1 SLURM_JOB_NODELIST="gpu[17-18]" TLSHIM_LIB="$LIB" \
    sh examples/slurm/job.sbatch) || fail "job.sbatch failed"
echo "$out" | grep -q "srun --export=ALL .*torchrun .*--master_addr gpu17" ||
    fail "job.sbatch does not launch torchrun: $out"
sh examples/slurm/epilog.sh || fail "epilog failed"
[ -e "$dir" ] && fail "the epilog left the job's credentials"
exit 0
