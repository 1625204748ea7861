/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

#include "live_process.h"
#include "util.h"

#define MAX_PROC_FILE (64u << 20)       /* /proc/PID/maps of a process with a million mappings */

struct live {
        pid_t pid;
        int mem_fd;                     /* /proc/PID/mem, opened when process_vm_readv is refused */
        bool use_mem;                   /* process_vm_readv refused (or LIVE_FORCE_PROC_MEM) */
        int64_t stopped_at;             /* CLOCK_MONOTONIC µs when the first thread was stopped, or 0 */
        int64_t *held;                  /* the core's live_held_usec: set at resume */
        pid_t *seized;                  /* the threads stopped, and the signal each was stopped with */
        int *pending;
        size_t n_seized, allocated;
};

static char message[320];

static const char *say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *say(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(message, sizeof(message), fmt, ap);
        va_end(ap);
        return message;
}

/* ---- memory ---- */

static int mem_read(struct live *l, void *buf, size_t len, uint64_t addr) {
        if (l->mem_fd < 0) {
                char path[64];

                snprintf(path, sizeof(path), "/proc/%d/mem", (int)l->pid);
                l->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
                if (l->mem_fd < 0)
                        return -EFAULT;
        }
        while (len) {
                ssize_t n = pread(l->mem_fd, buf, len, (off_t)addr);
                if (n <= 0)
                        return -EFAULT;
                buf = (uint8_t *)buf + n;
                addr += (uint64_t)n;
                len -= (size_t)n;
        }
        return 0;
}

/*
 * len bytes at addr, all or nothing.  A read that stops short (a page that cannot be read, as in
 * a JIT's guarded mapping) is tried again from there, page by page, so the bytes that can be read
 * are told from the one that cannot.
 */
static int live_pread(void *ctx, void *buf, size_t len, uint64_t addr) {
        struct live *l = ctx;

        if (addr > INT64_MAX || len > INT64_MAX - addr)
                return -EFAULT;
        if (l->use_mem)
                return mem_read(l, buf, len, addr);
        while (len) {
                struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };
                ssize_t n = process_vm_readv(l->pid, &local, 1, &remote, 1, 0);

                if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
                        /* refused as a whole (seccomp, a kernel without it): the other way */
                        l->use_mem = true;
                        return mem_read(l, buf, len, addr);
                }
                if (n <= 0) {
                        size_t page = 4096 - (addr & 4095);
                        if (page >= len)
                                return -EFAULT;
                        /* one page at a time across what may be a guard page */
                        local.iov_len = remote.iov_len = page;
                        n = process_vm_readv(l->pid, &local, 1, &remote, 1, 0);
                        if (n <= 0)
                                return -EFAULT;
                }
                buf = (uint8_t *)buf + n;
                addr += (uint64_t)n;
                len -= (size_t)n;
        }
        return 0;
}

static const void *live_view(void *ctx, size_t len, uint64_t off) {
        return NULL;
}

static void detach_all(struct live *l) {
        for (size_t i = 0; i < l->n_seized; i++)
                ptrace(PTRACE_DETACH, l->seized[i], NULL, (void *)(uintptr_t)l->pending[i]);
        if (l->n_seized && l->stopped_at && l->held)
                *l->held = clock_usec(CLOCK_MONOTONIC) - l->stopped_at;
        l->n_seized = 0;
}

static void live_close(void *ctx) {
        struct live *l = ctx;

        detach_all(l);
        if (l->mem_fd >= 0)
                close(l->mem_fd);
        free(l->seized);
        free(l->pending);
        free(l);
}

void core_file_resume(struct core_file *c) {
        if (c && c->live_pid && c->src.ctx)
                detach_all(c->src.ctx);
}

/* ---- /proc ---- */

