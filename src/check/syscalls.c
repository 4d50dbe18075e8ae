/* syscalls.c — libc calls whose system call reads or fills the program's buffers, as valgrind
 * checks a system call's arguments: a buffer that runs off its heap block is reported at the
 * call, bytes sent out must have been written, and under guard_uninit an untouched guarded
 * block about to be filled is made accessible first, since the kernel would fail with EFAULT
 * on its inaccessible pages (read, write and the stdio calls are in intercept.c). And exec,
 * before which the command learns what program the process becomes. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/fmt.h"
#include "base/options.h"
#include "check/check.h"
#include "os/os.h"

/* The next definitions (libc's), found at load; a call before that goes to the system call. */
static struct {
	pid_t (*wait4)(pid_t, int *, int, struct rusage *);
	int (*waitid)(idtype_t, id_t, siginfo_t *, int);
	int (*fstatat)(int, const char *, struct stat *, int);
	int (*statx)(int, const char *, int, unsigned, struct statx *);
	ssize_t (*pread)(int, void *, size_t, off_t);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*preadv)(int, const struct iovec *, int, off_t);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	char *(*getcwd)(char *, size_t);
	ssize_t (*readlink)(const char *, char *, size_t);
	int (*pipe2)(int *, int);
	int (*socketpair)(int, int, int, int *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
	ssize_t (*getrandom)(void *, size_t, unsigned);
	ssize_t (*pwrite)(int, const void *, size_t, off_t);
	ssize_t (*writev)(int, const struct iovec *, int);
	ssize_t (*pwritev)(int, const struct iovec *, int, off_t);
	ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	int (*execvp)(const char *, char *const[]);
	int (*execvpe)(const char *, char *const[], char *const[]);
	int (*fexecve)(int, char *const[], char *const[]);
	int (*posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
			   char *const[], char *const[]);
	int (*posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
			    char *const[], char *const[]);
} next;

void hgc_syscalls_init(void)
{
#define NEXT(f) (*(void **)&next.f = dlsym(RTLD_NEXT, #f))
	NEXT(wait4);
	NEXT(waitid);
	NEXT(fstatat);
	NEXT(statx);
	NEXT(pread);
	NEXT(readv);
	NEXT(preadv);
	NEXT(recvfrom);
	NEXT(recvmsg);
	NEXT(getcwd);
	NEXT(readlink);
	NEXT(pipe2);
	NEXT(socketpair);
	NEXT(accept4);
	NEXT(getsockname);
	NEXT(getpeername);
	NEXT(getsockopt);
	NEXT(epoll_pwait);
	NEXT(getrandom);
	NEXT(pwrite);
	NEXT(writev);
	NEXT(pwritev);
	NEXT(sendto);
	NEXT(sendmsg);
	NEXT(execvp);
	NEXT(execvpe);
	NEXT(fexecve);
	NEXT(posix_spawn);
	NEXT(posix_spawnp);
#undef NEXT
}

#define RET __builtin_return_address(0)

/* The kernel is about to write up to n bytes at p for `func`. */
static inline void touch(void *p, size_t n, const char *func, const void *ret)
{
	if (!p)
		return;
	hgc_check_write(p, n, func, ret);
	if (hg_opt.guard_uninit)
		hgc_guard_touch_range(p, n);
}

/* The fortified forms (a program built with _FORTIFY_SOURCE calls them where the compiler knew
 * the buffer's size) check as the plain ones do, then make glibc's test of that size: its
 * "buffer overflow detected" abort. */
void __chk_fail(void) __attribute__((noreturn));
static inline void size_test(size_t n, size_t size)
{
	if (n > size)
		__chk_fail();
}

static void touch_iov(const struct iovec *iov, int n, const char *func, const void *ret)
{
	for (int i = 0; iov && i < n; i++)
		touch(iov[i].iov_base, iov[i].iov_len, func, ret);
}

/* The calls that others here stand on take the name and caller of the call the program made. */
static pid_t do_wait4(pid_t pid, int *status, int options, struct rusage *ru, const char *func,
		      const void *ret)
{
	touch(status, sizeof *status, func, ret);
	touch(ru, sizeof *ru, func, ret);
	return next.wait4 ? next.wait4(pid, status, options, ru) : syscall(SYS_wait4, pid, status, options, ru);
}

HG_EXPORT pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru)
{
	return do_wait4(pid, status, options, ru, "wait4", RET);
}

HG_EXPORT pid_t waitpid(pid_t pid, int *status, int options)
{
	return do_wait4(pid, status, options, NULL, "waitpid", RET);
}

