#!/bin/sh
# SLURM PrologSlurmctld (on the controller, once per job, before the node
# prologs): makes the job's enrollment token. It is bound to the job (the
# nodes' identities become spiffe://CLUSTER/job/ID/node/NAME, checked with
# TLSHIM_JOB), usable once by each of the job's nodes and by no other node,
# and expires in 15 minutes. The node prologs read it from TLSHIM_TOKEN_DIR:
# a directory every node can read as root and no user can (e.g. a
# root-only export); only the token's hash stays in the CA directory.
#
# Settings: TLSHIM_CA (/etc/tlshim/ca), TLSHIM_TOKEN_DIR
# (/var/spool/tlshim/tokens), TLSHIM_KEYS (tlshim-keys), TLSHIM_TOKEN_TTL
# (15m). SLURM sets SLURM_JOB_ID and SLURM_JOB_NODELIST.
set -eu
: "${TLSHIM_CA:=/etc/tlshim/ca}" "${TLSHIM_TOKEN_DIR:=/var/spool/tlshim/tokens}"
: "${TLSHIM_KEYS:=tlshim-keys}" "${TLSHIM_TOKEN_TTL:=15m}"
: "${SLURM_JOB_ID:?}" "${SLURM_JOB_NODELIST:?}"
nodes=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | paste -sd, -)
count=$(echo "$nodes" | tr , '\n' | wc -l)
mkdir -p -m 0700 "$TLSHIM_TOKEN_DIR"
umask 077
"$TLSHIM_KEYS" token --ca "$TLSHIM_CA" --job "$SLURM_JOB_ID" --uses "$count" \
    --node "$nodes" --ttl "$TLSHIM_TOKEN_TTL" \
    >"$TLSHIM_TOKEN_DIR/$SLURM_JOB_ID.tmp" 2>/dev/null
mv "$TLSHIM_TOKEN_DIR/$SLURM_JOB_ID.tmp" "$TLSHIM_TOKEN_DIR/$SLURM_JOB_ID"
