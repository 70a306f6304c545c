# Open MPI with mpi4py, mpirun preloaded (examples/mpirun.sh), 3 ranks over loopback
# (--mca btl tcp,self, TLSHIM_LOOPBACK=1): Allreduce, Alltoall and Bcast are
# exact, and the ranks' TCP connections were protected.
. tests/e2e/lib.sh
command -v mpirun >/dev/null || fail "openmpi-bin is missing"
/usr/bin/python3 -c "import mpi4py" 2>/dev/null || fail "python3-mpi4py is missing"
make_creds
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "localhost slots=3" >"$T/hosts"
# Through the example launcher (examples/mpirun.sh).
TLSHIM_LIB="$LIB" TLSHIM_DIR="$T/a" TLSHIM_LOOPBACK=1 TLSHIM_LOG=info \
    TLSHIM_LOG_FILE="$T/mpi.log" HOSTFILE="$T/hosts" NP=3 \
    MPIRUN_ARGS="--mca btl_tcp_if_include lo --mca oob_tcp_if_include lo" \
    timeout 120 examples/mpirun.sh /usr/bin/python3 tests/progs/mpi_job.py \
    >"$T/mpi.out" || fail "mpirun failed: $(cat "$T/mpi.out")"
cat "$T/mpi.out"
# Ranks' lines may interleave: count the reports, not the lines.
[ "$(grep -o "Allreduce, Bcast and Alltoall correct" "$T/mpi.out" | wc -l)" = 3 ] ||
    fail "not every rank reported"
protected=$(grep -c "protected as" "$T/mpi.log")
[ "$protected" -ge 6 ] || fail "only $protected protected connection ends logged"
# The collectives' megabytes went through protected connections.
awk '/closed,/ { for (i = 1; i <= NF; i++) if ($i == "sent") s += $(i + 1) }
    END { exit !(s > 20000000) }' "$T/mpi.log" ||
    fail "the collectives' bytes did not go through protected connections"
echo "mpi: $protected protected connection ends"
exit 0