/* A whole /proc file, NUL-terminated: its length, or -errno. */
static ssize_t read_proc(pid_t pid, const char *name, char **out) {
        char path[64];
        _cleanup_close_ int fd = -1;
        size_t allocated = 0, n = 0;
        char *buf = NULL;

        snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (;;) {
                ssize_t k;
                if (grow_array(&buf, &allocated, n + 4097, 1) < 0 || n > MAX_PROC_FILE) {
                        free(buf);
                        return n > MAX_PROC_FILE ? -E2BIG : -ENOMEM;
                }
                k = read(fd, buf + n, allocated - n - 1);
                if (k < 0) {
                        int r = -errno;
                        free(buf);
                        return r;
                }
                if (k == 0)
                        break;
                n += (size_t)k;
        }
        buf[n] = 0;
        *out = buf;
        return (ssize_t)n;
}

/* /proc/PID/stat after the command name (which may hold spaces and parentheses). */
static int read_stat(pid_t pid, struct core_process *p, unsigned long *flags) {
        _cleanup_free_ char *s = NULL;
        char *rp;
        long nice = 0;

        if (read_proc(pid, "stat", &s) < 0)
                return -ESRCH;
        rp = strrchr(s, ')');
        if (!rp || sscanf(rp + 1, " %c %d %d %d %*d %*d %lu %*u %*u %*u %*u %*u %*u %*d %*d %*d %ld", &p->state,
                          &p->ppid, &p->pgrp, &p->sid, flags, &nice) != 6)
                return -ESRCH;
        p->nice = (int)nice;
        p->zombie = p->state == 'Z';
        return 0;
}

static void read_ids(pid_t pid, struct core_process *p, pid_t *tracer) {
        _cleanup_free_ char *s = NULL;
        const char *u, *g, *t;

        *tracer = 0;
        if (read_proc(pid, "status", &s) < 0)
                return;
        if ((u = strstr(s, "\nUid:")))
                sscanf(u + 5, "%u", &p->uid);
        if ((g = strstr(s, "\nGid:")))
                sscanf(g + 5, "%u", &p->gid);
        if ((t = strstr(s, "\nTracerPid:")))
                sscanf(t + 11, "%d", tracer);
}

static void read_names(pid_t pid, struct core_process *p) {
        _cleanup_free_ char *comm = NULL, *cmd = NULL;
        ssize_t n;

        if (read_proc(pid, "comm", &comm) > 0) {
                comm[strcspn(comm, "\n")] = 0;
                snprintf(p->fname, sizeof(p->fname), "%s", comm);
        }
        /* the arguments as the kernel puts them in a core: NULs as spaces, 80 bytes */
        if ((n = read_proc(pid, "cmdline", &cmd)) > 0) {
                for (ssize_t i = 0; i < n - 1; i++)
                        if (!cmd[i])
                                cmd[i] = ' ';
                snprintf(p->psargs, sizeof(p->psargs), "%s", cmd);
        }
}

/* Why the kernel may refuse to let us trace pid: its ptrace rules, as a hint. */
static const char *refused(pid_t pid) {
        FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
        int yama = -1;

        /* Yama is not in every kernel (not in this machine's): then only the access mode rules */
        if (f) {
                if (fscanf(f, "%d", &yama) != 1)
                        yama = -1;
                fclose(f);
        }
        if (yama >= 1 && geteuid() != 0)
                return say("process %d: not allowed to trace it (kernel.yama.ptrace_scope=%d lets only %s; "
                           "run as root)", (int)pid, yama, yama == 1 ? "a parent trace its children" :
                           yama == 2 ? "CAP_SYS_PTRACE trace" : "nobody trace");
        if (yama == 3)
                return say("process %d: not allowed to trace it (kernel.yama.ptrace_scope=3: no process may "
                           "be traced until reboot)", (int)pid);
        return say("process %d: not allowed to trace it (ptrace access mode: run as its user, with the "
                   "same or more capabilities, or as root)", (int)pid);
}

/* A stopped thread's registers, as its core's NT_PRSTATUS (and NT_ARM_TLS) would hold them. */
static void read_registers(const struct core_file *c, struct core_thread *t) {
        uint64_t regs[CORE_MAX_REGS] = {};
        struct iovec io = { regs, c->arch->n_regs * 8 };

        _Static_assert(sizeof(struct user_regs_struct) <= sizeof(regs), "pr_reg fits the core's registers");
        if (ptrace(PTRACE_GETREGSET, t->tid, (void *)(uintptr_t)NT_PRSTATUS, &io) < 0 ||
            io.iov_len != c->arch->n_regs * 8)
                return;
        core_thread_set_regs(c->arch, t, regs);
        if (c->arch->tp_reg < 0) {
                uint64_t tls[2] = {};
                struct iovec tio = { tls, sizeof(tls) };

                if (ptrace(PTRACE_GETREGSET, t->tid, (void *)(uintptr_t)NT_ARM_TLS, &tio) == 0 && tio.iov_len >= 8)
                        t->tp = tls[0];
        }
}