HG_EXPORT pid_t wait(int *status)
{
	return do_wait4(-1, status, 0, NULL, "wait", RET);
}

HG_EXPORT int waitid(idtype_t type, id_t id, siginfo_t *info, int options)
{
	touch(info, sizeof *info, "waitid", RET);
	return next.waitid ? next.waitid(type, id, info, options)
			   : (int)syscall(SYS_waitid, type, id, info, options, NULL);
}

static int do_fstatat(int dirfd, const char *path, struct stat *st, int flags, const char *func,
		      const void *ret)
{
	touch(st, sizeof *st, func, ret);
	return next.fstatat ? next.fstatat(dirfd, path, st, flags)
			    : (int)syscall(SYS_newfstatat, dirfd, path, st, flags);
}

HG_EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	return do_fstatat(dirfd, path, st, flags, "fstatat", RET);
}

HG_EXPORT int stat(const char *path, struct stat *st)
{
	return do_fstatat(AT_FDCWD, path, st, 0, "stat", RET);
}

HG_EXPORT int lstat(const char *path, struct stat *st)
{
	return do_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW, "lstat", RET);
}

HG_EXPORT int fstat(int fd, struct stat *st)
{
	if (fd < 0) { /* as glibc: fstatat would take AT_FDCWD (-100) for the working directory */
		errno = EBADF;
		return -1;
	}
	return do_fstatat(fd, "", st, AT_EMPTY_PATH, "fstat", RET);
}

HG_EXPORT int statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *st)
{
	touch(st, sizeof *st, "statx", RET);
	return next.statx ? next.statx(dirfd, path, flags, mask, st)
			  : (int)syscall(SYS_statx, dirfd, path, flags, mask, st);
}

static ssize_t do_pread(int fd, void *buf, size_t n, off_t off, size_t size, const void *ret)
{
	touch(buf, n, "pread", ret);
	size_test(n, size);
	return next.pread ? next.pread(fd, buf, n, off) : syscall(SYS_pread64, fd, buf, n, off);
}

HG_EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	return do_pread(fd, buf, n, off, SIZE_MAX, RET);
}

HG_EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t size)
{
	return do_pread(fd, buf, n, off, size, RET);
}

HG_EXPORT ssize_t readv(int fd, const struct iovec *iov, int n)
{
	touch_iov(iov, n, "readv", RET);
	return next.readv ? next.readv(fd, iov, n) : syscall(SYS_readv, fd, iov, n);
}

HG_EXPORT ssize_t preadv(int fd, const struct iovec *iov, int n, off_t off)
{
	touch_iov(iov, n, "preadv", RET);
	return next.preadv ? next.preadv(fd, iov, n, off) : syscall(SYS_preadv, fd, iov, n, off, 0);
}

/* recv is recvfrom without an address, as glibc makes it on x86-64. */
static ssize_t do_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *len,
			   size_t size, const char *func, const void *ret)
{
	touch(buf, n, func, ret);
	if (from && len)
		touch(from, *len, func, ret);
	size_test(n, size);
	return next.recvfrom ? next.recvfrom(fd, buf, n, flags, from, len)
			     : syscall(SYS_recvfrom, fd, buf, n, flags, from, len);
}

HG_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *len)
{
	return do_recvfrom(fd, buf, n, flags, from, len, SIZE_MAX, "recvfrom", RET);
}

HG_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t size, int flags, struct sockaddr *from,
				 socklen_t *len)
{
	return do_recvfrom(fd, buf, n, flags, from, len, size, "recvfrom", RET);
}

HG_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	return do_recvfrom(fd, buf, n, flags, NULL, NULL, SIZE_MAX, "recv", RET);
}

HG_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t size, int flags)
{
	return do_recvfrom(fd, buf, n, flags, NULL, NULL, size, "recv", RET);
}

HG_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (msg) {
		touch_iov(msg->msg_iov, (int)msg->msg_iovlen, "recvmsg", RET);
		touch(msg->msg_name, msg->msg_namelen, "recvmsg", RET);
		touch(msg->msg_control, msg->msg_controllen, "recvmsg", RET);
	}
	return next.recvmsg ? next.recvmsg(fd, msg, flags) : syscall(SYS_recvmsg, fd, msg, flags);
}

static char *do_getcwd(char *buf, size_t n, size_t size, const void *ret)
{
	touch(buf, n, "getcwd", ret);
	size_test(n, size);
	if (next.getcwd)
		return next.getcwd(buf, n);
	return syscall(SYS_getcwd, buf, n) < 0 ? NULL : buf;
}

HG_EXPORT char *getcwd(char *buf, size_t n)
{
	return do_getcwd(buf, n, SIZE_MAX, RET);
}

