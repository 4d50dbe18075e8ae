// leak_heuristics.cc — blocks kept only by the interior pointers that common layouts hold
// (valgrind's leak heuristics), each beside a look-alike that is no such layout, for
// tests/check_leak.py. A global holds each pointer; the blocks are never freed.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#define NOINLINE __attribute__((noinline))
// extern "C": the reports name the functions unmangled.
#define CASE extern "C" NOINLINE

// Multiple inheritance: a Both seen as its second base points 8 bytes into the block, at
// Right's vtable pointer; the block starts with Left's.
struct Left { virtual ~Left() {} long l = 1; };
struct Right { virtual ~Right() {} long r = 2; };
struct Both : Left, Right { long b[10] = {}; };

// new[] of a class with a destructor: the pointer follows an 8-byte element count.
struct Counted { ~Counted() {} long v[3] = {}; };

struct Shared { virtual ~Shared() {} long v[20] = {}; };

// The same from a class's own operator new[] over malloc (ICU's objects in node are so):
// the block is malloc's to the checker, the layout new[]'s.
struct OwnArray {
	~OwnArray() {}
	static void *operator new[](size_t n) { return malloc(n); }
	static void operator delete[](void *p) { free(p); }
	long v[8] = {};
};

static Right *keep_second_base;
static Counted *keep_array;
static char *keep_length64, *keep_not_length64;
static char *keep_cow_string, *keep_not_cow_string;
static long *keep_plain_interior;
static Shared *keep_shared_object;
static OwnArray *keep_own_array;

CASE void keep_both(void) { keep_second_base = new Both; }
CASE void keep_counted(void) { keep_array = new Counted[5]; }
CASE void keep_own_array_new(void) { keep_own_array = new OwnArray[12]; }

// length64: the start plus an 8-byte header holding the length of the rest (sqlite).
CASE char *alloc_length64(size_t n, size_t header)
{
	char *p = static_cast<char *>(malloc(8 + n));
	memcpy(p, &header, 8);
	memset(p + 8, 'x', n);
	return p + 8;
}

// A copy-on-write std::string of libstdc++'s old ABI: length, capacity and reference count,
// then the characters and their NUL; the string points at the characters.
CASE char *alloc_cow_string(size_t len, size_t capacity, size_t block)
{
	size_t *h = static_cast<size_t *>(malloc(block));
	h[0] = len;
	h[1] = capacity;
	h[2] = 0;
	memset(h + 3, 's', len);
	reinterpret_cast<char *>(h + 3)[len] = 0;
	return reinterpret_cast<char *>(h + 3);
}

CASE void keep_interior_only(void)
{
	long *p = static_cast<long *>(malloc(96));
	memset(p, 0, 96);
	keep_plain_interior = p + 2;
}

// make_shared puts the object after the control block (its vtable and counts): a raw
// pointer to the object points into the block, at the object's vtable pointer. The
// shared_ptr is then forgotten, never destroyed: the raw pointer is all that is left.
CASE void keep_make_shared(void)
{
	alignas(std::shared_ptr<Shared>) static unsigned char slot[sizeof(std::shared_ptr<Shared>)];
	auto *sp = new (slot) std::shared_ptr<Shared>(std::make_shared<Shared>());
	keep_shared_object = sp->get();
	memset(slot, 0, sizeof slot);
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	if (!strcmp(c, "heuristics")) {
		keep_both();
		keep_counted();
		keep_length64 = alloc_length64(40, 40);
		keep_cow_string = alloc_cow_string(10, 30, 3 * 8 + 30 + 1);
	} else if (!strcmp(c, "look-alikes")) {
		keep_not_length64 = alloc_length64(40, 41);                        // header is not the length
		keep_not_cow_string = alloc_cow_string(10, 30, 3 * 8 + 30 + 9);  // capacity does not fit
		keep_interior_only();                                             // no vtable at either place
	} else if (!strcmp(c, "own-array-new")) {
		keep_own_array_new();
	} else if (!strcmp(c, "make-shared")) {
		keep_make_shared();
	}
	return 0;
}
