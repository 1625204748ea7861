/* SPDX-License-Identifier: MIT */
/*
 * sandbox: seccomp allow-lists (one table per profile, the only ones in the project), Landlock
 * rules and the private mount view of a confined child.  See sandbox.h for the order of use.
 *
 * The allow-lists were collected by running the analyzer under `strace -f` on the test suite's
 * cores (every interpreter and scenario; plain, --native, --locals, --json, --tasks, pystackd's
 * own flags; a debuginfod answering 404), then checked by every test that runs pystackd (kept
 * binaries, a container's --source-root, stored .zst cores), and kept as tight as the tests
 * allow; README "The analysis sandbox" gives the figures.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <limits.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "sandbox.h"
#include "util.h"

/* ---- seccomp ---- */

enum rule_kind {
        RULE_ALLOW,             /* always */
        RULE_ARG_IN,            /* when argument `arg` (its low 32 bits) is one of values[] */
        RULE_ARG_SELF,          /* when argument `arg` is the caller's pid (execve keeps it) */
        RULE_ARG_HAS_BITS,      /* when argument `arg` has every bit of values[0] */
        RULE_ARG_EXEC_FD,       /* when argument `arg` is the exec_fd given to sandbox_seccomp() */
        RULE_ERRNO,             /* never runs: fails with errno_else (clone3: glibc falls back to clone) */
};

struct syscall_rule {
        int nr;
        const char *name;
        uint8_t kind;
        uint8_t arg;
        uint8_t n_values;
        uint16_t errno_else;    /* RULE_ARG_*: fail with this instead of killing; RULE_ERRNO: the errno */
        uint32_t values[4];
};

#define ALLOW(n) { .nr = __NR_##n, .name = #n, .kind = RULE_ALLOW }
#define ALLOW_ARG_IN(n, a, ...) { .nr = __NR_##n, .name = #n, .kind = RULE_ARG_IN, .arg = (a), \
                .values = { __VA_ARGS__ }, .n_values = sizeof((uint32_t[]) { __VA_ARGS__ }) / sizeof(uint32_t) }
#define ALLOW_ARG_IN_ELSE(n, e, a, ...) { .nr = __NR_##n, .name = #n, .kind = RULE_ARG_IN, .arg = (a), \
                .errno_else = (e), .values = { __VA_ARGS__ }, \
                .n_values = sizeof((uint32_t[]) { __VA_ARGS__ }) / sizeof(uint32_t) }
#define ALLOW_SELF(n, a) { .nr = __NR_##n, .name = #n, .kind = RULE_ARG_SELF, .arg = (a) }
#define ALLOW_BITS(n, a, bits) { .nr = __NR_##n, .name = #n, .kind = RULE_ARG_HAS_BITS, .arg = (a), \
                .values = { (bits) }, .n_values = 1 }
#define FAIL(n, e) { .nr = __NR_##n, .name = #n, .kind = RULE_ERRNO, .errno_else = (e) }
#define RULES_END { .nr = -1 }

/*
 * What `pystack core` needs: the dynamic loader and libc's start (brk, mmap, mprotect, arch_prctl,
 * set_tid_address, set_robust_list, rseq, prlimit64, getrandom), files (the core and kept files
 * arrive as descriptors; executables, libraries, debug files, source files and the debug cache
 * are opened by path), memory, and dying of its own signal (abort).  Calls that only exist on
 * some architectures are guarded, with the call glibc makes instead where they are missing:
 * aarch64 has no arch_prctl (the thread pointer is a register it sets), access (faccessat),
 * readlink (readlinkat), mkdir (mkdirat), pause (ppoll), poll (ppoll), rmdir and unlink
 * (unlinkat); checked with qemu-aarch64-static -strace.
 */
