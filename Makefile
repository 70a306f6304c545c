# tlshim: mutual TLS for unmodified distributed-training jobs.
# make [all] | check | unit | e2e | demo | bench | install | uninstall |
#      clean | asan | ubsan | valgrind | fuzz | instructions |
#      instructions-baseline | deb | check-stacks
# Variables: PREFIX, DESTDIR, CC (gcc or clang), BUILD (output folder),
# E2E_ONLY / E2E_SKIP (e2e test names), FUZZ_SECONDS, BENCH_ARGS, V=1
# (show the commands).

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DESTDIR ?=
CC ?= cc
BUILD ?= build
OPT ?= -O2 -g
SAN ?=

PKGS := wolfssl libsodium
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lwolfssl -lsodium)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)

CFLAGS ?=
CFLAGS += $(OPT) $(SAN) -std=gnu11 -Wall -Wextra -Werror -Wshadow \
	-Wno-missing-field-initializers -fPIC -fvisibility=hidden \
	-D_FORTIFY_SOURCE=2 -fstack-protector-strong -MMD -MP $(PKG_CFLAGS)
LDFLAGS += $(SAN) -Wl,-z,relro,-z,now

ifeq ($(V),1)
Q :=
else
Q := @
endif

SHIM_CORE := real log config policy decide identity record creds handshake \
	fdtab \
	conn conn_send conn_recv conn_close conn_handshake \
	fdclass \
	uring_guard progress \
	readiness epollset
