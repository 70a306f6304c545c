#!/bin/sh
# Multi-node torchrun with tlshim. Run it on every node with the same
# settings except NODE_RANK; TLSHIM=1 (the default here) protects the job,
# TLSHIM=0 runs it exactly as before.
#
#   NODE_RANK=0 MASTER_ADDR=10.1.0.1 examples/torchrun.sh \
#       --peers 10.1.0.1,10.1.0.2 train.py --epochs 3
#
# --peers LIST (or TLSHIM_PEERS) names the job's nodes: addresses, names or
# a hostfile's path (the same on every node). Only connections to them are
# protected; downloads and logging to services outside the job are left
# alone. Produce it from what your cluster knows: `scontrol show hostnames
# "$SLURM_JOB_NODELIST" | paste -sd, -`, your MPI hostfile, or the pods'
# headless-service names. Without it every connection but loopback is
# protected, and a service without tlshim cannot be reached.
#
# Settings (environment): NNODES (2), NPROC (1 per node), NODE_RANK,
# MASTER_ADDR, MASTER_PORT (29500), TLSHIM (1), TLSHIM_LIB
# (/usr/local/lib/libtlshim.so), TLSHIM_DIR (/etc/tlshim), TORCHRUN_ARGS
# (extra launcher arguments), DRY_RUN=1 prints the command instead.
#
# Enrollment: with TLSHIM_SERVER (HOST:PORT of 'tlshim-keys serve') set and
# no credentials in TLSHIM_DIR yet, the node joins first, with TLSHIM_PIN
# (from 'tlshim-keys pin'), the token in TLSHIM_TOKEN or TLSHIM_TOKEN_FILE,
# and the name TLSHIM_NODE (default: the host name). The token is removed
# from the environment before the job starts.
set -eu
if [ "${1:-}" = --peers ]; then
	TLSHIM_PEERS=${2:?--peers takes a list}
	shift 2
fi
[ -z "${TLSHIM_PEERS:-}" ] || export TLSHIM_PEERS
: "${NNODES:=2}" "${NPROC:=1}" "${MASTER_PORT:=29500}" "${TLSHIM:=1}"
: "${NODE_RANK:?set NODE_RANK}" "${MASTER_ADDR:?set MASTER_ADDR}"
: "${TLSHIM_LIB:=/usr/local/lib/libtlshim.so}" "${TLSHIM_DIR:=/etc/tlshim}"
export TLSHIM TLSHIM_DIR
if [ "$TLSHIM" = 1 ] && [ -n "${TLSHIM_SERVER:-}" ] &&
    [ ! -e "$TLSHIM_DIR/node.crt" ]; then
	${DRY_RUN:+echo} "${TLSHIM_KEYS:-tlshim-keys}" join \
	    --server "$TLSHIM_SERVER" --pin "${TLSHIM_PIN:?set TLSHIM_PIN}" \
	    ${TLSHIM_TOKEN_FILE:+--token-file "$TLSHIM_TOKEN_FILE"} \
	    --node "${TLSHIM_NODE:-$(hostname)}" --out "$TLSHIM_DIR" >&2
fi
unset TLSHIM_TOKEN
if [ "$TLSHIM" = 1 ]; then
	# The launcher, its rendezvous store and every worker inherit it.
	export LD_PRELOAD="$TLSHIM_LIB${LD_PRELOAD:+:$LD_PRELOAD}"
fi
# shellcheck disable=SC2086
exec ${DRY_RUN:+echo} torchrun --nnodes "$NNODES" --nproc_per_node "$NPROC" \
    --node_rank "$NODE_RANK" --master_addr "$MASTER_ADDR" \
    --master_port "$MASTER_PORT" ${TORCHRUN_ARGS:-} "$@"
