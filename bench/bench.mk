# Benchmarks: workload programs in bench/, run by bench/run.py under glibc, jemalloc, mimalloc, tcmalloc and heapguard.
# make bench                        all workloads, RUNS=5 (8-10 minutes on 2 cores)
# make bench RUNS=1 ONLY=random-*   one quick pass of the named workloads (comma-separated globs)
# make bench-list                   workload names
# make bench-save                   copy the last results to bench/RESULTS.md
# Results: stdout, $(BUILD)/bench/results.md and every single run in $(BUILD)/bench/runs.csv.

BENCH_DIR := $(BUILD)/bench
# Fixed flags: the workloads must not change when CFLAGS is set to debug the library.
BENCH_CFLAGS := -O2 -g -std=gnu11 -Wall -Wextra -pthread
BENCH_PROGS := runone churn random realloc prodcons larson calloc_large tree lists pair
BENCH_BINS := $(BENCH_PROGS:%=$(BENCH_DIR)/%)
# gcc and python3 are workloads too.
BENCH_PKGS := libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4 python3 gcc
BENCH_GCC_FUNCTIONS := 80
RUNS ?= 5
ONLY ?=

.PHONY: bench bench-bins bench-list bench-save deps-bench

$(BENCH_DIR)/%: bench/%.c bench/bench.h
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -o $@ $<

$(BENCH_DIR)/big.c: bench/gen_big_c.py
	@mkdir -p $(dir $@)
	python3 $< $(BENCH_GCC_FUNCTIONS) > $@

bench-bins: $(BENCH_BINS) $(BENCH_DIR)/big.c

deps-bench:
	scripts/deps.sh $(BENCH_PKGS)

bench: deps-bench all bench-bins
	python3 bench/run.py --build $(BUILD) --runs $(RUNS) $(if $(ONLY),--only '$(ONLY)') \
		--out $(BENCH_DIR)/results.md

bench-list:
	@python3 bench/run.py --list

bench-save:
	cp $(BENCH_DIR)/results.md bench/RESULTS.md