HG_EXPORT char *__getcwd_chk(char *buf, size_t n, size_t size)
{
	return do_getcwd(buf, n, size, RET);
}

static ssize_t do_readlink(const char *path, char *buf, size_t n, size_t size, const void *ret)
{
	touch(buf, n, "readlink", ret);
	size_test(n, size);
	return next.readlink ? next.readlink(path, buf, n) : syscall(SYS_readlink, path, buf, n);
}

HG_EXPORT ssize_t readlink(const char *path, char *buf, size_t n)
{
	return do_readlink(path, buf, n, SIZE_MAX, RET);
}

HG_EXPORT ssize_t __readlink_chk(const char *path, char *buf, size_t n, size_t size)
{
	return do_readlink(path, buf, n, size, RET);
}

/* libunwind checks memory by writing it into a pipe of its own, opened at its first use on the
 * lowest free descriptors, 3 and 4 in most programs: the program found its first descriptor
 * taken, and once it had closed them and opened its files there, libunwind read a byte of one
 * and wrote one into the other. Its pipe goes up among heapguard's descriptors. */
static int do_pipe2(int fds[2], int flags, const char *func, const void *ret)
{
	touch(fds, 2 * sizeof *fds, func, ret);
	int r = next.pipe2 ? next.pipe2(fds, flags) : (int)syscall(SYS_pipe2, fds, flags);
	for (int i = 0; r == 0 && i < 2 && hgc_from_unwinder(ret); i++) {
		int high = hg_os_private_fd(fds[i]);
		if (high != fds[i]) {
			hg_os_close(fds[i]);
			fds[i] = high;
		}
	}
	return r;
}

HG_EXPORT int pipe2(int fds[2], int flags)
{
	return do_pipe2(fds, flags, "pipe2", RET);
}

HG_EXPORT int pipe(int fds[2])
{
	return do_pipe2(fds, 0, "pipe", RET);
}

HG_EXPORT int socketpair(int domain, int type, int protocol, int sv[2])
{
	touch(sv, 2 * sizeof *sv, "socketpair", RET);
	return next.socketpair ? next.socketpair(domain, type, protocol, sv)
			       : (int)syscall(SYS_socketpair, domain, type, protocol, sv);
}

/* A socket address result: up to *len bytes at addr. */
static void touch_addr(struct sockaddr *addr, const socklen_t *len, const char *func, const void *ret)
{
	if (len)
		touch(addr, *len, func, ret);
}

HG_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	touch_addr(addr, len, "accept4", RET);
	return next.accept4 ? next.accept4(fd, addr, len, flags) : (int)syscall(SYS_accept4, fd, addr, len, flags);
}

HG_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	touch_addr(addr, len, "accept", RET);
	return next.accept4 ? next.accept4(fd, addr, len, 0) : (int)syscall(SYS_accept4, fd, addr, len, 0);
}

HG_EXPORT int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	touch_addr(addr, len, "getsockname", RET);
	return next.getsockname ? next.getsockname(fd, addr, len) : (int)syscall(SYS_getsockname, fd, addr, len);
}

HG_EXPORT int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	touch_addr(addr, len, "getpeername", RET);
	return next.getpeername ? next.getpeername(fd, addr, len) : (int)syscall(SYS_getpeername, fd, addr, len);
}

HG_EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	if (len)
		touch(val, *len, "getsockopt", RET);
	return next.getsockopt ? next.getsockopt(fd, level, name, val, len)
			       : (int)syscall(SYS_getsockopt, fd, level, name, val, len);
}

static int do_epoll_pwait(int ep, struct epoll_event *ev, int max, int timeout, const sigset_t *mask,
			  const char *func, const void *ret)
{
	touch(ev, max > 0 ? (size_t)max * sizeof *ev : 0, func, ret);
	return next.epoll_pwait ? next.epoll_pwait(ep, ev, max, timeout, mask)
				: (int)syscall(SYS_epoll_pwait, ep, ev, max, timeout, mask, _NSIG / 8);
}

HG_EXPORT int epoll_wait(int ep, struct epoll_event *ev, int max, int timeout)
{
	return do_epoll_pwait(ep, ev, max, timeout, NULL, "epoll_wait", RET);
}

HG_EXPORT int epoll_pwait(int ep, struct epoll_event *ev, int max, int timeout, const sigset_t *mask)
{
	return do_epoll_pwait(ep, ev, max, timeout, mask, "epoll_pwait", RET);
}

HG_EXPORT ssize_t getrandom(void *buf, size_t n, unsigned flags)
{
	touch(buf, n, "getrandom", RET);
	return next.getrandom ? next.getrandom(buf, n, flags) : syscall(SYS_getrandom, buf, n, flags);
}