static const struct syscall_rule analyzer_rules[] = {
        /* exec of the analyzer itself, on the descriptor pystackd opened before hiding anything */
        { .nr = __NR_execveat, .name = "execveat", .kind = RULE_ARG_EXEC_FD, .arg = 0 },
        /* the loader and libc's start */
        ALLOW(brk), ALLOW(mmap), ALLOW(mprotect), ALLOW(munmap), ALLOW(mremap),
#ifdef __NR_arch_prctl
        ALLOW(arch_prctl),
#endif
        ALLOW(set_tid_address), ALLOW(set_robust_list), ALLOW(rseq), ALLOW(getrandom),
        /* its own limits only (pid 0): another process of the same uid is not its business */
        ALLOW_ARG_IN(prlimit64, 0, 0),
        /* files: descriptors it was given, paths it opens, its debug cache (written, renamed in place,
         * a failed copy removed) */
        ALLOW(openat), ALLOW(openat2), ALLOW(close), ALLOW(read), ALLOW(pread64), ALLOW(write),
        ALLOW(pwrite64), ALLOW(lseek), ALLOW(newfstatat), ALLOW(fcntl), ALLOW(fsync), ALLOW(ftruncate),
        ALLOW(renameat), ALLOW(unlinkat),
#ifdef __NR_access
        ALLOW(access),
#else
        ALLOW(faccessat),
#endif
#ifdef __NR_readlink
        ALLOW(readlink),
#else
        ALLOW(readlinkat),
#endif
#ifdef __NR_mkdir
        ALLOW(mkdir),
#else
        ALLOW(mkdirat),
#endif
        /* isatty() and the terminal's width: nothing else reaches a device */
        ALLOW_ARG_IN(ioctl, 1, TCGETS, TIOCGWINSZ),
        /* who it is, the memory size (libdw sizes its caches by it), clocks the vDSO lacks */
        ALLOW(getpid), ALLOW(geteuid), ALLOW(sysinfo), ALLOW(clock_gettime),
        /* locks, and dying of its own signal: abort() says why (writev), then raise() -> tgkill of
         * its own pid */
        ALLOW(futex), ALLOW(writev), ALLOW(rt_sigaction), ALLOW(rt_sigprocmask), ALLOW(rt_sigreturn),
        ALLOW(gettid), ALLOW_SELF(tgkill, 0),
        /* waiting: a hung analysis is stopped by its time limit, not by the filter (test_pystackd's
         * case 4 hangs in pause()); restart_syscall after a stop */
        ALLOW(clock_nanosleep), ALLOW(restart_syscall),
#ifdef __NR_pause
        ALLOW(pause),
#else
        ALLOW(ppoll),
#endif
        ALLOW(exit), ALLOW(exit_group),
        RULES_END,
};

/*
 * What libdebuginfod adds to the analyzer's list (only when DEBUGINFOD_URLS is configured;
 * Landlock then limits TCP connections to the URLs' ports): libcurl's sockets and its poll loop,
 * the socketpair it wakes itself with, the resolver (nscd's AF_UNIX socket, UDP to the name
 * server, AF_NETLINK for getaddrinfo's AI_ADDRCONFIG), uname, the client cache's clean-up
 * (rmdir), and curl's resolver thread: clone3's flags are in memory a filter cannot read, so it
 * fails with ENOSYS and glibc falls back to clone, whose flags must say CLONE_THREAD|CLONE_VM (a
 * thread, never a new process).  A socket of another family fails with EAFNOSUPPORT.
 */
static const struct syscall_rule net_rules[] = {
        ALLOW_ARG_IN_ELSE(socket, EAFNOSUPPORT, 0, AF_INET, AF_INET6, AF_UNIX, AF_NETLINK),
        ALLOW_ARG_IN(socketpair, 0, AF_UNIX),
        ALLOW(connect), ALLOW(getsockname), ALLOW(getpeername), ALLOW(getsockopt), ALLOW(setsockopt),
        ALLOW(sendto), ALLOW(recvfrom), ALLOW(sendmsg), ALLOW(recvmsg), ALLOW(sendmmsg),
        ALLOW(bind),    /* the resolver's netlink socket; Landlock denies TCP binds */
        ALLOW(uname), ALLOW(madvise),
#ifdef __NR_pause
        ALLOW(ppoll),   /* without pause(2) the analyzer's own list has it */
#endif
#ifdef __NR_poll
        ALLOW(poll),
#endif
#ifdef __NR_rmdir
        ALLOW(rmdir), ALLOW(unlink),
#endif
        ALLOW_BITS(clone, 0, CLONE_THREAD | CLONE_VM),
        FAIL(clone3, ENOSYS),
        RULES_END,
};