static int add_thread(struct core_file *c, size_t *allocated, pid_t tid) {
        if (c->n_threads >= CORE_MAX_THREADS)
                return -E2BIG;
        if (grow_array(&c->threads, allocated, c->n_threads + 1, sizeof(*c->threads)) < 0)
                return -ENOMEM;
        c->threads[c->n_threads++] = (struct core_thread) { .tid = tid };
        return 0;
}

static bool have_thread(const struct core_file *c, pid_t tid) {
        for (size_t i = 0; i < c->n_threads; i++)
                if (c->threads[i].tid == tid)
                        return true;
        return false;
}

/* Wait for tid to stop after PTRACE_INTERRUPT: 1 stopped, 0 gone, -ETIME. */
static int wait_stop(pid_t tid, int *pending) {
        for (int waited = 0; waited <= LIVE_STOP_TIMEOUT_MS * 10; waited++) {
                int status;
                pid_t r = waitpid(tid, &status, __WALL | WNOHANG);

                if (r < 0)
                        return errno == ECHILD ? 0 : -errno;
                if (r == tid) {
                        if (WIFEXITED(status) || WIFSIGNALED(status))
                                return 0;
                        if (WIFSTOPPED(status)) {
                                /* a signal on its way in: stopped at its delivery, given back at detach */
                                if (status >> 16 == 0 && WSTOPSIG(status) != SIGTRAP)
                                        *pending = WSTOPSIG(status);
                                return 1;
                        }
                }
                usleep(100);
        }
        return -ETIME;
}

/*
 * Every thread stopped, each with its registers.  Threads started while the others were being
 * stopped are found on the next pass through /proc/PID/task; the last pass finds none new.
 */
static int stop_threads(struct core_file *c, struct live *l, const char **error) {
        size_t allocated = 0;

        for (int pass = 0; pass < LIVE_MAX_PASSES; pass++) {
                char path[64];
                struct dirent *de;
                DIR *d;
                bool found = false;

                snprintf(path, sizeof(path), "/proc/%d/task", (int)l->pid);
                if (!(d = opendir(path)))
                        return *error = say("process %d: gone while being read", (int)l->pid), -ESRCH;
                while ((de = readdir(d))) {
                        char *end;
                        long tid = strtol(de->d_name, &end, 10);
                        int pending = 0, r;

                        if (*end || tid <= 0 || have_thread(c, (pid_t)tid))
                                continue;
                        found = true;
                        if (!l->stopped_at)
                                l->stopped_at = clock_usec(CLOCK_MONOTONIC);
                        if (ptrace(PTRACE_SEIZE, (pid_t)tid, NULL, NULL) < 0) {
                                if (errno == ESRCH)
                                        continue;       /* it ended meanwhile */
                                closedir(d);
                                if (errno == EPERM) {
                                        struct core_process p = {};
                                        pid_t tracer;
                                        read_ids((pid_t)tid, &p, &tracer);
                                        if (tracer > 0)
                                                return *error = say("process %d is already traced by process %d "
                                                                    "(a debugger?): detach it first", (int)l->pid,
                                                                    (int)tracer), -EBUSY;
                                        return *error = refused(l->pid), -EPERM;
                                }
                                return *error = say("process %d: cannot trace thread %ld: %s", (int)l->pid, tid,
                                                    strerror(errno)), -errno;
                        }
                        if (grow_array(&l->seized, &l->allocated, l->n_seized + 1, sizeof(*l->seized)) < 0 ||
                            !(l->pending = reallocarray(l->pending, l->allocated, sizeof(*l->pending)))) {
                                ptrace(PTRACE_DETACH, (pid_t)tid, NULL, NULL);
                                closedir(d);
                                return *error = "out of memory", -ENOMEM;
                        }
                        l->seized[l->n_seized] = (pid_t)tid;
                        l->pending[l->n_seized++] = 0;
                        if (ptrace(PTRACE_INTERRUPT, (pid_t)tid, NULL, NULL) < 0 ||
                            (r = wait_stop((pid_t)tid, &pending)) == 0)
                                continue;       /* it ended meanwhile */
                        l->pending[l->n_seized - 1] = pending;
                        if (r < 0) {
                                closedir(d);
                                return *error = say("process %d: thread %ld did not stop within %d ms (in an "
                                                    "uninterruptible wait?)", (int)l->pid, tid,
                                                    LIVE_STOP_TIMEOUT_MS), r;
                        }
                        if ((r = add_thread(c, &allocated, (pid_t)tid)) < 0) {
                                closedir(d);
                                return *error = r == -E2BIG ? say("process %d: more than %d threads", (int)l->pid,
                                                                  CORE_MAX_THREADS) : "out of memory", r;
                        }
                        read_registers(c, &c->threads[c->n_threads - 1]);
                }
                closedir(d);
                if (!found)
                        return c->n_threads ? 0 : (*error = say("process %d: gone while being read", (int)l->pid),
                                                   -ESRCH);
        }
        return *error = say("process %d: threads kept starting while it was being stopped", (int)l->pid), -EAGAIN;
}

