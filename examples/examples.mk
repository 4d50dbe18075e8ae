# examples.mk — builds the heap-error examples into build/examples; `make demo` runs them under heapguard.

# The order in which `make demo` shows them: the errors, then a correct program for comparison.
EXAMPLE_NAMES := heap-overflow off-by-one use-after-free double-free invalid-free-interior \
	invalid-free-stack leak uninitialized-read unallocated-strcpy overlapping-copy clean
EXAMPLE_BINS := $(EXAMPLE_NAMES:%=$(BUILD)/examples/%)

# The examples are there to be run under heapguard, so they bring the library and command along.
# The empty recipe keeps a sub-make from saying "Nothing to be done" when all is up to date.
.PHONY: examples demo
examples: all $(EXAMPLE_BINS)
	@:

# -O0 keeps every faulty access in the binary; -g lets the checker name the lines later.
$(EXAMPLE_BINS): $(BUILD)/examples/%: examples/%.c
	@mkdir -p $(dir $@)
	$(CC) -g -O0 -Wall -Wextra -o $@ $<

# On a fresh machine the compiler may be missing, so the packages come before anything is
# built: the build runs in a sub-make instead of being a prerequisite. The examples fail on
# purpose, so none of them may stop the demo.
demo:
	@if [ -f scripts/deps.sh ]; then sh scripts/deps.sh gcc make; fi
	@$(MAKE) --no-print-directory examples
	@for name in $(EXAMPLE_NAMES); do sh examples/run-example.sh $$name || true; done
