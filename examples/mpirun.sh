#!/bin/sh
# Open MPI across a hostfile with tlshim: mpirun forwards the preload and
# the settings to every rank with -x. The ranks' TCP traffic (the tcp BTL
# and the runtime's out-of-band channel) is then mutually authenticated
# and encrypted; shared memory between ranks on one node is not TCP and is
# not covered.
#
#   HOSTFILE=hosts NP=8 examples/mpirun.sh python3 job.py
#
# Settings (environment): HOSTFILE, NP, TLSHIM_LIB
# (/usr/local/lib/libtlshim.so), TLSHIM_DIR (/etc/tlshim, present on every
# node), MPIRUN_ARGS (extra arguments), DRY_RUN=1 prints the command.
# TLSHIM_PEERS defaults to the hostfile's hosts, so connections to
# anything else (an object store, a tracking server) are left alone; every
# TLSHIM_* setting is forwarded to the ranks.
set -eu
: "${HOSTFILE:?set HOSTFILE}" "${NP:?set NP}"
: "${TLSHIM_LIB:=/usr/local/lib/libtlshim.so}" "${TLSHIM_DIR:=/etc/tlshim}"
# The first word of each line, without MPICH's ":COUNT" (IPv6 kept whole).
: "${TLSHIM_PEERS:=$(awk '!/^[[:space:]]*(#|$)/ { h = $1
    if (h ~ /^[^:]*:[0-9]+$/) sub(/:.*/, "", h); print h }' "$HOSTFILE" |
    paste -sd, -)}"
export LD_PRELOAD="$TLSHIM_LIB${LD_PRELOAD:+:$LD_PRELOAD}" TLSHIM=1 TLSHIM_DIR \
    TLSHIM_PEERS
forward=""
for v in $(env | sed -n 's/^\(TLSHIM_[A-Z_]*\)=.*/\1/p' | sort -u); do
	[ "$v" = TLSHIM_LIB ] || forward="$forward -x $v"
done
# shellcheck disable=SC2086
exec ${DRY_RUN:+echo} mpirun --hostfile "$HOSTFILE" -np "$NP" \
    --mca btl tcp,self -x LD_PRELOAD -x TLSHIM $forward \
    ${MPIRUN_ARGS:-} "$@"