/*
 * What pystackd's query worker (daemon/pystackd/query_worker.c) needs once it has opened the
 * store and cores/ and dropped everything: SQLite reading the files it has open (pread64, record
 * locks, sizes), the listing of cores/, memory that is never executable, and its two sockets --
 * read only from its connection (3), written only to it and to stderr (2, a sanitizer's report),
 * the channel to pystackd (4) for one message out and one answer, with a descriptor, in.  No
 * open, no exec, no process, no other socket.  Collected with strace over test_pystackctl.py's
 * users' queries (list, info, show, groups, dump, debug, analyze, vacuum), plain and sanitized.
 */
static const struct syscall_rule query_rules[] = {
        ALLOW_ARG_IN(read, 0, 3), ALLOW_ARG_IN(write, 0, 2, 3),
        ALLOW_ARG_IN(sendmsg, 0, 3), ALLOW_ARG_IN(sendto, 0, 4), ALLOW_ARG_IN(recvmsg, 0, 4),
        ALLOW(pread64), ALLOW(lseek), ALLOW(fcntl), ALLOW(newfstatat), ALLOW(close), ALLOW(getdents64),
        /* the search cores/ denies it (EACCES), after which it is listed */
        ALLOW(faccessat), ALLOW(faccessat2),
        ALLOW(brk), ALLOW_ARG_IN(mmap, 2, PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE), ALLOW(munmap),
        ALLOW(mremap), ALLOW(madvise),
        ALLOW(getpid), ALLOW(clock_gettime), ALLOW(futex), ALLOW(rt_sigreturn),
        /* glibc's qsort() sizes its buffer by the memory there is (the names of cores/, sorted) */
        ALLOW(sysinfo),
#if SANITIZER_BUILD
        /* AddressSanitizer's _exit() */
        ALLOW(sigaltstack),
#endif
        ALLOW(exit), ALLOW(exit_group),
        RULES_END,
};

struct profile {
        const char *name;
        const struct syscall_rule *const sets[3];       /* NULL-terminated; no call in two sets */
};

static const struct profile profiles[_SANDBOX_PROFILE_MAX] = {
        [SANDBOX_ANALYZER] = { "analyzer", { analyzer_rules } },
        [SANDBOX_ANALYZER_NET] = { "analyzer+debuginfod", { analyzer_rules, net_rules } },
        [SANDBOX_QUERY] = { "query", { query_rules } },
};

/*
 * The architectures a filter checks: the one this program is built for.  A call made with
 * another ABI (x32's numbers on x86-64, or i386's through int 0x80; on aarch64 an AArch32
 * task's, AUDIT_ARCH_ARM) is killed.
 */
struct arch {
        uint32_t audit_arch;
        uint32_t nr_bad_bits;   /* a number with any of these bits is another ABI's */
};
static const struct arch native_arch =
#if defined(__x86_64__)
        { AUDIT_ARCH_X86_64, 0x40000000u /* __X32_SYSCALL_BIT */ };
#elif defined(__aarch64__)
        { AUDIT_ARCH_AARCH64, 0 };
#else
#error "sandbox.c: add this architecture to the table"
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#else
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i) + 4)
#endif

#define FILTER_MAX 1024

struct filter {
        struct sock_filter insn[FILTER_MAX];
        unsigned n;
};

static int emit(struct filter *f, uint16_t code, uint8_t jt, uint8_t jf, uint32_t k) {
        if (f->n >= FILTER_MAX)
                return -E2BIG;
        f->insn[f->n++] = (struct sock_filter) BPF_JUMP(code, k, jt, jf);
        return 0;
}

