# peerfs - see README.md.  `make demo`, `make test`, `make bench`, `make fuzz`.
CC      ?= cc
PKGS    := fuse3 libsodium libuv
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE \
           -D_FILE_OFFSET_BITS=64 -I. -I/usr/include/liberasurecode \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -MMD -MP
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -llmdb -lerasurecode -lpthread -lm
PYTEST  := /usr/bin/python3 -m pytest
B       := build

LIB_SRC := log.c strbuf.c worker.c $(sort $(wildcard crypto/*.c store/*.c net/*.c owner/*.c \
    fs/*.c cli/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_OBJ := $(UNIT_SRC:%.c=$(B)/%.o) $(B)/tests/unit/runner.o \
    $(B)/tests/unit/testutil.o

.PHONY: all deps test unit integ fuzz fuzz-short demo demo-stop bench \
        check-layers clean
all: peerfs

deps:
	@scripts/install-deps

peerfs: $(B)/peerfs.o $(LIB_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

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

unit: $(B)/unit_tests peerfs
	$(B)/unit_tests

integ: peerfs $(B)/peerfs_attack
	$(PYTEST) -q -p no:cacheprovider tests/integ $(PYTEST_ARGS)

# libFuzzer target for the frame and message parser (needs clang).
FUZZ_SRC := tests/fuzz/fuzz_wire.c net/wire.c log.c
$(B)/fuzz_wire: $(FUZZ_SRC) net/internal.h
	@mkdir -p $(B)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. \
	    -I/usr/include/liberasurecode -o $@ $(FUZZ_SRC) -lsodium
fuzz: $(B)/fuzz_wire
	@mkdir -p $(B)/fuzz-corpus
	$(B)/fuzz_wire -max_total_time=$${FUZZ_SECONDS:-300} $(B)/fuzz-corpus tests/fuzz/seeds
fuzz-short:
	@if command -v clang >/dev/null; then \
	    $(MAKE) --no-print-directory $(B)/fuzz_wire && mkdir -p $(B)/fuzz-corpus && \
	    $(B)/fuzz_wire -max_total_time=$${FUZZ_SECONDS:-30} -print_final_stats=0 \
	        $(B)/fuzz-corpus tests/fuzz/seeds 2>$(B)/fuzz.log && \
	    echo "fuzz: 1 passed, 0 failed ($$(grep -c . $(B)/fuzz.log) log lines)" || \
	    { tail -40 $(B)/fuzz.log; echo "fuzz: 0 passed, 1 failed"; exit 1; }; \
	else echo "fuzz: clang not installed, fuzz target not run (SKIP)"; fi

# Every suite runs even when an earlier one fails; the exit status says.
test: deps
	@$(MAKE) --no-print-directory all $(B)/unit_tests $(B)/peerfs_attack
	@rc=0; \
	$(MAKE) --no-print-directory check-layers || rc=1; \
	$(B)/unit_tests || rc=1; \
	$(MAKE) --no-print-directory fuzz-short || rc=1; \
	$(PYTEST) -q -p no:cacheprovider tests/integ $(PYTEST_ARGS) || rc=1; \
	if [ $$rc -ne 0 ]; then echo "make test: FAILED"; fi; exit $$rc

# The layers point down only: cli -> fs -> owner -> net -> store -> crypto.
# A layer includes headers of the layers below it, never of one above.
check-layers:
	@bad=$$(grep -n '#include "\(store\|net\|owner\|fs\|cli\)/' crypto/*.[ch]; \
	        grep -n '#include "\(net\|owner\|fs\|cli\)/' store/*.[ch]; \
	        grep -n '#include "\(owner\|fs\|cli\)/' net/*.[ch]; \
	        grep -n '#include "\(fs\|cli\)/' owner/*.[ch]; \
	        grep -n '#include "cli/' fs/*.[ch]); \
	if [ -n "$$bad" ]; then echo "layer violation:"; echo "$$bad"; exit 1; fi; \
	echo "check-layers: ok"

demo: deps all
	./peerfs demo $(DEMO_DIR)
demo-stop:
	./peerfs demo --stop $(DEMO_DIR)

bench: deps all
	/usr/bin/python3 tests/bench.py

clean:
	rm -rf $(B) peerfs

-include $(shell find $(B) -name '*.d' 2>/dev/null)
