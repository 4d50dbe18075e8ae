// cxx.cc — every C++ operator new/delete form: resolution to heapguard, alignment, bad_alloc and nothrow.
#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <csetjmp>
#include <new>

#include <dlfcn.h>
#include <malloc.h>

extern "C" {
#include <cmocka.h>
}

#define CHECK(cond, ...)                                                                  \
	do {                                                                              \
		if (!(cond)) {                                                            \
			print_message("# %s:%d: check failed: %s\n# ", __FILE__, __LINE__, #cond); \
			print_message(__VA_ARGS__);                                       \
			print_message("\n");                                              \
			fail();                                                           \
		}                                                                         \
	} while (0)

static const size_t MIB = size_t(1) << 20;

// The operators by their mangled names, which is how the dynamic linker sees them.
static const char *const OPERATORS[] = {
	"_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t",
	"_ZnwmSt11align_val_t", "_ZnamSt11align_val_t",
	"_ZnwmSt11align_val_tRKSt9nothrow_t", "_ZnamSt11align_val_tRKSt9nothrow_t",
	"_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm", "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t",
	"_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t", "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t",
	"_ZdlPvSt11align_val_tRKSt9nothrow_t", "_ZdaPvSt11align_val_tRKSt9nothrow_t",
};

static void test_operators_resolve_to_heapguard(void **)
{
	void *version = dlsym(RTLD_DEFAULT, "heapguard_version");
	Dl_info lib, got;

	CHECK(version != nullptr, "heapguard_version not found: is libheapguard preloaded?");
	assert_true(dladdr(version, &lib) != 0);
	for (const char *name : OPERATORS) {
		void *sym = dlsym(RTLD_DEFAULT, name);

		CHECK(sym != nullptr, "%s is not defined", name);
		CHECK(dladdr(sym, &got) != 0 && got.dli_fbase == lib.dli_fbase, "%s resolves to %s, not %s", name,
		      got.dli_fname, lib.dli_fname);
	}
}

// Sizes no allocator can satisfy; SIZE_MAX also overflows any header arithmetic.
static const size_t IMPOSSIBLE[] = {SIZE_MAX, SIZE_MAX - 4095, size_t(PTRDIFF_MAX) + 1};

// Where the results of allocations that must throw go, so the calls are neither discarded nor elided.
static void *volatile sink;

template <typename F> static bool throws_bad_alloc(F f)
{
	try {
		f();
	} catch (const std::bad_alloc &) {
		return true;
	}
	return false;
}

static void test_new_throws_bad_alloc(void **)
{
	for (size_t n : IMPOSSIBLE) {
		CHECK(throws_bad_alloc([n] { sink = ::operator new(n); }), "operator new(%zu) did not throw", n);
		CHECK(throws_bad_alloc([n] { sink = ::operator new[](n); }), "operator new[](%zu) did not throw", n);
		CHECK(throws_bad_alloc([n] { sink = ::operator new(n, std::align_val_t(64)); }),
		      "operator new(%zu, align 64) did not throw", n);
		CHECK(throws_bad_alloc([n] { sink = ::operator new[](n, std::align_val_t(4096)); }),
		      "operator new[](%zu, align 4096) did not throw", n);
	}
}

static void test_nothrow_returns_null(void **)
{
	for (size_t n : IMPOSSIBLE) {
		CHECK(::operator new(n, std::nothrow) == nullptr, "new(%zu, nothrow) not null", n);
		CHECK(::operator new[](n, std::nothrow) == nullptr, "new[](%zu, nothrow) not null", n);
		CHECK(::operator new(n, std::align_val_t(64), std::nothrow) == nullptr,
		      "new(%zu, align 64, nothrow) not null", n);
		CHECK(::operator new[](n, std::align_val_t(64), std::nothrow) == nullptr,
		      "new[](%zu, align 64, nothrow) not null", n);
	}
}

static int handler_calls;

static void counting_handler()
{
	// give up after three tries, as a handler that cannot free anything must
	if (++handler_calls == 3)
		std::set_new_handler(nullptr);
}

// The standard has a failing operator new call the installed new_handler until it is removed.
static void test_new_handler_is_called(void **)
{
	handler_calls = 0;
	std::set_new_handler(counting_handler);
	bool threw = throws_bad_alloc([] { sink = ::operator new(SIZE_MAX); });
	std::set_new_handler(nullptr);
	CHECK(threw, "operator new(SIZE_MAX) did not throw");
	CHECK(handler_calls == 3, "new_handler called %d times, expected 3", handler_calls);
}

static void throwing_handler()
{
	++handler_calls;
	throw std::bad_alloc(); // a handler that gives up, as the standard lets it
}

// The nothrow forms return null when the handler gives up by throwing: the exception must not
// leave them (they are noexcept: it would end the program).
static void test_nothrow_with_throwing_handler(void **)
{
	handler_calls = 0;
	std::set_new_handler(throwing_handler);
	void *p[4] = {::operator new(SIZE_MAX, std::nothrow), ::operator new[](SIZE_MAX, std::nothrow),
		      ::operator new(SIZE_MAX, std::align_val_t(64), std::nothrow),
		      ::operator new[](SIZE_MAX, std::align_val_t(64), std::nothrow)};
	std::set_new_handler(nullptr);
	for (void *q : p)
		CHECK(q == nullptr, "a nothrow form returned %p", q);
	CHECK(handler_calls == 4, "the handler ran %d times, expected once per call", handler_calls);
}

// Blocks from every form are written in full and released by the matching delete.
static void test_all_forms_allocate_and_release(void **)
{
	const size_t sizes[] = {0, 1, 24, 100, 4096, 100000, 3 * MIB};

	for (size_t n : sizes) {
		void *p[4] = {::operator new(n), ::operator new[](n), ::operator new(n, std::nothrow),
			      ::operator new[](n, std::nothrow)};

		for (void *q : p) {
			CHECK(q != nullptr, "a new form returned null for %zu bytes", n);
			CHECK(malloc_usable_size(q) >= n, "usable %zu < %zu", malloc_usable_size(q), n);
			memset(q, 0x11, n);
		}
		CHECK(p[0] != p[1] && p[1] != p[2] && p[2] != p[3], "two live blocks share address %p", p[1]);
		::operator delete(p[0], n);
		::operator delete[](p[1], n);
		::operator delete(p[2], std::nothrow);
		::operator delete[](p[3]);
	}
}

static void test_aligned_forms(void **)
{
	const size_t sizes[] = {1, 64, 1000, 70000, 2 * MIB};

	for (size_t a = 16; a <= 4 * MIB; a *= 2)
		for (size_t n : sizes) {
			std::align_val_t al = std::align_val_t(a);
			void *p[4] = {::operator new(n, al), ::operator new[](n, al), ::operator new(n, al, std::nothrow),
				      ::operator new[](n, al, std::nothrow)};

			for (void *q : p) {
				CHECK(q != nullptr && reinterpret_cast<uintptr_t>(q) % a == 0,
				      "aligned new(%zu, %zu) = %p", n, a, q);
				memset(q, 0x22, n);
			}
			::operator delete(p[0], al);
			::operator delete[](p[1], n, al);
			::operator delete(p[2], n, al);
			::operator delete[](p[3], al, std::nothrow);
		}
}

static void test_new_zero_is_unique(void **)
{
	void *a = ::operator new(0), *b = ::operator new(0), *c = ::operator new[](0);

	CHECK(a != nullptr && b != nullptr && c != nullptr && a != b && b != c && a != c,
	      "operator new(0) gave %p %p %p", a, b, c);
	::operator delete(a);
	::operator delete(b);
	::operator delete[](c);
}

int main()
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_operators_resolve_to_heapguard),
		cmocka_unit_test(test_new_throws_bad_alloc),
		cmocka_unit_test(test_nothrow_returns_null),
		cmocka_unit_test(test_new_handler_is_called),
		cmocka_unit_test(test_nothrow_with_throwing_handler),
		cmocka_unit_test(test_all_forms_allocate_and_release),
		cmocka_unit_test(test_aligned_forms),
		cmocka_unit_test(test_new_zero_is_unique),
	};

	setvbuf(stdout, nullptr, _IOLBF, 0);
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