/* The body of one rule, the system call number already matched; always ends in a return. */
static int emit_rule(struct filter *f, const struct syscall_rule *r, int exec_fd, uint32_t self) {
        uint32_t deny = r->errno_else ? SECCOMP_RET_ERRNO | r->errno_else : SECCOMP_RET_KILL_PROCESS;
        int e = 0;

        switch (r->kind) {
        case RULE_ALLOW:
                return emit(f, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
        case RULE_ERRNO:
                return emit(f, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ERRNO | r->errno_else);
        case RULE_ARG_EXEC_FD:
                if (exec_fd < 0)
                        return emit(f, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_KILL_PROCESS);
                self = (uint32_t)exec_fd;
                /* fall through */
        case RULE_ARG_SELF:
                e = e ?: emit(f, BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(r->arg));
                e = e ?: emit(f, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, self);
                break;
        case RULE_ARG_IN:
                e = e ?: emit(f, BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(r->arg));
                for (unsigned i = 0; i < r->n_values; i++)
                        e = e ?: emit(f, BPF_JMP | BPF_JEQ | BPF_K, r->n_values - i, 0, r->values[i]);
                break;
        case RULE_ARG_HAS_BITS:
                e = e ?: emit(f, BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(r->arg));
                e = e ?: emit(f, BPF_ALU | BPF_AND | BPF_K, 0, 0, r->values[0]);
                e = e ?: emit(f, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, r->values[0]);
                break;
        default:
                return -EINVAL;
        }
        e = e ?: emit(f, BPF_RET | BPF_K, 0, 0, deny);
        return e ?: emit(f, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
}

static int build_filter(struct filter *f, enum sandbox_profile p, int exec_fd) {
        uint32_t self = (uint32_t)getpid();
        int r = 0;

        f->n = 0;
        r = r ?: emit(f, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, arch));
        r = r ?: emit(f, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, native_arch.audit_arch);
        r = r ?: emit(f, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_KILL_PROCESS);
        r = r ?: emit(f, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, nr));
        if (native_arch.nr_bad_bits) {
                r = r ?: emit(f, BPF_JMP | BPF_JSET | BPF_K, 0, 1, native_arch.nr_bad_bits);
                r = r ?: emit(f, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_KILL_PROCESS);
        }
        for (const struct syscall_rule *const *set = profiles[p].sets; *set; set++)
                for (const struct syscall_rule *rule = *set; rule->nr >= 0; rule++) {
                        unsigned at = f->n, len;

                        /* jeq nr, 0, <past the body>: the body's length is known once emitted */
                        r = r ?: emit(f, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, (uint32_t)rule->nr);
                        r = r ?: emit_rule(f, rule, exec_fd, self);
                        if (r < 0)
                                return r;
                        len = f->n - at - 1;
                        if (len > 255)
                                return -E2BIG;
                        f->insn[at].jf = (uint8_t)len;
                }
        return r ?: emit(f, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_KILL_PROCESS);
}

static bool rule_listed_before(enum sandbox_profile p, const struct syscall_rule *until, int nr) {
        for (const struct syscall_rule *const *set = profiles[p].sets; *set; set++)
                for (const struct syscall_rule *rule = *set; rule->nr >= 0; rule++) {
                        if (rule == until)
                                return false;
                        if (rule->nr == nr)
                                return true;
                }
        return false;
}

int sandbox_seccomp(enum sandbox_profile p, int exec_fd) {
        static struct filter f;         /* 8 KiB: not on a child's stack */
        struct sock_fprog prog;
        int r;

        if ((unsigned)p >= _SANDBOX_PROFILE_MAX)
                return -EINVAL;
        r = build_filter(&f, p, exec_fd);
        if (r < 0)
                return r;
        prog = (struct sock_fprog) { .len = (unsigned short)f.n, .filter = f.insn };
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
                return -errno;
        return 0;
}

