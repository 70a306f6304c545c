#!/bin/sh
# Installs the Debian packages tlshim needs, or says exactly how to.
# Usage: tools/deps.sh build|test|demo|fuzz|deb|stacks
# build: compiler inputs only; test: everything `make check` runs;
# demo: what `make demo` runs; stacks: make check-stacks (mpi4py 4's
# wheel loads Open MPI through libmpi.so, from libopenmpi-dev).
set -eu

build_pkgs="libwolfssl-dev libsodium-dev check pkg-config"
test_pkgs="$build_pkgs iproute2 socat iperf3 tshark python3-torch openmpi-bin python3-mpi4py stunnel4 openssl python3-yaml strace redis-server redis-tools man-db groff-base systemd mpich libmpich-dev libucx0"
demo_pkgs="$build_pkgs iproute2 tshark python3-torch"
fuzz_pkgs="$build_pkgs clang libclang-rt-14-dev"
deb_pkgs="$build_pkgs debhelper dpkg-dev fakeroot lintian"
stacks_pkgs="$test_pkgs python3-venv libopenmpi-dev"

case "${1:-build}" in
build) wanted=$build_pkgs ;;
test) wanted=$test_pkgs ;;
demo) wanted=$demo_pkgs ;;
fuzz) wanted=$fuzz_pkgs ;;
deb) wanted=$deb_pkgs ;;
stacks) wanted=$stacks_pkgs ;;
*) echo "usage: $0 build|test|demo|fuzz|deb|stacks" >&2; exit 2 ;;
esac

missing=""
for p in $wanted; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "tlshim: missing Debian packages:$missing" >&2
	echo "tlshim: install them with: sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "tlshim: installing missing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer for it.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
apt-get update -qq >&2
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >&2
