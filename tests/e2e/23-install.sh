# The README's install step: make install puts the library, both tools,
# the tlshim wrapper and the manual pages under PREFIX (staged with DESTDIR), they run from
# there (the wrapper finds the library beside it), and make uninstall
# takes exactly them away.
. tests/e2e/lib.sh
stage=$T/stage
make --no-print-directory -s BUILD="$BUILD" DESTDIR="$stage" PREFIX=/usr/local \
    install >/dev/null || fail "make install failed"
for f in lib/libtlshim.so bin/tlshim-keys bin/tlshim-bench bin/tlshim \
    share/man/man1/tlshim.1 share/man/man1/tlshim-keys.1 \
    share/man/man1/tlshim-bench.1 share/man/man7/tlshim.7; do
	[ -f "$stage/usr/local/$f" ] || fail "make install did not install $f"
done
[ "$(stat -c %a "$stage/usr/local/lib/libtlshim.so")" = 644 ] || fail "library mode"
[ "$(stat -c %a "$stage/usr/local/bin/tlshim-keys")" = 755 ] || fail "tool mode"
"$stage/usr/local/bin/tlshim-keys" --help | grep -q "join" ||
    fail "the installed tlshim-keys does not run"
echo hello | TLSHIM=0 \
    LD_PRELOAD="${SAN_PRELOAD:+$SAN_PRELOAD:}$stage/usr/local/lib/libtlshim.so" cat |
    grep -q hello || fail "the installed library does not preload"
make_creds
# (A sanitizer build's library needs its runtime preloaded first, which
# the wrapper does not know of: checked in the plain run.)
if [ -z "${SAN_PRELOAD:-}" ]; then
	out=$(TLSHIM_LOG=info TLSHIM_LOG_FILE=$T/w.log "$stage/usr/local/bin/tlshim" \
	    --dir "$T/a" sh -c 'echo "$TLSHIM $LD_PRELOAD"') ||
	    fail "the installed wrapper did not run its command"
	[ "$out" = "1 $stage/usr/local/bin/../lib/libtlshim.so" ] ||
	    fail "the installed wrapper preloaded something else: $out"
fi
MANPATH=$stage/usr/local/share/man man -w tlshim-keys >/dev/null 2>&1 ||
    fail "man does not find the installed tlshim-keys page"
make --no-print-directory -s BUILD="$BUILD" DESTDIR="$stage" PREFIX=/usr/local \
    uninstall >/dev/null || fail "make uninstall failed"
left=$(find "$stage" -type f | wc -l)
[ "$left" = 0 ] || fail "make uninstall left $left files"
echo "install: 8 files under PREFIX (the manual pages too), runnable;" \
    "uninstall removed them"
exit 0