SHIM_HOOKS := shim hooks_socket hooks_io hooks_poll
CORE_OBJS := $(SHIM_CORE:%=$(BUILD)/shim/%.o)
HOOK_OBJS := $(SHIM_HOOKS:%=$(BUILD)/shim/%.o)
KEYS_SRCS := $(wildcard tools/keys/*.c)
KEYS_OBJS := $(KEYS_SRCS:%.c=$(BUILD)/%.o)
BENCH_SRCS := tools/bench/main.c tools/bench/measure.c tools/bench/report.c \
	tools/bench/netns.c tools/bench/small.c
BENCH_OBJS := $(BENCH_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
PROG_SRCS := $(wildcard tests/progs/*.c)
PROG_BINS := $(PROG_SRCS:tests/progs/%.c=$(BUILD)/tests/%)

BENCH_POLICY := $(BUILD)/bench-policy
BENCH_DATAPATH := $(BUILD)/bench-datapath
INSTRUCTIONS_BASELINE := tools/bench/instructions.baseline
LIB := $(BUILD)/libtlshim.so
WRAPPER := $(BUILD)/tlshim
KEYS := $(BUILD)/tlshim-keys
BENCH := $(BUILD)/tlshim-bench

.PHONY: all deps check unit e2e demo bench install uninstall clean asan \
	ubsan valgrind fuzz deb check-stacks instructions instructions-baseline
.SECONDARY:

all: deps $(LIB) $(KEYS) $(BENCH) $(WRAPPER)

# The wrapper command is a script: it finds the library beside itself.
$(WRAPPER): tools/tlshim
	@mkdir -p $(dir $@)
	$(Q)install -m 0755 $< $@

deps:
	$(Q)tools/deps.sh build

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libtlshim_core.a: $(CORE_OBJS)
	$(Q)ar rcs $@ $^

$(LIB): $(CORE_OBJS) $(HOOK_OBJS) shim/tlshim.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -o $@ $(CORE_OBJS) $(HOOK_OBJS) $(LDFLAGS) \
		-Wl,--version-script=shim/tlshim.map $(PKG_LIBS) -ldl -lpthread

$(KEYS): $(KEYS_OBJS) $(BUILD)/libtlshim_core.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $(KEYS_OBJS) $(BUILD)/libtlshim_core.a $(LDFLAGS) \
		$(PKG_LIBS) -ldl -lpthread

$(BENCH_POLICY): $(BUILD)/tools/bench/policy.o $(BUILD)/libtlshim_core.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $< $(BUILD)/libtlshim_core.a $(LDFLAGS) $(PKG_LIBS) \
		-ldl -lpthread

$(BENCH_DATAPATH): $(BUILD)/tools/bench/datapath.o $(BUILD)/libtlshim_core.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $< $(BUILD)/libtlshim_core.a $(LDFLAGS) $(PKG_LIBS) \
		-ldl -lpthread

$(BENCH): $(BENCH_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $(BENCH_OBJS) $(LDFLAGS) -lpthread -lm

# The enrollment messages live with tlshim-keys; their test links them.
$(BUILD)/tests/test_message: $(BUILD)/tools/keys/message.o

$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(BUILD)/libtlshim_core.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $< $(filter $(BUILD)/tools/%.o,$^) \
		$(BUILD)/libtlshim_core.a $(LDFLAGS) $(PKG_LIBS) \
		$(CHECK_LIBS) -ldl -lpthread

# The suite probe speaks TLS itself.
$(BUILD)/tests/suite_probe: PROG_LIBS = $(PKG_LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/progs/%.o
	$(Q)$(CC) -o $@ $< $(LDFLAGS) $(PROG_LIBS) -lpthread

check: all
	$(Q)tools/deps.sh test
	$(Q)$(MAKE) --no-print-directory unit e2e

unit: $(UNIT_BINS) $(KEYS)
	$(Q)TLSHIM_KEYS=$(KEYS) tests/run-unit $(UNIT_BINS)

e2e: $(LIB) $(KEYS) $(PROG_BINS)
	$(Q)BUILD=$(BUILD) tests/run-e2e

demo: all
	$(Q)tools/deps.sh demo
	$(Q)BUILD=$(BUILD) examples/demo.sh

# The overhead tool on two network namespaces; BENCH_ARGS adds options.
bench: all $(BENCH_POLICY) $(BENCH_DATAPATH)
	$(Q)tools/deps.sh test
	$(Q)$(BENCH_POLICY)
	$(Q)tools/bench/instructions.sh $(BENCH_DATAPATH) $(INSTRUCTIONS_BASELINE) \
		|| true
	$(Q)$(BENCH) --json $(BUILD)/bench.json --csv $(BUILD)/bench.csv \
		--svg $(BUILD)/bench.svg $(BENCH_ARGS)

# Instructions per data-path operation (callgrind) against the committed
# baseline: fails when one rose by more than the baseline's margin. A
# change meant to cost more writes a new baseline with
# instructions-baseline.
instructions: $(BENCH_DATAPATH)
	$(Q)tools/bench/instructions.sh $(BENCH_DATAPATH) $(INSTRUCTIONS_BASELINE)

instructions-baseline: $(BENCH_DATAPATH)
	$(Q)tools/bench/instructions.sh $(BENCH_DATAPATH) \
		$(INSTRUCTIONS_BASELINE) --update

# Sanitizer builds run the unit tests and the end-to-end tests (the
# library preloaded into the real programs, behind the ASan runtime and
# libstdc++, whose exceptions ASan must see from the start in programs
# that load C++ later, like Python with torch); the demo and the
# benchmark measure time, the memory scan cannot read terabytes of
# sanitizer shadow, the tlshim wrapper preloads the library without the
# sanitizer's runtime, and the package is built with the plain
# toolchain: they are left to the plain run.
SAN_E2E_SKIP := 11-demo 13-bench 22-secrets 32-wrapper 36-package
asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan OPT="-O1 -g" \
		SAN="-fsanitize=address -fno-omit-frame-pointer" all unit
	$(Q)SAN_PRELOAD=$$($(CC) -print-file-name=libasan.so):$$($(CC) \
		-print-file-name=libstdc++.so.6) \
		ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0:allocator_may_return_null=1 \
		E2E_SKIP="$(SAN_E2E_SKIP)" $(MAKE) --no-print-directory \
		BUILD=build/asan OPT="-O1 -g" \
		SAN="-fsanitize=address -fno-omit-frame-pointer" e2e

ubsan:
	$(Q)$(MAKE) --no-print-directory BUILD=build/ubsan OPT="-O1 -g" \
		SAN="-fsanitize=undefined -fno-sanitize-recover=all" all unit
	$(Q)E2E_SKIP="$(SAN_E2E_SKIP)" $(MAKE) --no-print-directory \
		BUILD=build/ubsan OPT="-O1 -g" \
		SAN="-fsanitize=undefined -fno-sanitize-recover=all" e2e

valgrind: all $(UNIT_BINS)
	$(Q)TLSHIM_KEYS=$(KEYS) VALGRIND=1 tests/run-unit $(UNIT_BINS)

# libFuzzer targets (clang): each runs FUZZ_SECONDS on a copy of its seed
# corpus from tests/fuzz/corpus.
FUZZ_SECONDS ?= 60
# Under BUILD (build/fuzz by default), with its own compiler flags.
FUZZ_BUILD = $(if $(filter build,$(BUILD)),build/fuzz,$(BUILD)/fuzz)
FUZZ_TARGETS := record policy config enroll identity
# Sources outside the core library that targets parse with.
FUZZ_SOURCES := tools/keys/message.c
fuzz:
	$(Q)tools/deps.sh fuzz
	$(Q)$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang OPT="-O1 -g" \
		SAN="-fsanitize=fuzzer-no-link,address" $(FUZZ_BUILD)/libtlshim_core.a
	$(Q)for t in $(FUZZ_TARGETS); do \
		clang -O1 -g -fsanitize=fuzzer,address -o $(FUZZ_BUILD)/fuzz_$$t \
			tests/fuzz/fuzz_$$t.c $(FUZZ_SOURCES) \
			$(FUZZ_BUILD)/libtlshim_core.a \
			$(PKG_LIBS) -ldl -lpthread || exit 1; \
		rm -rf $(FUZZ_BUILD)/corpus_$$t; \
		cp -r tests/fuzz/corpus/$$t $(FUZZ_BUILD)/corpus_$$t; \
		echo "fuzz_$$t: $(FUZZ_SECONDS) s"; \
		$(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
			-print_final_stats=1 $(FUZZ_BUILD)/corpus_$$t \
			>$(FUZZ_BUILD)/fuzz_$$t.log 2>&1; rc=$$?; \
		grep "stat::number_of_executed_units" $(FUZZ_BUILD)/fuzz_$$t.log; \
		if [ $$rc != 0 ]; then tail -n 40 $(FUZZ_BUILD)/fuzz_$$t.log; exit 1; fi; \
	done

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(BINDIR)
	install -m 0644 $(LIB) $(DESTDIR)$(LIBDIR)/libtlshim.so
	install -m 0755 $(KEYS) $(DESTDIR)$(BINDIR)/tlshim-keys
	install -m 0755 $(BENCH) $(DESTDIR)$(BINDIR)/tlshim-bench
	install -m 0755 $(WRAPPER) $(DESTDIR)$(BINDIR)/tlshim
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7
	install -m 0644 tools/man/tlshim.1 tools/man/tlshim-keys.1 \
		tools/man/tlshim-bench.1 $(DESTDIR)$(MANDIR)/man1
	install -m 0644 tools/man/tlshim.7 $(DESTDIR)$(MANDIR)/man7

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libtlshim.so $(DESTDIR)$(BINDIR)/tlshim-keys \
		$(DESTDIR)$(BINDIR)/tlshim-bench $(DESTDIR)$(BINDIR)/tlshim \
		$(DESTDIR)$(MANDIR)/man1/tlshim.1 \
		$(DESTDIR)$(MANDIR)/man1/tlshim-keys.1 \
		$(DESTDIR)$(MANDIR)/man1/tlshim-bench.1 \
		$(DESTDIR)$(MANDIR)/man7/tlshim.7

# The stacks people run today, from PyPI (make check stays Debian-only):
# a virtualenv of the pyenv python3 with pinned versions, then
# tests/stacks across the two namespaces.
STACKS_VENV ?= $(BUILD)/stacks-venv
STACKS_PYTHON ?= $(shell command -v pyenv >/dev/null 2>&1 && \
	pyenv which python3 2>/dev/null || echo python3)
check-stacks: all $(PROG_BINS)
	$(Q)tools/deps.sh stacks
	$(Q)[ -x $(STACKS_VENV)/bin/python ] || \
		$(STACKS_PYTHON) -m venv $(STACKS_VENV)
	$(Q)$(STACKS_VENV)/bin/pip install -q torch==2.13.0 numpy ray==2.60.0 \
		mpi4py==4.1.2
	$(Q)BUILD=$(BUILD) E2E_DIR=tests/stacks \
		TORCH_PYTHON=$(abspath $(STACKS_VENV))/bin/python tests/run-e2e

# A Debian package built the Debian way (debhelper, dpkg-buildpackage) from
# a copy of the tree with tools/debian as its debian/ directory; lintian
# checks it. The .deb lands in $(BUILD)/deb.
deb:
	$(Q)tools/deps.sh deb
	$(Q)rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb/tlshim
	$(Q)tar -c --exclude=./build --exclude=./.git . | tar -x -C $(BUILD)/deb/tlshim
	$(Q)cp -r tools/debian $(BUILD)/deb/tlshim/debian
	$(Q)cd $(BUILD)/deb/tlshim && dpkg-buildpackage -us -uc -b >../build.log 2>&1 || \
		{ tail -n 30 ../build.log; exit 1; }
	$(Q)lintian --fail-on error $(BUILD)/deb/*.deb
	@ls $(BUILD)/deb/*.deb

clean:
	rm -rf $(BUILD) build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