/* The threads, unstopped: their ids only (no registers). */
static int list_threads(struct core_file *c, pid_t pid) {
        char path[64];
        struct dirent *de;
        size_t allocated = 0;
        DIR *d;
        int r = 0;

        snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
        if (!(d = opendir(path)))
                return -ESRCH;
        while (r == 0 && (de = readdir(d))) {
                char *end;
                long tid = strtol(de->d_name, &end, 10);
                if (!*end && tid > 0)
                        r = add_thread(c, &allocated, (pid_t)tid);
        }
        closedir(d);
        /* the main thread first, as a core lists it */
        for (size_t i = 1; i < c->n_threads; i++)
                if (c->threads[i].tid == pid) {
                        struct core_thread t = c->threads[i];
                        c->threads[i] = c->threads[0];
                        c->threads[0] = t;
                }
        return r;
}

/*
 * /proc/PID/maps as a core's segments (every readable mapping; its "file offset" is its address,
 * the live source's pread reads the process there) and NT_FILE mappings (the file-backed ones).
 */
static int read_maps(struct core_file *c, pid_t pid, const char **error) {
        _cleanup_free_ char *maps = NULL;
        size_t seg_alloc = 0, map_alloc = 0, names = 0;
        ssize_t n = read_proc(pid, "maps", &maps);

        if (n < 0)
                return *error = say("process %d: cannot read its mappings: %s", (int)pid, strerror((int)-n)), (int)n;
        /* the paths are kept in one block, as a core's notes are */
        if (!(c->notes = malloc((size_t)n + 1)))
                return *error = "out of memory", -ENOMEM;
        c->notes_size = (size_t)n + 1;
        for (char *line = maps, *next; line && *line; line = next) {
                unsigned long long start, end, offset;
                char perms[5];
                int path_at = 0;

                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                if (sscanf(line, "%llx-%llx %4s %llx %*s %*s %n", &start, &end, perms, &offset, &path_at) < 4 ||
                    end <= start)
                        continue;
                const char *path = path_at ? line + path_at : "";
                if (perms[0] == 'r' && strcmp(path, "[vvar]") && strcmp(path, "[vvar_vclock]") &&
                    strcmp(path, "[vsyscall]")) {
                        if (c->n_segments >= CORE_MAX_SEGMENTS ||
                            grow_array(&c->segments, &seg_alloc, c->n_segments + 1, sizeof(*c->segments)) < 0)
                                return *error = "out of memory", -ENOMEM;
                        c->segments[c->n_segments++] = (struct core_segment) {
                                .vaddr = start, .memsz = end - start, .offset = start, .filesz = end - start,
                                .flags = (perms[0] == 'r' ? PF_R : 0) | (perms[1] == 'w' ? PF_W : 0) |
                                         (perms[2] == 'x' ? PF_X : 0),
                        };
                }
                if (path[0] == '/') {
                        size_t len = strlen(path) + 1;
                        if (c->n_mappings >= CORE_MAX_MAPPINGS || names + len > c->notes_size ||
                            grow_array(&c->mappings, &map_alloc, c->n_mappings + 1, sizeof(*c->mappings)) < 0)
                                return *error = "out of memory", -ENOMEM;
                        memcpy(c->notes + names, path, len);
                        c->mappings[c->n_mappings++] = (struct core_mapping) {
                                .start = start, .end = end, .file_offset = offset, .path = (char *)c->notes + names,
                        };
                        names += len;
                }
        }
        return 0;
}

