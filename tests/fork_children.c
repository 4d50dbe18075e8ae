/* fork_children.c — fork while 8 threads allocate; each child frees a third of those threads'
 * blocks, then (mode 1) starts 4 threads that pass blocks to each other. A cache that a parent
 * thread was changing at the fork must not serve in the child: a block handed out twice ends
 * the child. Usage: fork_children FORKS MODE (0: no threads in the child, 1: threads, 2: the
 * child forks again, 3: all of these). Exit status 1 when a child failed. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NW 8
#define WS 256
static void *slots[NW][WS];
static volatile int stop;
static int mode;

static inline uint64_t rnd(uint64_t *s) { *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17; return *s; }
static size_t psize(uint64_t *s) {
    uint64_t r = rnd(s) % 100;
    if (r < 60) return rnd(s) % 128;
    if (r < 90) return rnd(s) % 8192;
    if (r < 99) return rnd(s) % 200000;
    return rnd(s) % 3000000;
}
static void stamp(void *p, size_t n) { if (n >= 8) *(uintptr_t *)p = (uintptr_t)p ^ 0x5a5a; if (n >= 16) ((char *)p)[n - 1] = 0x33; }
static void *worker(void *a) {
    int me = (int)(intptr_t)a;
    uint64_t s = 88172645463325252ULL + me * 7919;
    while (!stop) {
        int i = rnd(&s) % WS;
        void *old = __atomic_exchange_n(&slots[me][i], NULL, __ATOMIC_ACQ_REL);
        free(old);
        size_t n = psize(&s) + 8;
        void *p = (rnd(&s) & 3) ? malloc(n) : (rnd(&s) & 1) ? calloc(1, n) : realloc(malloc(16), n);
        if (!p && n) { fprintf(stderr, "worker malloc NULL\n"); abort(); }
        stamp(p, n);
        __atomic_store_n(&slots[me][i], p, __ATOMIC_RELEASE);
    }
    return NULL;
}
static void *cthread(void *a) {
    void **share = a;
    uint64_t s = (uintptr_t)a | 1;
    for (int k = 0; k < 2000; k++) {
        int i = rnd(&s) % 64;
        void *old = __atomic_exchange_n(&share[i], NULL, __ATOMIC_ACQ_REL);
        free(old);
        void *p = malloc(psize(&s));
        for (int j = 0; j < 64; j++)
            if (p && __atomic_load_n(&share[j], __ATOMIC_ACQUIRE) == p) {
                fprintf(stderr, "child %d: malloc returned %p which is still live in share[%d]\n", getpid(), p, j);
                _exit(4);
            }
        __atomic_store_n(&share[i], p, __ATOMIC_RELEASE);
    }
    return NULL;
}
static void child_work(int depth, uint64_t seed) {
    alarm(20);  // a deadlocked child dies by SIGALRM, which the parent reports
    uint64_t s = seed | 1;
    void *loc[64] = {0};
    for (int k = 0; k < 500; k++) {
        int i = rnd(&s) % 64;
        free(loc[i]);
        loc[i] = malloc(psize(&s));
        if (!loc[i]) abort();
        memset(loc[i], 1, 8 < malloc_usable_size(loc[i]) ? 8 : 0);
    }
    // free blocks that parent's threads allocated (those threads don't exist here)
    for (int w = 0; w < NW; w++)
        for (int i = 0; i < WS; i += 3) {
            void *p = slots[w][i];
            slots[w][i] = NULL;
            if (p && *(uintptr_t *)p != ((uintptr_t)p ^ 0x5a5a) && malloc_usable_size(p) >= 8) {
                fprintf(stderr, "child: parent block %p corrupted\n", p);
                _exit(5);
            }
            free(p);
        }
    int m = mode == 3 ? (int)(rnd(&s) % 3) : mode;
    if (m == 1) {
        void *share[64] = {0};
        pthread_t t[4];
        for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, cthread, share);
        for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
        for (int i = 0; i < 64; i++) free(share[i]);
    } else if (m == 2 && depth == 0) {
        pid_t g = fork();
        if (g == 0) { child_work(1, s * 3); exit(0); }
        int st;
        if (waitpid(g, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
            fprintf(stderr, "grandchild status %x\n", st);
            exit(3);
        }
    }
    for (int i = 0; i < 64; i++) free(loc[i]);
}

int main(int argc, char **argv) {
    int nforks = argc > 1 ? atoi(argv[1]) : 1000;
    mode = argc > 2 ? atoi(argv[2]) : 0;
    pthread_t t[NW];
    for (int i = 0; i < NW; i++) pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int bad = 0, sig = 0, alrm = 0;
    for (int k = 0; k < nforks; k++) {
        void *x = malloc(100 + k);
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); k--; usleep(1000); free(x); continue; }
        if (pid == 0) {
            free(x);
            child_work(0, 0x9e3779b97f4a7c15ULL * (k + 1));
            if (mode == 3 && (k & 1)) _exit(0);
            exit(0);
        }
        free(x);
        int st;
        if (waitpid(pid, &st, 0) < 0) { perror("waitpid"); bad++; continue; }
        if (WIFSIGNALED(st)) {
            sig++;
            if (WTERMSIG(st) == SIGALRM) alrm++;
            if (sig < 5) fprintf(stderr, "child %d killed by signal %d\n", k, WTERMSIG(st));
        } else if (WEXITSTATUS(st)) {
            bad++;
            if (bad < 5) fprintf(stderr, "child %d exit %d\n", k, WEXITSTATUS(st));
        }
    }
    stop = 1;
    for (int i = 0; i < NW; i++) pthread_join(t[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* TAP, for tests/run.sh */
    printf("1..1\n# mode=%d forks=%d bad_exit=%d signaled=%d (SIGALRM/deadlock=%d) time=%.2fs\n", mode, nforks,
           bad, sig, alrm, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    printf("%s 1 - %d forks while %d threads allocate: every child ran to its end (mode %d)\n",
           (bad || sig) ? "not ok" : "ok", nforks, NW, mode);
    return (bad || sig) ? 1 : 0;
}