static const struct syscall_rule *nth_rule(enum sandbox_profile p, unsigned n) {
        unsigned i = 0;

        if ((unsigned)p >= _SANDBOX_PROFILE_MAX)
                return NULL;
        for (const struct syscall_rule *const *set = profiles[p].sets; *set; set++)
                for (const struct syscall_rule *rule = *set; rule->nr >= 0; rule++) {
                        /* a call listed twice is a mistake the count must not hide: the first wins */
                        if (rule->kind == RULE_ERRNO || rule_listed_before(p, rule, rule->nr))
                                continue;
                        if (i++ == n)
                                return rule;
                }
        return NULL;
}

unsigned sandbox_seccomp_count(enum sandbox_profile p) {
        unsigned n = 0;

        while (nth_rule(p, n))
                n++;
        return n;
}

const char *sandbox_seccomp_name(enum sandbox_profile p, unsigned i) {
        const struct syscall_rule *r = nth_rule(p, i);

        return r ? r->name : NULL;
}

/* ---- Landlock ---- */

/* The kernel's ABI, declared here: Debian 12's headers stop at ABI 2. */
#define LL_CREATE_RULESET_VERSION (1u << 0)
#define LL_RULE_PATH_BENEATH 1
#define LL_RULE_NET_PORT 2
#define LL_FS_EXECUTE (1ull << 0)
#define LL_FS_WRITE_FILE (1ull << 1)
#define LL_FS_READ_FILE (1ull << 2)
#define LL_FS_READ_DIR (1ull << 3)
#define LL_FS_REMOVE_DIR (1ull << 4)
#define LL_FS_REMOVE_FILE (1ull << 5)
#define LL_FS_MAKE_CHAR (1ull << 6)
#define LL_FS_MAKE_DIR (1ull << 7)
#define LL_FS_MAKE_REG (1ull << 8)
#define LL_FS_MAKE_SOCK (1ull << 9)
#define LL_FS_MAKE_FIFO (1ull << 10)
#define LL_FS_MAKE_BLOCK (1ull << 11)
#define LL_FS_MAKE_SYM (1ull << 12)
#define LL_FS_REFER (1ull << 13)        /* ABI 2 */
#define LL_FS_TRUNCATE (1ull << 14)     /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ull << 15)    /* ABI 5 */
#define LL_NET_BIND_TCP (1ull << 0)     /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ull << 1)
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ull << 0)       /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ull << 1)

struct ll_ruleset_attr {
        uint64_t handled_access_fs;
        uint64_t handled_access_net;
        uint64_t scoped;
};
struct ll_path_beneath_attr {
        uint64_t allowed_access;
        int32_t parent_fd;
} __attribute__((packed));
struct ll_net_port_attr {
        uint64_t allowed_access;
        uint64_t port;
};

int sandbox_landlock_abi(void) {
        long abi = syscall(__NR_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);

        return abi > 0 ? (int)abi : 0;
}

static int add_path_rule(int ruleset, int dir_fd, uint64_t access) {
        struct ll_path_beneath_attr pb = { .allowed_access = access, .parent_fd = dir_fd };

        return syscall(__NR_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &pb, 0) < 0 ? -errno : 0;
}

static int add_path_rule_at(int ruleset, const char *path, uint64_t access) {
        _cleanup_close_ int fd = open(path, O_PATH | O_CLOEXEC | O_DIRECTORY);

        if (fd < 0)
                return -errno;
        return add_path_rule(ruleset, fd, access);
}

