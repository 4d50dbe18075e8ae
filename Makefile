# heapguard top-level build: library, command, tests, demo, benchmarks, install.
CC      ?= gcc
CFLAGS  ?= -O2 -g
PREFIX  ?= /usr/local
BUILD   := build
VERSION := 0.1.0

# The library is preloaded into arbitrary programs: hidden symbols by default,
# initial-exec TLS (no __tls_get_addr, which may malloc), and no builtin
# malloc-family folding (gcc would turn malloc+memset inside calloc into calloc).
LIB_CFLAGS := $(CFLAGS) -std=gnu11 -Wall -Wextra -fPIC -fvisibility=hidden \
	-ftls-model=initial-exec -fno-plt -pthread \
	-fno-builtin-malloc -fno-builtin-calloc -fno-builtin-realloc -fno-builtin-free \
	-Iinclude -Isrc -DHG_VERSION='"$(VERSION)"'
LIB_SRCS := $(wildcard src/os/*.c src/base/*.c src/alloc/*.c src/api/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
# The checking library: the same sources built with HG_CHECK (api/ then calls the checked heap),
# plus src/check/. It links libunwind, whose cached unwinding is ~15x faster than libgcc's,
# after libgcc_s: libunwind exports a copy of libgcc's _Unwind_* API, and loaded first it
# served libgcc's own unwinding of a cancelled thread, with libgcc's contexts: C cleanups were
# skipped (glibc's stdio unlocks) and the next use of the stream deadlocked.
CHECK_SRCS := $(LIB_SRCS) $(wildcard src/check/*.c)
CHECK_OBJS := $(CHECK_SRCS:%.c=$(BUILD)/obj-check/%.o)
CHECK_LIBS := -Wl,--push-state,--no-as-needed -lgcc_s -l:libunwind.so.8 -Wl,--pop-state

CLI_SRCS := $(wildcard src/cli/*.c)
# The command symbolizes with elfutils (libdw, libelf) and demangles with libstdc++'s
# __cxa_demangle; it reads check/records.h, the contract with the library.
CLI_LIBS := -ldw -lelf -lstdc++

.PHONY: all test demo bench install uninstall clean deps-build deps-test deps-bench
all: $(BUILD)/libheapguard.so $(BUILD)/libheapguard.a $(BUILD)/libheapguard-check.so $(BUILD)/heapguard

$(BUILD)/obj/%.o: %.c $(wildcard src/*/*.h include/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(BUILD)/obj-check/%.o: %.c $(wildcard src/*/*.h include/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -DHG_CHECK -c $< -o $@

# libunwind8 (the library) and libdw-dev (the command) are the packages the build needs
# beyond gcc and make.
$(BUILD)/libheapguard-check.so: $(CHECK_OBJS) | deps-build
	$(CC) -shared -o $@ $^ -pthread -Wl,-z,now -Wl,-soname,libheapguard-check.so -Wl,--no-undefined $(CHECK_LIBS)

$(BUILD)/libheapguard.so: $(LIB_OBJS)
	$(CC) -shared -o $@ $^ -pthread -Wl,-z,now -Wl,-soname,libheapguard.so

# One object, its hidden symbols made local: a program's own hg_init no longer took the place
# of ours, and a C++ program that calls only new and delete (new.o alone pulled from an
# archive of one object per file) got glibc's malloc beside our operator new.
$(BUILD)/libheapguard.a: $(LIB_OBJS)
	$(LD) -r -o $(BUILD)/heapguard-static.o $^
	objcopy --localize-hidden $(BUILD)/heapguard-static.o
	rm -f $@ && ar rcs $@ $(BUILD)/heapguard-static.o

$(BUILD)/heapguard: $(CLI_SRCS) $(wildcard src/cli/*.h) src/check/records.h | deps-build
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -std=gnu11 -Wall -Wextra -Isrc -DHG_VERSION='"$(VERSION)"' -pthread -o $@ $(CLI_SRCS) $(CLI_LIBS)

deps-build:
	@scripts/deps.sh libunwind8 libdw-dev

include tests/tests.mk
include bench/bench.mk

# LD_PRELOAD splits its list at spaces and colons: a library installed under such a PREFIX
# could not be preloaded (the command refuses it), so the install refuses it first.
install: all
	@case '$(PREFIX)' in *[[:space:]:]*) \
		echo "make install: PREFIX '$(PREFIX)' has a space or a colon, which LD_PRELOAD cannot take" >&2; \
		exit 1;; esac
	install -d '$(DESTDIR)$(PREFIX)/lib' '$(DESTDIR)$(PREFIX)/include' '$(DESTDIR)$(PREFIX)/bin' \
		'$(DESTDIR)$(PREFIX)/lib/pkgconfig' '$(DESTDIR)$(PREFIX)/share/man/man1'
	install -m 755 $(BUILD)/libheapguard.so $(BUILD)/libheapguard-check.so '$(DESTDIR)$(PREFIX)/lib/'
	install -m 644 $(BUILD)/libheapguard.a '$(DESTDIR)$(PREFIX)/lib/'
	install -m 644 include/heapguard.h '$(DESTDIR)$(PREFIX)/include/'
	install -m 755 $(BUILD)/heapguard '$(DESTDIR)$(PREFIX)/bin/'
	install -m 644 man/heapguard.1 '$(DESTDIR)$(PREFIX)/share/man/man1/'
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' heapguard.pc.in \
		> '$(DESTDIR)$(PREFIX)/lib/pkgconfig/heapguard.pc'
	chmod 644 '$(DESTDIR)$(PREFIX)/lib/pkgconfig/heapguard.pc'

# The files install put there; the directories stay, as automake's uninstall leaves them.
uninstall:
	rm -f '$(DESTDIR)$(PREFIX)'/lib/libheapguard.so '$(DESTDIR)$(PREFIX)'/lib/libheapguard-check.so \
		'$(DESTDIR)$(PREFIX)'/lib/libheapguard.a '$(DESTDIR)$(PREFIX)'/include/heapguard.h \
		'$(DESTDIR)$(PREFIX)'/bin/heapguard '$(DESTDIR)$(PREFIX)'/share/man/man1/heapguard.1 \
		'$(DESTDIR)$(PREFIX)'/lib/pkgconfig/heapguard.pc

clean:
	rm -rf $(BUILD)
include examples/examples.mk
