# Benchmarks: workload programs in bench/, run by bench/run.py under glibc, jemalloc, mimalloc, tcmalloc and heapguard.
# make bench                        all workloads, RUNS=5 (8-10 minutes on 2 cores)
# make bench RUNS=1 ONLY=random-*   one quick pass of the named workloads (comma-separated globs)
# make bench-list                   workload names
# make bench-save                   copy the last results to bench/RESULTS.md (and CHECK-, SCALE-RESULTS.md)
# Results: stdout, $(BUILD)/bench/results.md and every single run in $(BUILD)/bench/runs.csv.
# make bench-check                  the checkers' table (bench/check.py): heapguard's check and guard
#                                   modes through build/heapguard, valgrind memcheck, Electric Fence,
#                                   DUMA and ASan against plain glibc on scaled-down workloads;
#                                   CHECK_RUNS=3, CHECK_TIMEOUT=120 s per run. `make bench` runs it too.
# Results: stdout, $(BUILD)/bench/check-results.md and every run in $(BUILD)/bench/check-runs.csv.
# make bench-scale                  thread scaling (bench/scale.py): xthread and larson (and controls) at 1-16 threads
#                                   under every allocator; meant for a machine with 16 cores.
#                                   SCALE_THREADS=1,2,4,8,16, SCALE_RUNS=3.
# Results: stdout, $(BUILD)/bench/scale-results.md and every run in $(BUILD)/bench/scale-results-runs.csv.
# make bench-scale-check            the same for check mode: glibc beside libheapguard-check.so on
#                                   xthread, larson and larson-local with less work per thread.
# Results: stdout, $(BUILD)/bench/scale-check-results.md (and -runs.csv).

BENCH_DIR := $(BUILD)/bench
# Fixed flags: the workloads must not change when CFLAGS is set to debug the library.
BENCH_CFLAGS := -O2 -g -std=gnu11 -Wall -Wextra -pthread
BENCH_PROGS := runone churn random realloc prodcons xthread larson calloc_large tree lists pair cpu threadchurn
BENCH_BINS := $(BENCH_PROGS:%=$(BENCH_DIR)/%)
# gcc and python3 are workloads too.
BENCH_PKGS := libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4 python3 gcc
BENCH_GCC_FUNCTIONS := 80
RUNS ?= 5
ONLY ?=
# The checkers' table: the slow tools are why it has its own default; RUNS= on the command line sets both.
BENCH_CHECK_PKGS := valgrind electric-fence duma
# The C workloads of bench/check.py, rebuilt with AddressSanitizer.
BENCH_ASAN_PROGS := churn random realloc larson tree calloc_large
BENCH_CHECK_GCC_FUNCTIONS := 20
CHECK_RUNS ?= $(if $(filter command line,$(origin RUNS)),$(RUNS),3)
CHECK_TIMEOUT ?= 120

SCALE_THREADS ?= 1,2,4,8,16
SCALE_RUNS ?= 3

.PHONY: bench-scale bench-scale-check bench bench-bins bench-list bench-save deps-bench bench-check bench-check-bins deps-bench-check

$(BENCH_DIR)/%: bench/%.c bench/bench.h
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -o $@ $<

$(BENCH_DIR)/big.c: bench/gen_big_c.py
	@mkdir -p $(dir $@)
	python3 $< $(BENCH_GCC_FUNCTIONS) > $@

bench-bins: $(BENCH_BINS) $(BENCH_DIR)/big.c

$(BENCH_DIR)/asan/%: bench/%.c bench/bench.h
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -fsanitize=address -o $@ $<

$(BENCH_DIR)/big-check.c: bench/gen_big_c.py
	@mkdir -p $(dir $@)
	python3 $< $(BENCH_CHECK_GCC_FUNCTIONS) > $@

bench-check-bins: bench-bins $(BENCH_ASAN_PROGS:%=$(BENCH_DIR)/asan/%) $(BENCH_DIR)/big-check.c

# Not fatal: a checker that is not installed is an "n/a" column.
deps-bench-check:
	-scripts/deps.sh $(BENCH_CHECK_PKGS)

deps-bench:
	scripts/deps.sh $(BENCH_PKGS)

bench: deps-bench deps-bench-check all bench-check-bins
	python3 bench/run.py --build $(BUILD) --runs $(RUNS) $(if $(ONLY),--only '$(ONLY)') \
		--out $(BENCH_DIR)/results.md
	$(BENCH_CHECK_CMD)

BENCH_CHECK_CMD = python3 bench/check.py --build $(BUILD) --runs $(CHECK_RUNS) --timeout $(CHECK_TIMEOUT) \
		$(if $(ONLY),--only '$(ONLY)') --out $(BENCH_DIR)/check-results.md

bench-check: deps-bench deps-bench-check all bench-check-bins
	$(BENCH_CHECK_CMD)

bench-scale: deps-bench all bench-bins
	python3 bench/scale.py --build $(BUILD) --threads $(SCALE_THREADS) --runs $(SCALE_RUNS) \
		--out $(BENCH_DIR)/scale-results.md

bench-scale-check: all bench-bins
	python3 bench/scale.py --checked --build $(BUILD) --threads $(SCALE_THREADS) --runs $(SCALE_RUNS) \
		--out $(BENCH_DIR)/scale-check-results.md

bench-list:
	@python3 bench/run.py --list

bench-save:
	cp $(BENCH_DIR)/results.md bench/RESULTS.md
	test ! -f $(BENCH_DIR)/check-results.md || cp $(BENCH_DIR)/check-results.md bench/CHECK-RESULTS.md
	test ! -f $(BENCH_DIR)/scale-results.md || cp $(BENCH_DIR)/scale-results.md bench/SCALE-RESULTS.md
