# The systemd units verify: tlshim-serve.service (the enrollment server as
# a dedicated user, hardened, the CA directory its only writable place)
# and on nodes tlshim-renew and tlshim-crl, each a service with its timer.
# systemd-analyze verify reports nothing for any of them, with the
# commands they run and the manual page they name in place.
. tests/e2e/lib.sh
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing"
mkdir -p "$T/units" "$T/man/man1"
cp tools/man/tlshim-keys.1 "$T/man/man1/"
for f in tools/systemd/*.service tools/systemd/*.timer; do
	sed "s|/usr/bin/tlshim-keys|$BUILD/tlshim-keys|" "$f" >"$T/units/${f##*/}"
done
(cd "$T/units" && MANPATH=$T/man systemd-analyze verify ./*.service ./*.timer) \
    >"$T/verify" 2>&1 || fail "systemd-analyze verify failed: $(cat "$T/verify")"
[ ! -s "$T/verify" ] || fail "systemd-analyze verify: $(cat "$T/verify")"
grep -q '^User=tlshim' tools/systemd/tlshim-serve.service &&
    grep -q '^ProtectSystem=strict' tools/systemd/tlshim-serve.service &&
    grep -q '^NoNewPrivileges=yes' tools/systemd/tlshim-serve.service &&
    grep -q '^ReadWritePaths=/var/lib/tlshim' tools/systemd/tlshim-serve.service ||
    fail "tlshim-serve.service is not hardened as documented"
echo "units: $(ls "$T/units" | wc -l) units verify"
exit 0
