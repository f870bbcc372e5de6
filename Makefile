# peerfs - see README.md.  `make demo`, `make test`, `make bench`, `make fuzz`.
CC      ?= cc
PKGS    := fuse3 libsodium libuv inih libmicrohttpd
CFLAGS  ?= -O2 -g
CFLAGS  += $(SAN) -std=gnu11 -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE \
           -D_FILE_OFFSET_BITS=64 -I. -I/usr/include/liberasurecode \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -MMD -MP
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -llmdb -lerasurecode -lpthread -lm \
           -lopendht-c -lopendht -lstdc++ -lnatpmp -lminiupnpc
# The one C++ file: net/dht_run.cc binds OpenDHT's runner to one address.
CXX     := g++
CXXFLAGS ?= -O2 -g
CXXFLAGS += $(SAN) -std=c++17 -Wall -Wextra -Wno-unused-parameter -I. \
           $(shell pkg-config --cflags opendht 2>/dev/null) -MMD -MP
PYTEST  := /usr/bin/python3 -m pytest
B       ?= build
BIN     ?= peerfs

LIB_SRC := log.c strbuf.c worker.c $(sort $(wildcard crypto/*.c store/*.c net/*.c owner/*.c \
    sim/*.c fs/*.c cli/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o) $(B)/net/dht_run.o
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_OBJ := $(UNIT_SRC:%.c=$(B)/%.o) $(B)/tests/unit/runner.o \
    $(B)/tests/unit/testutil.o

.PHONY: install deb test-deb all deps test test-asan unit integ fuzz fuzz-short \
        demo demo-stop bench durability check-layers clean man
all: $(BIN) man

deps:
	@scripts/install-deps

$(BIN): $(B)/peerfs.o $(LIB_OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The manual pages and the bash completion, written by the binary from its
# option table (cli/manual.c), so they cannot drift from it.
MAN := $(B)/man/peerfs.1 $(B)/man/peerfs.conf.5 $(B)/man/mount.peerfs.8
man: $(MAN) $(B)/completion/peerfs
$(B)/man/%: $(BIN)
	@mkdir -p $(dir $@)
	./$(BIN) help --man $(subst .,,$(suffix $@)) > $@.tmp && mv $@.tmp $@
$(B)/completion/peerfs: $(BIN)
	@mkdir -p $(dir $@)
	./$(BIN) help --bash-completion > $@.tmp && mv $@.tmp $@

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c -o $@ $<

$(B)/tests/unit/suites.inc: $(UNIT_SRC)
	@mkdir -p $(dir $@)
	@for f in $(UNIT_SRC); do n=$${f##*/test_}; echo "SUITE($${n%.c})"; done > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp

$(B)/tests/unit/runner.o: tests/unit/runner.c $(B)/tests/unit/suites.inc
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(B)/tests/unit -c -o $@ $<

$(B)/unit_tests: $(UNIT_OBJ) $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# A hostile peer speaking the real protocol, for tests/integ/test_strangers.py.
$(B)/peerfs_attack: $(B)/tests/tools/peerfs_attack.o $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The CPU the format and the wire require per GB, no I/O: for make bench.
$(B)/crypto_floor: $(B)/tests/tools/crypto_floor.o $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The least kernel work moving the bytes needs per GB: for make bench.
$(B)/io_floor: tests/tools/io_floor.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

# A link's delay (NFQUEUE), for tests/integ/test_home_links.py: no netem here.
$(B)/nfq_delay: tests/tools/nfq_delay.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< -lnetfilter_queue

unit: $(B)/unit_tests peerfs
	$(B)/unit_tests

integ: peerfs $(B)/peerfs_attack $(B)/nfq_delay $(B)/crypto_floor $(B)/io_floor
	$(PYTEST) -q -p no:cacheprovider tests/integ $(PYTEST_ARGS)

# libFuzzer targets: the frame and message parser, and the DHT node
# record decoder (needs clang).
FUZZ_SRC := tests/fuzz/fuzz_wire.c net/wire.c log.c
FUZZ_REC_SRC := tests/fuzz/fuzz_record.c net/record.c
FUZZ_CC := clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. \
    -I/usr/include/liberasurecode
$(B)/fuzz_wire: $(FUZZ_SRC) net/internal.h
	@mkdir -p $(B)
	$(FUZZ_CC) -o $@ $(FUZZ_SRC) -lsodium
$(B)/fuzz_record: $(FUZZ_REC_SRC) net/dht.h
	@mkdir -p $(B)
	$(FUZZ_CC) -o $@ $(FUZZ_REC_SRC) -lsodium
# And one for the handshake messages (crypto/handshake.c).
HS_FUZZ_SRC := tests/fuzz/fuzz_hs.c crypto/handshake.c
$(B)/fuzz_hs: $(HS_FUZZ_SRC) crypto/crypto.h
	@mkdir -p $(B)
	$(FUZZ_CC) -o $@ $(HS_FUZZ_SRC) -lsodium
fuzz: $(B)/fuzz_wire $(B)/fuzz_record $(B)/fuzz_hs
	@mkdir -p $(B)/fuzz-corpus $(B)/fuzz-corpus-record $(B)/fuzz-hs-corpus
	$(B)/fuzz_wire -max_total_time=$${FUZZ_SECONDS:-300} $(B)/fuzz-corpus tests/fuzz/seeds
	$(B)/fuzz_record -max_total_time=$${FUZZ_SECONDS:-300} \
	    $(B)/fuzz-corpus-record tests/fuzz/seeds_record
	$(B)/fuzz_hs -max_total_time=$${FUZZ_SECONDS:-300} $(B)/fuzz-hs-corpus
# Each target for FUZZ_SECONDS (default 30; the record target for a third
# of that: its input is small).
fuzz-short:
	@if command -v clang >/dev/null; then \
	    $(MAKE) --no-print-directory $(B)/fuzz_wire $(B)/fuzz_record $(B)/fuzz_hs && \
	    mkdir -p $(B)/fuzz-corpus $(B)/fuzz-corpus-record $(B)/fuzz-hs-corpus && \
	    $(B)/fuzz_wire -max_total_time=$${FUZZ_SECONDS:-30} -print_final_stats=0 \
	        $(B)/fuzz-corpus tests/fuzz/seeds 2>$(B)/fuzz.log && \
	    $(B)/fuzz_record -max_total_time=$$(( ($${FUZZ_SECONDS:-30} + 2) / 3 )) \
	        -print_final_stats=0 $(B)/fuzz-corpus-record tests/fuzz/seeds_record \
	        2>>$(B)/fuzz.log && \
	    $(B)/fuzz_hs -max_total_time=$${FUZZ_SECONDS:-30} -print_final_stats=0 \
	        $(B)/fuzz-hs-corpus 2>>$(B)/fuzz.log && \
	    echo "fuzz: 3 passed, 0 failed ($$(grep -c . $(B)/fuzz.log) log lines)" || \
	    { tail -40 $(B)/fuzz.log; echo "fuzz: 0 passed, 1 failed"; exit 1; }; \
	else echo "fuzz: clang not installed, fuzz targets not run (SKIP)"; fi

# Every suite runs even when an earlier one fails; the exit status says.
test: deps
	@$(MAKE) --no-print-directory all $(B)/unit_tests $(B)/peerfs_attack \
	    $(B)/nfq_delay $(B)/crypto_floor $(B)/io_floor
	@rc=0; \
	$(MAKE) --no-print-directory check-layers || rc=1; \
	$(B)/unit_tests || rc=1; \
	$(MAKE) --no-print-directory fuzz-short || rc=1; \
	$(PYTEST) -q -p no:cacheprovider tests/integ $(PYTEST_ARGS) || rc=1; \
	if [ $$rc -ne 0 ]; then echo "make test: FAILED"; fi; exit $$rc

# The unit tests and the integration tests named in ASAN_TESTS, against a
# build with AddressSanitizer and UndefinedBehaviorSanitizer (build-asan/,
# peerfs-asan): any report fails the run. Leak checks stay on for the unit
# tests; the daemons are killed by signal in some tests, so not for them.
ASAN_TESTS ?= tests/integ/test_core.py tests/integ/test_posix.py \
    tests/integ/test_data.py tests/integ/test_maint.py \
    tests/integ/test_strangers.py tests/integ/test_accounts.py \
    tests/integ/test_ownerside.py
ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
    -fno-sanitize-recover=undefined
test-asan: deps
	@$(MAKE) --no-print-directory B=build-asan BIN=peerfs-asan \
	    SAN="$(ASAN_FLAGS)" peerfs-asan build-asan/unit_tests \
	    build-asan/peerfs_attack
	@rc=0; rm -f build-asan/asan.* build-asan/ubsan.*; \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 build-asan/unit_tests || rc=1; \
	PEERFS_BIN=$(CURDIR)/peerfs-asan \
	PEERFS_ATTACK=$(CURDIR)/build-asan/peerfs_attack PEERFS_RSS_BOUND_MIB=512 \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:log_path=$(CURDIR)/build-asan/asan \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(CURDIR)/build-asan/ubsan \
	    $(PYTEST) -q -p no:cacheprovider $(ASAN_TESTS) $(PYTEST_ARGS) || rc=1; \
	if ls build-asan/asan.* build-asan/ubsan.* >/dev/null 2>&1; then \
	    echo "sanitizer reports:"; head -60 build-asan/asan.* build-asan/ubsan.* 2>/dev/null; rc=1; fi; \
	if [ $$rc -ne 0 ]; then echo "make test-asan: FAILED"; fi; exit $$rc

# The layers point down only: cli -> fs -> owner -> net -> store -> crypto,
# and sim/ (the durability simulator) between cli/ and owner/, beside fs/.
# A layer includes headers of the layers below it, never of one above.
check-layers:
	@bad=$$(grep -n '#include "\(store\|net\|owner\|sim\|fs\|cli\)/' crypto/*.[ch]; \
	        grep -n '#include "\(net\|owner\|sim\|fs\|cli\)/' store/*.[ch]; \
	        grep -n '#include "\(owner\|sim\|fs\|cli\)/' net/*.[ch]; \
	        grep -n '#include "\(sim\|fs\|cli\)/' owner/*.[ch]; \
	        grep -n '#include "\(fs\|cli\)/' sim/*.[ch]; \
	        grep -n '#include "sim/' fs/*.[ch]; \
	        grep -n '#include "cli/' fs/*.[ch]); \
	if [ -n "$$bad" ]; then echo "layer violation:"; echo "$$bad"; exit 1; fi; \
	echo "check-layers: ok"

# PREFIX and DESTDIR as usual. mount(8) looks for its helpers in /sbin
# only, so mount.peerfs goes there unless SBINDIR says otherwise. Manual
# pages and the completion are installed when the build made them
# ($(B)/man, $(B)/completion); the units name /usr/bin/peerfs, rewritten
# to $(PREFIX)/bin.
PREFIX  ?= /usr/local
SBINDIR ?= /sbin
UNITDIR ?= $(PREFIX)/lib/systemd/system
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/peerfs
	ln -sf $(PREFIX)/bin/peerfs $(DESTDIR)$(SBINDIR)/mount.peerfs
	for u in systemd/*.service; do \
	    sed 's|/usr/bin/peerfs |$(PREFIX)/bin/peerfs |' $$u > $(DESTDIR)$(UNITDIR)/$${u##*/} && \
	    chmod 0644 $(DESTDIR)$(UNITDIR)/$${u##*/} || exit 1; done
	for s in 1 5 8; do for f in $(B)/man/*.$$s; do [ -f "$$f" ] || continue; \
	    install -d $(DESTDIR)$(PREFIX)/share/man/man$$s && \
	    install -m 0644 $$f $(DESTDIR)$(PREFIX)/share/man/man$$s/ || exit 1; done; done
	if [ -f $(B)/completion/peerfs ]; then \
	    install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions && \
	    install -m 0644 $(B)/completion/peerfs \
	        $(DESTDIR)$(PREFIX)/share/bash-completion/completions/peerfs; fi

# The Debian package (debian/), into $(B)/deb/. Its tools are installed
# here, not by `make deps`: `make test` does not need them.
DEB_TOOLS := debhelper dpkg-dev fakeroot lintian
deb:
	@missing=""; for p in $(DEB_TOOLS); do dpkg-query -W -f='$${Status}' $$p \
	    2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "deb: installing$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    --no-install-recommends $$missing >/dev/null || exit 1; fi
	dpkg-buildpackage -us -uc -b -j2
	@mkdir -p $(B)/deb
	rm -f $(B)/deb/peerfs*
	mv ../peerfs*_*.deb ../peerfs_*.buildinfo ../peerfs_*.changes $(B)/deb/
	lintian --fail-on error --info $(B)/deb/peerfs_*.changes

# Not part of `make test`: it needs a Debian mirror and minutes. Installs
# the package with apt on a bare Debian 12 root and mounts a demo with it.
test-deb: deb
	scripts/test-deb $(B)/deb

demo: deps all
	./peerfs demo $(DEMO_DIR)
demo-stop:
	./peerfs demo --stop $(DEMO_DIR)

bench: deps all $(B)/crypto_floor $(B)/io_floor
	CRYPTO_FLOOR=$(B)/crypto_floor IO_FLOOR=$(B)/io_floor /usr/bin/python3 tests/bench.py

# docs/durability.md and its plots from the durability simulator's own
# output (scripts/durability: two grids, a few minutes on 2 cores).
durability: deps all
	B=$(B) scripts/durability

clean:
	rm -rf build build-asan peerfs peerfs-asan

-include $(shell find $(B) -name '*.d' 2>/dev/null)
