# MPICH over UCX's TCP transport (UCX_TLS=tcp,self), one rank per node
# launched by hydra (through an ssh stand-in that enters the node's
# namespace): a 16 MiB allreduce and a 16 MiB send/recv arrive exact,
# the ranks' connections are protected and the sent lines never cross the
# wire in clear. UCX receives a large PUT straight into the user's buffer
# and drops its receive state if recv() says EAGAIN right after an event:
# readiness must mean data (it crashed every run before it did).
. tests/e2e/lib.sh
command -v mpicc.mpich >/dev/null && command -v mpiexec.hydra >/dev/null ||
    fail "mpich and libmpich-dev are missing"
make_nodes
make_creds
mpicc.mpich -O2 -o "$T/job" tests/progs/mpich/job.c ||
    fail "tests/progs/mpich/job.c does not build"
node_hosts "$IP_A node-a
$IP_B node-b
$IP_A $(hostname)"
printf 'node-a:1\nnode-b:1\n' >"$T/hosts"

# ssh HOST COMMAND: hydra's launcher, here entering the node's namespace.
# The proxy it starts is preloaded with the node's credentials, as the
# ranks are: hydra's own channel (the command line, the environment, the
# ranks' addresses) is protected as well.
mkdir -p "$T/bin"
cat >"$T/bin/ssh" <<SSH
#!/bin/sh
while [ \$# -gt 0 ]; do case \$1 in -*) shift ;; *) break ;; esac; done
host=\$1; shift
case \$host in node-a|$IP_A) ns=$NS_A node=a ;; node-b|$IP_B) ns=$NS_B node=b ;; *) exit 255 ;; esac
exec ip netns exec \$ns env LD_PRELOAD=$LIB TLSHIM=1 TLSHIM_LOG=info \\
    TLSHIM_DIR=$T/\$node TLSHIM_LOG_FILE=$T/\$node.log \\
    TLSHIM_PEERS=node-a,node-b sh -c "\$*"
SSH
# rank COMMAND: hydra gives the ranks mpiexec's environment (node a's
# credentials); each rank takes its own node's.
cat >"$T/bin/rank" <<RANK
#!/bin/sh
if ip -br addr show | grep -q "$IP_A/"; then node=a; else node=b; fi
export TLSHIM_DIR=$T/\$node TLSHIM_LOG_FILE=$T/\$node.log
exec "\$@"
RANK
chmod +x "$T/bin/ssh" "$T/bin/rank"

capture_start mpich
on_a $(shim a) TLSHIM_LOG_FILE="$T/mpiexec.log" TLSHIM_PEERS=node-a,node-b \
    PATH="$T/bin:$PATH" timeout 120 mpiexec.hydra -launcher ssh \
    -launcher-exec "$T/bin/ssh" -f "$T/hosts" -n 2 \
    -genv UCX_TLS tcp,self -genv UCX_WARN_UNUSED_ENV_VARS n \
    "$T/bin/rank" "$T/job" "$MARKER" >"$T/job.out" 2>&1 ||
    fail "the MPICH job failed: $(tail -30 "$T/job.out")"
capture_stop
[ "$(grep -c "allreduce and 16 MiB send/recv correct" "$T/job.out")" = 2 ] ||
    fail "not both ranks reported correct results: $(cat "$T/job.out")"
capture_has mpich "$MARKER" && fail "the sent lines crossed the wire in clear"
captured=$(capture_tcp_bytes mpich)
[ "$captured" -gt 16777216 ] ||
    fail "the capture saw $captured bytes, not the job's traffic"
for node in a b; do
	grep -q "protected as .* peer spiffe://e2e/node/" "$T/$node.log" ||
	    fail "node $node logged no protected connection"
done
echo "mpich: allreduce and send/recv exact over UCX's TCP transport;" \
    "$(cat "$T/a.log" "$T/b.log" | grep -c "protected as") connection ends protected," \
    "$captured TCP bytes captured, no plaintext"
exit 0
