# The Debian package: `make deb` builds it with debhelper and lintian
# accepts it without an error; installed with dpkg, `man tlshim-keys`
# finds its page, `tlshim --check` works, and `tlshim --dir DIR socat ...`
# from the package protects a transfer between two nodes (no marker on
# the wire); purged, it leaves none of its files.
. tests/e2e/lib.sh
need_root
dpkg-query -W -f='${Status}' tlshim 2>/dev/null | grep -q "ok installed" &&
    skip "a tlshim package is installed on this machine already"
make --no-print-directory -s BUILD="$BUILD" deb >"$T/deb.log" 2>&1 ||
    fail "make deb failed: $(tail -n 20 "$T/deb.log")"
deb=$(ls "$BUILD"/deb/tlshim_*_*.deb)
installed=0
cleanup_package() {
	[ $installed = 0 ] || dpkg --purge tlshim >/dev/null 2>&1 || true
}
trap 'cleanup_package; cleanup' EXIT
dpkg -i "$deb" >"$T/dpkg.log" 2>&1 || fail "dpkg -i failed: $(cat "$T/dpkg.log")"
installed=1
man -w tlshim-keys >/dev/null 2>&1 || fail "man does not find tlshim-keys"
man -w 7 tlshim >/dev/null 2>&1 || fail "man does not find tlshim(7)"
make_nodes
make_creds
/usr/bin/tlshim --check --dir "$T/a" >/dev/null || fail "tlshim --check failed"
make_marked_file "$T/data" 1000000
capture_start package
bg on_b env TLSHIM_LOG=info TLSHIM_LOG_FILE=$T/b.log /usr/bin/tlshim \
    --dir "$T/b" socat -u TCP4-LISTEN:7970,reuseaddr OPEN:"$T/got",creat
wait_port_or_fail b 7970
on_a env TLSHIM_LOG=info TLSHIM_LOG_FILE=$T/a.log /usr/bin/tlshim --dir "$T/a" \
    socat -u OPEN:"$T/data" TCP4:$IP_B:7970 || fail "the transfer failed"
wait_bg 20 || true
capture_stop
cmp -s "$T/data" "$T/got" || fail "the bytes differ"
capture_has package "$MARKER" && fail "plaintext on the wire"
grep -q "protected as client" "$T/a.log" || fail "not protected"
dpkg --purge tlshim >"$T/purge.log" 2>&1 || fail "dpkg --purge failed"
installed=0
for f in /usr/bin/tlshim /usr/bin/tlshim-keys /usr/lib/tlshim/libtlshim.so \
    /usr/share/man/man1/tlshim-keys.1.gz /usr/lib/systemd/system/tlshim-serve.service; do
	[ ! -e "$f" ] || fail "$f is still there after purge"
done
echo "package: built, lintian clean of errors, installed, protected a" \
    "transfer through /usr/bin/tlshim, purged"
exit 0
