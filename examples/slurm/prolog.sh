#!/bin/sh
# SLURM prolog (as root on each node before the job): enrolls the node for
# this job with the enrollment server ('tlshim-keys serve' on the head
# node) using the token prolog-slurmctld.sh made. The private key is made
# here and never leaves the node; the server is checked against the CA pin
# before the token is sent. The credentials are readable only by the job's
# user; epilog.sh removes them.
#
# Settings: TLSHIM_SERVER (HOST:PORT of serve), TLSHIM_PIN (or the file
# TLSHIM_PIN_FILE, /etc/tlshim/pin: the output of 'tlshim-keys pin'),
# TLSHIM_TOKEN_DIR (/var/spool/tlshim/tokens), TLSHIM_RUN_DIR (/run/tlshim),
# TLSHIM_KEYS (tlshim-keys). SLURM sets SLURM_JOB_ID, SLURM_JOB_USER and
# SLURMD_NODENAME.
set -eu
: "${TLSHIM_SERVER:?set TLSHIM_SERVER to the enrollment server HOST:PORT}"
: "${TLSHIM_PIN_FILE:=/etc/tlshim/pin}" "${TLSHIM_RUN_DIR:=/run/tlshim}"
: "${TLSHIM_TOKEN_DIR:=/var/spool/tlshim/tokens}" "${TLSHIM_KEYS:=tlshim-keys}"
: "${SLURM_JOB_ID:?}" "${SLURM_JOB_USER:?}" "${SLURMD_NODENAME:?}"
pin=${TLSHIM_PIN:-$(cat "$TLSHIM_PIN_FILE")}
dir=$TLSHIM_RUN_DIR/$SLURM_JOB_ID
mkdir -p -m 0755 "$TLSHIM_RUN_DIR"
"$TLSHIM_KEYS" join --server "$TLSHIM_SERVER" --pin "$pin" \
    --token-file "$TLSHIM_TOKEN_DIR/$SLURM_JOB_ID" --node "$SLURMD_NODENAME" \
    --out "$dir" --force >/dev/null
chown -R "$SLURM_JOB_USER" "$dir"
chmod 0700 "$dir"
