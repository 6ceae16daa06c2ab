# Tollgate: one non-recursive Makefile.  Objects go to $(BUILD) (build/ or
# build/asan/), with -MMD -MP dependency files.

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
CC      ?= cc

WARN    = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
          -Wmissing-prototypes -Wformat=2
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(CFLAGS) $(WARN) $(EXTRA_CFLAGS) -I. -MMD -MP
LDLIBS  = -lconfig -ljansson -lcurl -lcrypto -lz -lbrotlidec -lzstd \
          $(EXTRA_LDFLAGS)
# Only admin/pg.c includes libpq-fe.h, and only what links it (the server,
# the unit tests) needs libpq.
PQ_CFLAGS := $(shell pkg-config --cflags libpq 2>/dev/null)
PQLIBS  = -lpq

CORE_SRC   := $(wildcard core/*.c)
SHM_SRC    := $(wildcard shm/*.c)
SERVER_SRC := $(filter-out master/main.c,$(wildcard master/*.c worker/*.c admin/*.c))
LIB_SRC    := $(CORE_SRC) $(SHM_SRC) $(SERVER_SRC)
UNIT_SRC   := $(wildcard tests/unit/*.c)
INTEG_SRC  := $(wildcard tests/integration/*.c)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
BENCH_SRC  := $(wildcard tests/bench/*.c)
CTL_SRC    := $(wildcard tools/tollctl_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

# The SQL of sql/ embedded into the binary (admin/store.c applies it).
SQL_FILES := $(sort $(wildcard sql/migrations/*.sql sql/functions/*.sql \
                               sql/views/*.sql))
SQL_DIRS  := $(wildcard sql/migrations sql/functions sql/views)
SQL_GEN   := $(BUILD)/gen/sql.c
SQL_OBJ   := $(BUILD)/obj/gen/sql.o

TOLLGATE   := $(BUILD)/tollgate
MOCK       := $(BUILD)/mock-upstream
LOADGEN    := $(BUILD)/loadgen
UNIT       := $(BUILD)/unit-tests
INTEG      := $(BUILD)/integration-tests
MICRO      := $(BUILD)/microbench
TOLLCTL    := $(BUILD)/tollctl
BINS       := $(TOLLGATE) $(MOCK) $(LOADGEN) $(TOLLCTL)

.PHONY: all deps run test unit integration asan bench fuzz clean install \
        check format check-format

all: $(BINS)

deps:
	@tools/deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj/admin/pg.o: ALL_CFLAGS += $(PQ_CFLAGS)

$(SQL_GEN): tools/embed-sql.sh $(SQL_FILES) $(SQL_DIRS) conf/prices.json
	@mkdir -p $(dir $@)
	tools/embed-sql.sh $@

$(SQL_OBJ): $(SQL_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(TOLLGATE): $(call obj,master/main.c $(LIB_SRC)) $(SQL_OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS) $(PQLIBS)

$(MOCK): $(call obj,tools/mock-upstream.c tools/mock-fault.c tools/mock-respond.c \
                  tools/mock-encode.c $(CORE_SRC))
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS) -lbrotlienc

$(LOADGEN): $(call obj,tools/loadgen.c $(CORE_SRC))
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(TOLLCTL): $(call obj,tools/tollctl.c $(CTL_SRC))
	$(CC) $(ALL_CFLAGS) -o $@ $^ -ljansson -lcurl $(EXTRA_LDFLAGS)

$(UNIT): $(call obj,$(UNIT_SRC) $(LIB_SRC) $(CTL_SRC)) $(SQL_OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS) $(PQLIBS) -lbrotlienc -lcunit

$(INTEG): $(call obj,$(INTEG_SRC) $(CORE_SRC))
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(MICRO): $(call obj,$(BENCH_SRC) $(LIB_SRC)) $(SQL_OBJ)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS) $(PQLIBS)

# `make test`: deps, build, unit tests, integration tests, one summary line.
test: deps
	@$(MAKE) --no-print-directory check
	@$(MAKE) --no-print-directory check-format
	@$(MAKE) --no-print-directory $(BINS) $(UNIT) $(INTEG)
	@tools/run-tests.sh $(BUILD)

unit: $(UNIT)
	$(UNIT)

integration: $(BINS) $(INTEG)
	$(INTEG)

ASAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all \
             -fno-omit-frame-pointer

asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan CFLAGS="-O1 -g" \
	    EXTRA_CFLAGS="$(ASAN_FLAGS)" EXTRA_LDFLAGS="$(ASAN_FLAGS)" \
	    build/asan/tollgate build/asan/mock-upstream build/asan/loadgen \
	    build/asan/tollctl \
	    build/asan/unit-tests build/asan/integration-tests
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1 tools/run-tests.sh build/asan

bench: deps all $(MICRO)
	@tools/bench.sh $(BUILD)

FUZZ_TIME ?= 30
fuzz: deps
	@tools/fuzz.sh $(FUZZ_TIME)

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin \
	    $(DESTDIR)$(PREFIX)/share/tollgate $(DESTDIR)$(PREFIX)/etc/tollgate
	install -m 0755 $(TOLLGATE) $(DESTDIR)$(PREFIX)/sbin/tollgate
	install -m 0755 $(MOCK) $(DESTDIR)$(PREFIX)/bin/tollgate-mock-upstream
	install -m 0755 $(TOLLCTL) $(DESTDIR)$(PREFIX)/bin/tollctl
	install -m 0644 conf/tollgate.conf $(DESTDIR)$(PREFIX)/etc/tollgate/tollgate.conf.default
	cp -r docs $(DESTDIR)$(PREFIX)/share/tollgate/

run: deps all
	@tools/run.sh $(BUILD)

# Layering rules: shm/ includes only libc; only admin's database module
# (admin/pg.c, admin/pg.h) includes libpq; only the curl glue
# (core/ev_curl), the proxy and the health checker include curl.
check:
	@! grep -n '#include "' shm/*.c shm/*.h 2>/dev/null | grep -v '"shm/' \
	    || (echo "shm/ must include only libc and shm/ headers"; exit 1)
	@! grep -ln '#include.*libpq-fe.h' $$(git ls-files '*.c' '*.h') | grep -v '^admin/pg\.c$$' \
	    || (echo "only admin/pg.c may include libpq-fe.h"; exit 1)
	@! grep -ln '#include.*curl/curl.h' $$(git ls-files '*.c' '*.h') \
	    | grep -v '^\(core/ev_curl\.[ch]\|worker/proxy\(_send\)\?\.c\|worker/proxy_int\.h\|admin/health\.c\|tools/tollctl.*\.c\)$$' \
	    || (echo "only core/ev_curl, the worker proxy, admin/health.c and tollctl may include curl/curl.h"; exit 1)
	@! grep -n '#include "\(worker\|admin\|master\)/' core/*.c core/*.h \
	    || (echo "core/ must not depend on worker, admin or master"; exit 1)
	@echo "layering ok"

SRC_ALL = $(shell git ls-files '*.c' '*.h')
format:
	clang-format -i $(SRC_ALL)

check-format:
	@clang-format --dry-run --Werror $(SRC_ALL)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