int sandbox_landlock(const struct sandbox_landlock *l) {
        const uint64_t read = LL_FS_EXECUTE | LL_FS_READ_FILE | LL_FS_READ_DIR;
        uint64_t fs = LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_READ_DIR | LL_FS_REMOVE_DIR |
                      LL_FS_REMOVE_FILE | LL_FS_MAKE_CHAR | LL_FS_MAKE_DIR | LL_FS_MAKE_REG | LL_FS_MAKE_SOCK |
                      LL_FS_MAKE_FIFO | LL_FS_MAKE_BLOCK | LL_FS_MAKE_SYM;
        struct ll_ruleset_attr attr = {};
        size_t attr_size = offsetof(struct ll_ruleset_attr, handled_access_net);
        _cleanup_close_ int ruleset = -1;
        int r;

        if (l->abi <= 0)
                return 0;
        if (l->abi >= 2)
                fs |= LL_FS_REFER;
        if (l->abi >= 3)
                fs |= LL_FS_TRUNCATE;
        if (l->abi >= 5)
                fs |= LL_FS_IOCTL_DEV;
        attr.handled_access_fs = fs;
        if (l->abi >= 4 && l->handle_tcp) {
                attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
                attr_size = offsetof(struct ll_ruleset_attr, scoped);
        }
        if (l->abi >= 6) {
                attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
                attr_size = sizeof(attr);
        }
        ruleset = (int)syscall(__NR_landlock_create_ruleset, &attr, attr_size, 0);
        if (ruleset < 0)
                return -errno;
        if (l->read_path && (r = add_path_rule_at(ruleset, l->read_path, read)) < 0)
                return r;
        if (l->read_fd >= 0 && (r = add_path_rule(ruleset, l->read_fd, LL_FS_READ_FILE | LL_FS_READ_DIR)) < 0)
                return r;
        /* the writable directory: files and directories in it, nothing that is not a file */
        if (l->write_path &&
            (r = add_path_rule_at(ruleset, l->write_path,
                                  fs & ~(LL_FS_EXECUTE | LL_FS_MAKE_CHAR | LL_FS_MAKE_BLOCK | LL_FS_MAKE_SOCK |
                                         LL_FS_MAKE_FIFO | LL_FS_MAKE_SYM | LL_FS_IOCTL_DEV))) < 0)
                return r;
        if (attr.handled_access_net)
                for (size_t i = 0; i < l->n_tcp_ports; i++) {
                        struct ll_net_port_attr np = { .allowed_access = LL_NET_CONNECT_TCP,
                                                       .port = l->tcp_ports[i] };

                        if (syscall(__NR_landlock_add_rule, ruleset, LL_RULE_NET_PORT, &np, 0) < 0)
                                return -errno;
                }
        if (syscall(__NR_landlock_restrict_self, ruleset, 0) < 0)
                return -errno;
        return l->abi;
}

static int add_port(uint16_t *ports, size_t max, size_t *n, unsigned long port) {
        for (size_t i = 0; i < *n; i++)
                if (ports[i] == port)
                        return 0;
        if (*n >= max)
                return -E2BIG;
        ports[(*n)++] = (uint16_t)port;
        return 0;
}

int sandbox_debuginfod_ports(const char *urls, uint16_t *ports, size_t max) {
        size_t n = 0;
        bool named = false;

        while (urls && *urls) {
                size_t len = strcspn(urls, " \t\n"), host_len;
                const char *u = urls, *end = urls + len, *host, *colon, *bracket;
                unsigned long port;
                int r;

                urls += len + strspn(urls + len, " \t\n");
                if (len == 0)
                        continue;
                if (len > 7 && !strncmp(u, "http://", 7))
                        port = 80, host = u + 7;
                else if (len > 8 && !strncmp(u, "https://", 8))
                        port = 443, host = u + 8;
                else
                        return -EINVAL;         /* file:// and friends: no port to allow */
                host_len = strcspn(host, "/?#");
                if (host + host_len > end)
                        host_len = (size_t)(end - host);
                if (memchr(host, '@', host_len))
                        return -EINVAL;
                bracket = host[0] == '[' ? memchr(host, ']', host_len) : NULL;
                colon = memchr(bracket ? bracket : host, ':', host_len - (size_t)((bracket ? bracket : host) - host));
                if (colon) {
                        char *e;

                        errno = 0;
                        port = strtoul(colon + 1, &e, 10);
                        if (errno || e == colon + 1 || e != host + host_len || port == 0 || port > 65535)
                                return -EINVAL;
                } else
                        colon = host + host_len;
                /* an IPv4 address is digits and dots, an IPv6 one is bracketed: anything else is a name */
                if (!bracket && strspn(host, "0123456789.") < (size_t)(colon - host))
                        named = true;
                if ((r = add_port(ports, max, &n, port)) < 0)
                        return r;
        }
        if (named) {
                int r = add_port(ports, max, &n, 53);
                if (r < 0)
                        return r;
        }
        return (int)n;
}