/* ---- buffers the kernel reads: sent out, they must lie in their blocks and have been written */

static void send_iov(const struct iovec *iov, int n, const char *func, const void *ret)
{
	for (int i = 0; iov && i < n; i++)
		hgc_check_kernel_read(iov[i].iov_base, iov[i].iov_len, func, ret);
}

HG_EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	hgc_check_kernel_read(buf, n, "pwrite", RET);
	return next.pwrite ? next.pwrite(fd, buf, n, off) : syscall(SYS_pwrite64, fd, buf, n, off);
}

HG_EXPORT ssize_t writev(int fd, const struct iovec *iov, int n)
{
	send_iov(iov, n, "writev", RET);
	return next.writev ? next.writev(fd, iov, n) : syscall(SYS_writev, fd, iov, n);
}

HG_EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
	send_iov(iov, n, "pwritev", RET);
	return next.pwritev ? next.pwritev(fd, iov, n, off) : syscall(SYS_pwritev, fd, iov, n, off, 0);
}

HG_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to,
			 socklen_t len)
{
	hgc_check_kernel_read(buf, n, "sendto", RET);
	return next.sendto ? next.sendto(fd, buf, n, flags, to, len) : syscall(SYS_sendto, fd, buf, n, flags, to, len);
}

HG_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (msg)
		send_iov(msg->msg_iov, (int)msg->msg_iovlen, "sendmsg", RET);
	return next.sendmsg ? next.sendmsg(fd, msg, flags) : syscall(SYS_sendmsg, fd, msg, flags);
}

/* ---- exec ----
 * The next image writes its own P record, unless LD_PRELOAD does not reach it (a static or
 * set-user-ID program, an environment without it): the A record written before names the
 * program, so that the command can say which one ran unchecked rather than sum up what ran
 * before (`env ./static`, `sh -c 'exec ./static'`). system and popen execute inside libc, but
 * what they run is the shell, which is checked and says what it runs. */

/* The program an exec of `file` runs: made absolute, or with search (execvp) and no slash,
 * the first executable of that name in PATH; `file` itself when that fails. */
static const char *exec_program(const char *file, int search, char *buf, size_t size)
{
	if (!search || strchr(file, '/')) {
		while (file[0] == '.' && file[1] == '/')
			file += 2;
		size_t c, n = strlen(file);
		if (file[0] == '/' || !getcwd(buf, size) || (c = strlen(buf)) + n + 2 > size)
			return file;
		buf[c] = '/';
		memcpy(buf + c + 1, file, n + 1);
		return buf;
	}
	size_t n = strlen(file);
	const char *path = getenv("PATH");
	for (const char *dir = path ? path : "/bin:/usr/bin", *end;; dir = end + 1) {
		end = strchrnul(dir, ':');
		size_t d = (size_t)(end - dir);
		if (d + n + 2 <= size) {
			memcpy(buf, d ? dir : ".", d ? d : 1);
			d += !d;
			buf[d] = '/';
			memcpy(buf + d + 1, file, n + 1);
			if (access(buf, X_OK) == 0)
				return buf;
		}
		if (!*end)
			return file;
	}
}

/* Records the program (an expression that may use the buffer buf_) and the environment it
 * gets, makes the call, and takes the record back if the call returns. */
#define EXEC(program, envp, call)                                                       \
	do {                                                                            \
		char buf_[PATH_MAX];                                                    \
		int on_ = hgc_records_on();                                             \
		if (on_)                                                                \
			hgc_record_exec(program, envp);                                 \
		int r_ = (call), errno_ = errno;                                        \
		if (on_)                                                                \
			hgc_record_exec(NULL, NULL);                                    \
		errno = errno_;                                                         \
		return r_;                                                              \
	} while (0)
#define PROGRAM(file, search) exec_program(file, search, buf_, sizeof buf_)

/* The real execvp and execvpe (found at load, or now when an exec comes before). */
#define NEXT_EXEC(f) (next.f ? next.f : (*(void **)&next.f = dlsym(RTLD_NEXT, #f), next.f))

HG_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	EXEC(PROGRAM(path, 0), envp, (int)syscall(SYS_execve, path, argv, envp));
}

HG_EXPORT int execv(const char *path, char *const argv[])
{
	EXEC(PROGRAM(path, 0), environ, (int)syscall(SYS_execve, path, argv, environ));
}

HG_EXPORT int execvp(const char *file, char *const argv[])
{
	EXEC(PROGRAM(file, 1), environ, NEXT_EXEC(execvp)(file, argv));
}

