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
set -eu
: "${HOSTFILE:?set HOSTFILE}" "${NP:?set NP}"
: "${TLSHIM_LIB:=/usr/local/lib/libtlshim.so}" "${TLSHIM_DIR:=/etc/tlshim}"
export LD_PRELOAD="$TLSHIM_LIB${LD_PRELOAD:+:$LD_PRELOAD}" TLSHIM=1 TLSHIM_DIR
# shellcheck disable=SC2086
exec ${DRY_RUN:+echo} mpirun --hostfile "$HOSTFILE" -np "$NP" \
    --mca btl tcp,self -x LD_PRELOAD -x TLSHIM -x TLSHIM_DIR \
    ${TLSHIM_LOOPBACK:+-x TLSHIM_LOOPBACK} ${TLSHIM_LOG:+-x TLSHIM_LOG} \
    ${TLSHIM_LOG_FILE:+-x TLSHIM_LOG_FILE} ${TLSHIM_JOB:+-x TLSHIM_JOB} \
    ${MPIRUN_ARGS:-} "$@"
