# tests.mk — builds the test programs into $(BUILD)/tests and runs them (included by the top-level Makefile).
# make test: installs what the tests need (scripts/deps.sh), builds the library and the tests, runs tests/run.sh.

TEST_DIR := $(BUILD)/tests
TEST_PACKAGES := libcmocka-dev zlib1g python3 perl git g++ pkg-config
# -fno-builtin: gcc may otherwise fold or delete the very malloc/free calls under test.
TEST_CFLAGS := $(CFLAGS) -std=gnu11 -Wall -Wextra -pthread -Iinclude -fno-builtin
TEST_CXXFLAGS := $(CFLAGS) -std=gnu++17 -Wall -Wextra -pthread -Iinclude -fno-builtin
TEST_LIBS := -lcmocka -pthread
TEST_UTIL := $(TEST_DIR)/util.o

TEST_BINS := $(TEST_DIR)/unit $(TEST_DIR)/api $(TEST_DIR)/api-linked $(TEST_DIR)/api-static $(TEST_DIR)/threads \
	$(TEST_DIR)/death $(TEST_DIR)/stress $(TEST_DIR)/cxx $(TEST_DIR)/optprog $(TEST_DIR)/containers \
	$(TEST_DIR)/fork_children

.PHONY: test deps-test test-bins
test: deps-test all test-bins examples
	@tests/run.sh $(BUILD)

test-bins: $(TEST_BINS)

deps-test:
	@scripts/deps.sh $(TEST_PACKAGES)

# Every test object waits for the packages; the ordering is all that matters, not a timestamp.
# util.c allocates nothing under test, and its pattern loops want gcc's inline memcpy.
$(TEST_DIR)/util.o: tests/util.c tests/util.h | deps-test
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -fno-builtin,$(TEST_CFLAGS)) -c $< -o $@

# The plain build knows nothing of heapguard: it is preloaded at run time.
$(TEST_DIR)/api: tests/api.c tests/util.h $(TEST_UTIL) include/heapguard.h
	$(CC) $(TEST_CFLAGS) -DHG_EXPECT_VERSION='"$(VERSION)"' -o $@ $< $(TEST_UTIL) $(TEST_LIBS)

# Linked the way a user links: -lheapguard ahead of libc, found again at run time through the rpath.
$(TEST_DIR)/api-linked: tests/api.c tests/util.h $(TEST_UTIL) include/heapguard.h $(BUILD)/libheapguard.so
	$(CC) $(TEST_CFLAGS) -DHG_LINKED -DHG_EXPECT_VERSION='"$(VERSION)"' -o $@ $< $(TEST_UTIL) \
		-L$(BUILD) -lheapguard -Wl,-rpath,$(abspath $(BUILD)) $(TEST_LIBS)

$(TEST_DIR)/api-static: tests/api.c tests/util.h $(TEST_UTIL) include/heapguard.h $(BUILD)/libheapguard.a
	$(CC) $(TEST_CFLAGS) -DHG_LINKED -DHG_STATIC -DHG_EXPECT_VERSION='"$(VERSION)"' -o $@ $< $(TEST_UTIL) \
		$(BUILD)/libheapguard.a $(TEST_LIBS)

$(TEST_DIR)/threads $(TEST_DIR)/death $(TEST_DIR)/stress: $(TEST_DIR)/%: tests/%.c tests/util.h $(TEST_UTIL)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(TEST_UTIL) $(TEST_LIBS)

# Plain C and pthreads: heapguard is preloaded.
$(TEST_DIR)/fork_children: tests/fork_children.c | deps-test
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -std=gnu11 -Wall -Wextra -pthread -o $@ $<

$(TEST_DIR)/cxx: tests/cxx.cc | deps-test
	@mkdir -p $(dir $@)
	$(CXX) $(TEST_CXXFLAGS) -o $@ $< $(TEST_LIBS)

$(TEST_DIR)/optprog: tests/optprog.c | deps-test
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $<

$(TEST_DIR)/containers: tests/real/containers.cc | deps-test
	@mkdir -p $(dir $@)
	$(CXX) $(TEST_CXXFLAGS) -o $@ $<

# Unit tests build the internal modules they test straight from the sources: the central
# heap runs there on its own, and malloc is the plain C library's.
UNIT_SRCS := src/alloc/sizeclass.c src/alloc/central.c src/alloc/large.c src/base/options.c \
	src/base/fmt.c src/os/os_linux.c src/check/cfi.c
$(TEST_DIR)/unit: tests/unit.c tests/util.h $(TEST_UTIL) $(UNIT_SRCS) $(wildcard src/*/*.h)
	$(CC) $(TEST_CFLAGS) -Isrc -o $@ $< $(UNIT_SRCS) $(TEST_UTIL) $(TEST_LIBS)