/* ---- the mount view ---- */

/* mkdir -p below a tmpfs we just mounted; components that exist are kept as they are. */
static int make_path(const char *path) {
        char p[PATH_MAX];

        if ((size_t)snprintf(p, sizeof(p), "%s", path) >= sizeof(p))
                return -ENAMETOOLONG;
        for (char *s = p + 1;; s++) {
                if (*s == '/' || !*s) {
                        char c = *s;

                        *s = 0;
                        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                                return -errno;
                        if (!c)
                                return 0;
                        *s = c;
                }
        }
}

static bool under(const char *path, const char *dir) {
        size_t n = strlen(dir);

        while (n > 1 && dir[n - 1] == '/')
                n--;
        return !strncmp(path, dir, n) && (path[n] == '/' || !path[n] || n == 1);
}

int sandbox_mount_view(const struct sandbox_view *v) {
        struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
        struct mount_attr rw = { .attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                                 .attr_clr = MOUNT_ATTR_RDONLY };
        _cleanup_close_ int writable = -1, dev_null = -1;
        const char *hidden[32];
        size_t n_hidden = 0;

        if (unshare(CLONE_NEWNS | (v->new_net ? CLONE_NEWNET : 0)) < 0)
                return -errno;
        /* nothing we do here may reach the host's mounts, nor theirs ours */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return -errno;
        /* detached copies of what is bound later, taken while the tree is still as it was */
        if (v->writable) {
                writable = open_tree(AT_FDCWD, v->writable, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
                if (writable < 0 || mount_setattr(writable, "", AT_EMPTY_PATH, &rw, sizeof(rw)) < 0)
                        return -errno;
        }
        if (v->keep_dev_null) {
                dev_null = open_tree(AT_FDCWD, "/dev/null", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
                if (dev_null < 0)
                        return -errno;
        }
        if (mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof(ro)) < 0)
                return -errno;
        for (const char *const *h = v->hide; h && *h; h++) {
                bool covered = false;

                for (size_t i = 0; i < n_hidden; i++)
                        covered |= under(*h, hidden[i]);
                if (covered)
                        continue;       /* below a tmpfs already: nothing there to hide */
                if (n_hidden == ELEMENTSOF(hidden))
                        return -E2BIG;
                if (mount("pystackd-sandbox", *h, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                          "mode=0755,size=64k,nr_inodes=64") < 0) {
                        if (errno == ENOENT || errno == ENOTDIR)
                                continue;
                        return -errno;
                }
                hidden[n_hidden++] = *h;
        }
        if (writable >= 0) {
                int r = make_path(v->writable);

                if (r < 0)
                        return r;
                if (move_mount(writable, "", AT_FDCWD, v->writable, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                        return -errno;
        }
        if (dev_null >= 0) {
                _cleanup_close_ int fd = open("/dev/null", O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);

                if (fd < 0 || move_mount(dev_null, "", AT_FDCWD, "/dev/null", MOVE_MOUNT_F_EMPTY_PATH) < 0)
                        return -errno;
        }
        /* the tmpfs read-only too, now that their mount points are made (the binds stay as they are) */
        for (size_t i = 0; i < n_hidden; i++) {
                struct mount_attr ro_tmp = { .attr_set = MOUNT_ATTR_RDONLY };

                /* ENOENT: a later, wider one covers it */
                if (mount_setattr(AT_FDCWD, hidden[i], 0, &ro_tmp, sizeof(ro_tmp)) < 0 && errno != ENOENT)
                        return -errno;
        }
        return 0;
}
