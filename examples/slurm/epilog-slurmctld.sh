#!/bin/sh
# SLURM EpilogSlurmctld: the job's token is no longer needed.
set -eu
: "${TLSHIM_TOKEN_DIR:=/var/spool/tlshim/tokens}" "${SLURM_JOB_ID:?}"
rm -f "$TLSHIM_TOKEN_DIR/$SLURM_JOB_ID"
