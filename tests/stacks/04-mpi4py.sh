# mpi4py 4 from PyPI (in the virtualenv of make check-stacks) with Debian's
# Open MPI across the two nodes: the checks of tests/e2e/20-hostfile.sh
# (both hosts enrolled over ssh, 4 ranks whose collectives are exact,
# every connection between the nodes protected) with mpi4py 4.1's wheel.
[ -n "${TORCH_PYTHON:-}" ] || { echo "SKIP: TORCH_PYTHON not set" >&2; exit 77; }
MPI_PYTHON=$TORCH_PYTHON exec sh tests/e2e/20-hostfile.sh
