#!/bin/sh
# SLURM epilog: remove the job's credentials from the node.
set -eu
: "${TLSHIM_RUN_DIR:=/run/tlshim}" "${SLURM_JOB_ID:?}"
rm -rf "${TLSHIM_RUN_DIR:?}/$SLURM_JOB_ID"