HG_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	EXEC(PROGRAM(file, 1), envp, NEXT_EXEC(execvpe)(file, argv, envp));
}

/* The program at `path` from directory fd dirfd (AT_FDCWD: the working one; AT_EMPTY_PATH:
 * the file dirfd itself), by the descriptors' links in /proc. */
static const char *exec_program_at(int dirfd, const char *path, int flags, char *buf, size_t size)
{
	if (path[0] == '/')
		return path;
	if (dirfd == AT_FDCWD)
		return exec_program(path, 0, buf, size);
	struct hg_buf link = { .len = 0 };
	hg_buf_str(&link, "/proc/thread-self/fd/"); /* the first thread may have exited */
	hg_buf_dec(&link, (uint64_t)dirfd);
	link.text[link.len < sizeof link.text ? link.len : sizeof link.text - 1] = 0;
	ssize_t n = readlink(link.text, buf, size - 1);
	if (n <= 0)
		return path;
	buf[n] = 0;
	size_t len = strlen(path);
	if (!(flags & AT_EMPTY_PATH && !*path) && (size_t)n + len + 2 <= size) {
		buf[n] = '/';
		memcpy(buf + n + 1, path, len + 1);
	}
	return buf;
}

HG_EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
	EXEC(exec_program_at(dirfd, path, flags, buf_, sizeof buf_), envp,
	     (int)syscall(SYS_execveat, dirfd, path, argv, envp, flags));
}

HG_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	EXEC(exec_program_at(fd, "", AT_EMPTY_PATH, buf_, sizeof buf_), envp, NEXT_EXEC(fexecve)(fd, argv, envp));
}

/* execl and its kin: the arguments after arg, up to the NULL, as the vector argv (a VLA of the
 * caller's), then what follows the NULL in ap. */
#define EXEC_ARGS(argv, arg, ap)                                        \
	size_t n_ = 1;                                                  \
	va_start(ap, arg);                                              \
	while (va_arg(ap, const char *))                                \
		n_++;                                                   \
	va_end(ap);                                                     \
	const char *argv[n_ + 1];                                       \
	argv[0] = arg;                                                  \
	va_start(ap, arg);                                              \
	for (size_t i_ = 1; i_ <= n_; i_++)                             \
		argv[i_] = va_arg(ap, const char *)

HG_EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	EXEC_ARGS(argv, arg, ap);
	va_end(ap);
	return execv(path, (char *const *)argv);
}

HG_EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	EXEC_ARGS(argv, arg, ap);
	char *const *envp = va_arg(ap, char *const *);
	va_end(ap);
	return execve(path, (char *const *)argv, envp);
}

HG_EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	EXEC_ARGS(argv, arg, ap);
	va_end(ap);
	return execvp(file, (char *const *)argv);
}

/* posix_spawn and posix_spawnp: the child runs the program at once (their exec is inside
 * libc); the parent says which program its new child runs. */
#define SPAWN(f, file, search)                                                                 \
	do {                                                                                   \
		pid_t child_ = 0;                                                              \
		int r_ = NEXT_EXEC(f)(&child_, file, actions, attr, argv, envp);               \
		if (r_ == 0 && hgc_records_on()) {                                             \
			char buf_[PATH_MAX];                                                   \
			hgc_record_spawn(child_, PROGRAM(file, search), envp);                 \
		}                                                                              \
		if (r_ == 0 && pid)                                                            \
			*pid = child_;                                                         \
		return r_;                                                                     \
	} while (0)

HG_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
			  const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	SPAWN(posix_spawn, path, 0);
}

HG_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions,
			   const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	SPAWN(posix_spawnp, file, 1);
}

/* The large-file names: on x86-64 the same structures, so the same functions. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wattribute-alias"
HG_EXPORT __typeof(stat64) stat64 __attribute__((alias("stat")));
HG_EXPORT __typeof(lstat64) lstat64 __attribute__((alias("lstat")));
HG_EXPORT __typeof(fstat64) fstat64 __attribute__((alias("fstat")));
HG_EXPORT __typeof(fstatat64) fstatat64 __attribute__((alias("fstatat")));
HG_EXPORT __typeof(pread64) pread64 __attribute__((alias("pread")));
HG_EXPORT __typeof(__pread_chk) __pread64_chk __attribute__((alias("__pread_chk")));
HG_EXPORT __typeof(preadv64) preadv64 __attribute__((alias("preadv")));
HG_EXPORT __typeof(pwrite64) pwrite64 __attribute__((alias("pwrite")));
HG_EXPORT __typeof(pwritev64) pwritev64 __attribute__((alias("pwritev")));
#pragma GCC diagnostic pop
