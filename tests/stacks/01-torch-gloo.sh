# PyTorch 2.13 from PyPI (TORCH_PYTHON, made by make check-stacks): DDP
# over gloo with 2 ranks across the nodes and 4 ranks (2 per node), the
# same checks as with Debian's torch (tests/e2e/04-gloo.sh), with the
# TCPStore of current torch (libuv).
[ -n "${TORCH_PYTHON:-}" ] || { echo "SKIP: TORCH_PYTHON not set" >&2; exit 77; }
exec sh tests/e2e/04-gloo.sh
