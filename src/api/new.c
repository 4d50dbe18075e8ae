/* new.c — every C++ operator new/delete form, exported from this C library so that C++
 * programs never mix two heaps. Failure follows the standard: call the new_handler, else
 * throw std::bad_alloc (found in libstdc++ at run time, so the library links only libc). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>

#include "api/heap.h"
#include "base/fmt.h"

#define API HG_EXPORT
typedef void (*new_handler_fn)(void);

static new_handler_fn current_new_handler(void)
{
	/* A program calling operator new has libstdc++ (or libc++ with this ABI) loaded. */
	new_handler_fn (*get)(void) = (new_handler_fn(*)(void))dlsym(RTLD_DEFAULT, "_ZSt15get_new_handlerv");
	return get ? get() : NULL;
}

__attribute__((noreturn)) static void throw_bad_alloc(void)
{
	void (*thrower)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "_ZSt17__throw_bad_allocv");
	if (thrower)
		thrower();
	hg_fatal("operator new", "out of memory (no C++ runtime to throw std::bad_alloc)", NULL, NULL, 0);
}

/* A nothrow form once its allocation failed with a new_handler installed: the handler gives up
 * by throwing std::bad_alloc, which C cannot catch. The C++ runtime's own nothrow form (the
 * next definition of `symbol`) calls the throwing form, which is ours, in a try block and
 * returns NULL when it throws. */
static void *nothrow_by_runtime(const char *symbol, size_t n, size_t align)
{
	static const char nothrow_tag; /* std::nothrow_t is empty: any address stands for it */
	void *next = dlsym(RTLD_NEXT, symbol);
	if (!next)
		return NULL; /* no runtime: then no handler either */
	if (align)
		return ((void *(*)(size_t, size_t, const void *))next)(n, align, &nothrow_tag);
	return ((void *(*)(size_t, const void *))next)(n, &nothrow_tag);
}

/* The retry loop of [new.delete.single]: ask the handler for memory until it gives up.
 * nothrow: the nothrow form's symbol (its __func__), which returns NULL instead of throwing.
 * failed: the caller's first try failed already (trying again at once, the checking library
 * reported one request too big twice). */
static void *new_slow(size_t n, size_t align, int kind, const char *nothrow, int failed)
{
	for (;; failed = 0) {
		const char *func = kind == HEAP_BY_NEW_ARRAY ? "operator new[]" : "operator new";
		void *p = failed ? NULL : align ? heap_aligned(align, n, kind, func) : heap_alloc(n, kind, func);
		if (p)
			return p;
		new_handler_fn h = current_new_handler();
		if (!h) {
			if (nothrow)
				return NULL;
			throw_bad_alloc();
		}
		if (nothrow)
			return nothrow_by_runtime(nothrow, n, align);
		h();
	}
}

static inline void *new_fast(size_t n, int kind, const char *nothrow)
{
	void *p = heap_alloc(n, kind, kind == HEAP_BY_NEW ? "operator new" : "operator new[]");
	if (likely(p))
		return p;
	return new_slow(n, 0, kind, nothrow, 1);
}

#define DELETE(p) heap_free(p, HEAP_BY_NEW, "operator delete")
#define DELETE_ARRAY(p) heap_free(p, HEAP_BY_NEW_ARRAY, "operator delete[]")
/* The sized forms: the checking library compares n with the block's size. */
#define DELETE_SIZED(p, n) heap_free_sized(p, n, HEAP_BY_NEW, "operator delete")
#define DELETE_ARRAY_SIZED(p, n) heap_free_sized(p, n, HEAP_BY_NEW_ARRAY, "operator delete[]")

/* operator new / new[]: plain, nothrow, aligned, aligned nothrow */
API void *_Znwm(size_t n) { return new_fast(n, HEAP_BY_NEW, NULL); }
API void *_Znam(size_t n) { return new_fast(n, HEAP_BY_NEW_ARRAY, NULL); }
API void *_ZnwmRKSt9nothrow_t(size_t n, const void *t) { (void)t; return new_fast(n, HEAP_BY_NEW, __func__); }
API void *_ZnamRKSt9nothrow_t(size_t n, const void *t) { (void)t; return new_fast(n, HEAP_BY_NEW_ARRAY, __func__); }
API void *_ZnwmSt11align_val_t(size_t n, size_t a) { return new_slow(n, a, HEAP_BY_NEW, NULL, 0); }
API void *_ZnamSt11align_val_t(size_t n, size_t a) { return new_slow(n, a, HEAP_BY_NEW_ARRAY, NULL, 0); }
API void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *t) { (void)t; return new_slow(n, a, HEAP_BY_NEW, __func__, 0); }
API void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *t) { (void)t; return new_slow(n, a, HEAP_BY_NEW_ARRAY, __func__, 0); }

/* operator delete / delete[]: plain, sized, nothrow, aligned, sized aligned, aligned nothrow */
API void _ZdlPv(void *p) { DELETE(p); }
API void _ZdaPv(void *p) { DELETE_ARRAY(p); }
API void _ZdlPvm(void *p, size_t n) { DELETE_SIZED(p, n); }
API void _ZdaPvm(void *p, size_t n) { DELETE_ARRAY_SIZED(p, n); }
API void _ZdlPvRKSt9nothrow_t(void *p, const void *t) { (void)t; DELETE(p); }
API void _ZdaPvRKSt9nothrow_t(void *p, const void *t) { (void)t; DELETE_ARRAY(p); }
API void _ZdlPvSt11align_val_t(void *p, size_t a) { (void)a; DELETE(p); }
API void _ZdaPvSt11align_val_t(void *p, size_t a) { (void)a; DELETE_ARRAY(p); }
API void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)a; DELETE_SIZED(p, n); }
API void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)a; DELETE_ARRAY_SIZED(p, n); }
API void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *t) { (void)a; (void)t; DELETE(p); }
API void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *t) { (void)a; (void)t; DELETE_ARRAY(p); }
