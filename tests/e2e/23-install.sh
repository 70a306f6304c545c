# The README's install step: make install puts the library and both tools
# under PREFIX (staged with DESTDIR), they run from there, and make
# uninstall takes exactly them away.
. tests/e2e/lib.sh
stage=$T/stage
make --no-print-directory -s BUILD="$BUILD" DESTDIR="$stage" PREFIX=/usr/local \
    install >/dev/null || fail "make install failed"
for f in lib/libtlshim.so bin/tlshim-keys bin/tlshim-bench; do
	[ -f "$stage/usr/local/$f" ] || fail "make install did not install $f"
done
[ "$(stat -c %a "$stage/usr/local/lib/libtlshim.so")" = 644 ] || fail "library mode"
[ "$(stat -c %a "$stage/usr/local/bin/tlshim-keys")" = 755 ] || fail "tool mode"
"$stage/usr/local/bin/tlshim-keys" --help | grep -q "join" ||
    fail "the installed tlshim-keys does not run"
echo hello | TLSHIM=0 \
    LD_PRELOAD="${SAN_PRELOAD:+$SAN_PRELOAD:}$stage/usr/local/lib/libtlshim.so" cat |
    grep -q hello || fail "the installed library does not preload"
make --no-print-directory -s BUILD="$BUILD" DESTDIR="$stage" PREFIX=/usr/local \
    uninstall >/dev/null || fail "make uninstall failed"
left=$(find "$stage" -type f | wc -l)
[ "$left" = 0 ] || fail "make uninstall left $left files"
echo "install: 3 files under PREFIX, runnable; uninstall removed them"
exit 0