static int read_auxv(struct core_file *c, pid_t pid) {
        _cleanup_free_ char *a = NULL;
        ssize_t n = read_proc(pid, "auxv", &a);

        if (n < 16)
                return n < 0 ? (int)n : 0;
        if (!(c->auxv = malloc((size_t)n)))
                return -ENOMEM;
        memcpy(c->auxv, a, (size_t)n & ~(size_t)15);
        c->n_auxv = (size_t)n / 16;
        return 0;
}

int core_file_open_process(pid_t pid, bool stop, struct core_file **ret, const char **error) {
        struct core_file *c = calloc(1, sizeof(*c));
        struct live *l = calloc(1, sizeof(*l));
        unsigned long flags = 0;
        pid_t tracer;
        int r;

        *ret = NULL;
        if (!c || !l) {
                free(c);
                free(l);
                return *error = "out of memory", -ENOMEM;
        }
        *l = (struct live) { .pid = pid, .mem_fd = -1 };
#ifdef LIVE_FORCE_PROC_MEM
        l->use_mem = true;              /* a test build's switch: the /proc/PID/mem way only */
#endif
        c->src = (struct byte_source) { .size = UINT64_MAX, .pread = live_pread, .view = live_view,
                                        .close = live_close, .ctx = l };
        c->live_pid = pid;
#if defined(__x86_64__)
        c->arch = &core_arch_x86_64;
#elif defined(__aarch64__)
        c->arch = &core_arch_aarch64;
#else
#error "live processes are read on x86-64 and aarch64 only"
#endif
        l->held = &c->live_held_usec;
        c->page_size = (uint64_t)sysconf(_SC_PAGESIZE);
        c->process.pid = pid;
        r = read_stat(pid, &c->process, &flags);
        if (r < 0)
                *error = say("no process %d", (int)pid);
        else if (c->process.zombie)
                *error = say("process %d is a zombie: it has no memory left to read", (int)pid), r = -ESRCH;
        else if (flags & 0x00200000)    /* PF_KTHREAD */
                *error = say("process %d is a kernel thread: it runs no Python", (int)pid), r = -ESRCH;
        if (r == 0) {
                read_ids(pid, &c->process, &tracer);
                read_names(pid, &c->process);
                c->process.present = true;
                r = stop ? stop_threads(c, l, error) : list_threads(c, pid);
                if (r == -ESRCH && !stop)
                        *error = say("no process %d", (int)pid);
                else if (r == -E2BIG && !stop)
                        *error = say("process %d: more than %d threads", (int)pid, CORE_MAX_THREADS);
                else if (r == -ENOMEM && !stop)
                        *error = "out of memory";
        }
        c->live_stopped = stop;
        if (r == 0)
                r = read_maps(c, pid, error);
        if (r == 0 && (r = read_auxv(c, pid)) < 0)
                *error = r == -ENOMEM ? "out of memory" : r == -EACCES || r == -EPERM ? refused(pid) :
                         say("process %d: cannot read its auxiliary vector: %s", (int)pid, strerror(-r));
        char probe;
        if (r == 0 && c->n_segments && live_pread(l, &probe, 1, c->segments[0].vaddr) < 0)
                r = -EPERM, *error = refused(pid);
        if (r < 0) {
                core_file_free(c);      /* detaches what was stopped */
                return r == -EACCES ? -EPERM : r;
        }
        *ret = c;
        return 0;
}
