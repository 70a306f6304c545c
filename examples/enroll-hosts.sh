#!/bin/sh
# Enroll every host of an MPI hostfile before mpirun, from the head node
# (where the CA and 'tlshim-keys serve' are). One token for exactly these
# hosts goes to each over ssh on standard input (never on a command line);
# each host runs 'tlshim-keys join' itself, so its private key is made
# there and never travels. Hosts whose credentials are already usable are
# left alone. Then run examples/mpirun.sh.
#
#   HOSTFILE=hosts TLSHIM_SERVER=head:7443 examples/enroll-hosts.sh
#
# Settings (environment): HOSTFILE, TLSHIM_SERVER (HOST:PORT of serve, as
# the hosts reach it), TLSHIM_CA (/etc/tlshim/ca), TLSHIM_DIR (/etc/tlshim,
# on each host), TLSHIM_KEYS (tlshim-keys, here and on each host), SSH
# (ssh), TLSHIM_TOKEN_TTL (10m).
set -eu
: "${HOSTFILE:?set HOSTFILE}" "${TLSHIM_SERVER:?set TLSHIM_SERVER}"
: "${TLSHIM_CA:=/etc/tlshim/ca}" "${TLSHIM_DIR:=/etc/tlshim}"
: "${TLSHIM_KEYS:=tlshim-keys}" "${SSH:=ssh}" "${TLSHIM_TOKEN_TTL:=10m}"
hosts=$(awk '!/^[ \t]*#/ && NF { print $1 }' "$HOSTFILE" | sort -u)
[ -n "$hosts" ] || { echo "enroll-hosts: no hosts in $HOSTFILE" >&2; exit 1; }
list=$(echo "$hosts" | paste -sd, -)
count=$(echo "$hosts" | wc -l)
pin=$("$TLSHIM_KEYS" pin --ca "$TLSHIM_CA")
token=$("$TLSHIM_KEYS" token --ca "$TLSHIM_CA" --uses "$count" --node "$list" \
    --ttl "$TLSHIM_TOKEN_TTL" 2>/dev/null)
failed=0
for host in $hosts; do
	printf '%s\n' "$token" | $SSH "$host" "$TLSHIM_KEYS show $TLSHIM_DIR \
	    >/dev/null 2>&1 && echo '$host: already enrolled' || $TLSHIM_KEYS \
	    join --server $TLSHIM_SERVER --pin $pin --node $host \
	    --out $TLSHIM_DIR --token-file - --force" || {
		echo "enroll-hosts: $host did not enroll" >&2
		failed=1
	}
done
exit $failed
