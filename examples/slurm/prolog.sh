#!/bin/sh
# SLURM prolog (runs as root on each node before the job): gives the node
# credentials bound to this job, readable only by the job's user.
#
# Until network enrollment exists (tlshim-keys join), this issues them from
# a CA directory that only root can read on every node (TLSHIM_CA); keep it
# off shared storage the users can read.
#
# Settings: TLSHIM_CA (/etc/tlshim/ca), TLSHIM_RUN_DIR (/run/tlshim),
# TLSHIM_KEYS (tlshim-keys), TLSHIM_DAYS (2). SLURM sets SLURM_JOB_ID,
# SLURM_JOB_USER and SLURMD_NODENAME.
set -eu
: "${TLSHIM_CA:=/etc/tlshim/ca}" "${TLSHIM_RUN_DIR:=/run/tlshim}"
: "${TLSHIM_KEYS:=tlshim-keys}" "${TLSHIM_DAYS:=2}"
: "${SLURM_JOB_ID:?}" "${SLURM_JOB_USER:?}" "${SLURMD_NODENAME:?}"
dir=$TLSHIM_RUN_DIR/$SLURM_JOB_ID
mkdir -p -m 0755 "$TLSHIM_RUN_DIR"
"$TLSHIM_KEYS" issue --ca "$TLSHIM_CA" --node "$SLURMD_NODENAME" \
    --job "$SLURM_JOB_ID" --days "$TLSHIM_DAYS" --out "$dir" --force >/dev/null
chown -R "$SLURM_JOB_USER" "$dir"
chmod 0700 "$dir"
