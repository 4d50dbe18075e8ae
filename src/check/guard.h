/* guard.h — what signal.c asks guard.c about a fault address in the guard region. */
#ifndef HG_CHECK_GUARD_H
#define HG_CHECK_GUARD_H

enum hgc_guard_place {
	HGC_GUARD_OUTSIDE,   /* not in the guard region */
	HGC_GUARD_IN_SLOT,   /* in a slot's data pages */
	HGC_GUARD_IN_PAGE,   /* in a guard page, or in the region past its last slot */
};

enum hgc_slot_state {
	HGC_SLOT_UNUSED,     /* never handed out */
	HGC_SLOT_LIVE,       /* holds a live block: read-write */
	HGC_SLOT_UNTOUCHED,  /* holds a live block not used yet (guard_uninit): inaccessible */
	HGC_SLOT_TOUCHING,   /* an untouched slot being made read-write by hgc_guard_touch */
	HGC_SLOT_RETIRED,    /* its block was freed and waits in the quarantine: inaccessible */
	HGC_SLOT_RELEASED,   /* out of the quarantine, waiting for reuse: inaccessible, no record */
};

/* Where addr lies. IN_SLOT: *slot is the slot's first byte. IN_PAGE: *below is the slot whose
 * data ends at that guard page and *above the one starting after it (either may be NULL).
 * Takes no lock and writes nothing: the SIGSEGV handler calls it. */
enum hgc_guard_place hgc_guard_place(const void *addr, char **slot, char **below, char **above);
/* enum hgc_slot_state of a slot returned by hgc_guard_place; read without a lock. */
int hgc_guard_slot_state(const char *slot);

#endif
