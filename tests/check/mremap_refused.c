/* mremap_refused.c — runs a program with some mremap calls refused (a seccomp filter):
 *   mremap_refused dontunmap PROGRAM [ARG...]  MREMAP_DONTUNMAP fails with EINVAL, as on a
 *                                               kernel before Linux 5.7;
 *   mremap_refused move PROGRAM [ARG...]       a move (MREMAP_MAYMOVE | MREMAP_FIXED, nothing
 *                                               else) fails with ENOMEM, as near
 *                                               vm.max_map_count. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

int main(int argc, char **argv)
{
	int dontunmap = argc > 2 && !strcmp(argv[1], "dontunmap");
	if (argc < 3 || (!dontunmap && strcmp(argv[1], "move"))) {
		fprintf(stderr, "usage: mremap_refused dontunmap|move PROGRAM [ARG...]\n");
		return 2;
	}
	/* The flags word's test: any DONTUNMAP bit, or exactly a plain move. */
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mremap, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[3])),
		dontunmap ? (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, MREMAP_DONTUNMAP, 0, 1)
			  : (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MREMAP_MAYMOVE | MREMAP_FIXED, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (dontunmap ? EINVAL : ENOMEM)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof f / sizeof f[0], f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
		perror("mremap_refused: seccomp");
		return 1;
	}
	execvp(argv[2], argv + 2);
	perror("mremap_refused: exec");
	return 1;
}
