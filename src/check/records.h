/* records.h — the record stream from libheapguard-check.so to the heapguard command: the
 * contract between the two sides (check/records.c writes it, cli/records.c reads it). */
#ifndef HG_CHECK_RECORDS_H
#define HG_CHECK_RECORDS_H

/*
 * The command sets HEAPGUARD_RECORDS=/abs/path; every process of the run (children after
 * fork and exec included) appends its records there with O_APPEND, one write(2) per line,
 * as they happen, so a run killed by a signal keeps what it recorded. When the variable is
 * set, the library prints no text report: the command symbolizes and renders.
 *
 * One record per line; fields separated by one space; the first field is the record type,
 * the second the writing process's pid. Numbers are decimal, addresses 0x-hex. Strings are
 * escaped: '%', space, and bytes < 0x21 or >= 0x7f as %XX; "-" stands for an absent string.
 *
 *   P pid ppid exe                          a process started (its first record, written
 *                                           when the library loads)
 *   M pid index path                        a module; frames name it by index
 *   S pid id frame...                       a stack, before the first record using it;
 *                                           frame = pc:module-index:offset-in-module (hex),
 *                                           module-index -1 when pc is in no module
 *   E pid kind access func addr size thread stack place detail has-block
 *        [user bytes alloc-thread alloc-stack free-thread free-stack]
 *                                           an error, the first time its context (kind, access,
 *                                           stack and place: the allocation stack of a
 *                                           block whose damage was found later, else 0)
 *                                           is seen; access/func/detail may be "-";
 *                                           size: bytes accessed, or with a func and
 *                                           access "-" the bytes asked for (addr 0);
 *                                           stack ids 0 = none; free-thread 0 = not freed
 *   C pid kind access stack place count     at exit: a context seen count (> 1) times
 *   L pid kind bytes blocks stack call      a leak group at exit (kind: definitely-lost,
 *                                           indirectly-lost, possibly-lost, still-reachable;
 *                                           call: malloc, calloc, strdup, operator new, ...)
 *   H pid allocs frees bytes-allocated in-use-bytes in-use-blocks
 *   X pid def-bytes def-blocks ind-bytes ind-blocks pos-bytes pos-blocks reach-bytes reach-blocks
 *                                           heap and leak summaries, at exit
 *   A pid program exe elsewhere             before an exec: the program the process becomes
 *                                           (its own P record follows, unless LD_PRELOAD
 *                                           does not reach it, or elsewhere is 1: its
 *                                           environment names another records file, another
 *                                           heapguard command's), and the one it was; "-"
 *                                           for both and 0 when the exec failed
 *   B pid child program elsewhere           after posix_spawn: the new child's program (its
 *                                           own records follow, unless ... as for A)
 */
#define HG_RECORDS_ENV "HEAPGUARD_RECORDS"

/* With --trace-children=no the command hands down the user's own value of each variable it
 * sets, NAME in HG_USER_ENV_NAMES, as HEAPGUARD_USER_NAME=NAME=value, or HEAPGUARD_USER_NAME=
 * when the user had none. The library, told trace_children=0, puts those back as it starts,
 * so that what the process executes gets the user's environment; the value holds the whole
 * entry because the library cannot allocate there: environ points into it. */
#define HG_USER_ENV_PREFIX "HEAPGUARD_USER_"
#define HG_USER_ENV_NAMES { "LD_PRELOAD", "HEAPGUARD_OPTIONS", HG_RECORDS_ENV }

#endif
