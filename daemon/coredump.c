/* SPDX-License-Identifier: MIT */
/*
 * pystack-coredump: the kernel's core_pattern pipe handler.
 *
 *   |pystack-coredump [--config=FILE] %F %P %u %g %s %t %c %h %d %e
 *
 * The kernel holds the crashing process until we have read the whole core
 * from stdin, so the plan is: learn what we need from /proc while the
 * process is still there, log a line at once (so the crash is not lost if
 * the system is about to go down), take the core as fast as the kernel can
 * give it (splice into an unnamed file, no compression), let go of the
 * process by closing stdin, and only then compress it into the seekable
 * format, record it and wake pystackd.
 *
 * We run as root on data from a process that may be hostile: we never parse
 * the core, write only below the storage directory (relative to directory
 * descriptors, O_NOFOLLOW, unnamed files linked into place when complete),
 * and make ourselves non-dumpable before anything else.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "conf.h"
#include "proc_info.h"
#include "store.h"
#include "zst_seekable.h"

#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define STORE_RESERVE (1u << 20)
#define SPLICE_CHUNK (16u << 20)
#define COMPRESS_CHUNK (4u << 20)

struct args {
        int pidfd;              /* %F, -1 when the kernel gave none */
        int32_t pid;            /* %P */
        uint32_t uid, gid;      /* %u %g */
        int signal;             /* %s */
        int64_t time;           /* %t */
        int64_t rlimit;         /* %c, -1 for unlimited */
        const char *rlimit_text;        /* %c as the kernel wrote it, for a forwarded handler */
        const char *hostname;   /* %h */
        int dumpable;           /* %d */
        const char *comm;       /* %e */
};

__attribute__((format(printf, 2, 3)))
static void log_msg(int priority, const char *fmt, ...) {
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        /* the journal when it runs; stderr too when a person runs us by hand */
        sd_journal_send("MESSAGE=pystack-coredump: %s", msg, "PRIORITY=%d", priority,
                        "SYSLOG_IDENTIFIER=pystack-coredump", NULL);
        if (isatty(STDERR_FILENO) || getenv("PYSTACK_COREDUMP_STDERR"))
                fprintf(stderr, "pystack-coredump: %s\n", msg);
}

static int parse_int(const char *s, int64_t min, int64_t max, int64_t *out) {
        char *end;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max)
                return -EINVAL;
        *out = v;
        return 0;
}

static int parse_args(int argc, char **argv, const char **config, struct args *a) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int64_t v[9];
        int c;

        opterr = 0;
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0) {
                if (c == 'c')
                        *config = optarg;
                else if (c == 'h') {
                        printf("Usage: pystack-coredump [--config=FILE] %%F %%P %%u %%g %%s %%t %%c %%h %%d %%e\n"
                               "The kernel's core_pattern handler of pystackd: it stores the core from\n"
                               "standard input, compressed, and records the crash. See pystack-coredump(8).\n");
                        exit(0);
                } else
                        return -EINVAL;
        }
        if (argc - optind != 10)
                return -EINVAL;
        char **p = argv + optind;
        /* %F is empty or "-1"-like on kernels without pidfd support: treat anything else as no pidfd */
        a->pidfd = parse_int(p[0], 0, INT_MAX, &v[0]) == 0 ? (int)v[0] : -1;
        if (parse_int(p[1], 1, INT32_MAX, &v[1]) < 0 || parse_int(p[2], 0, UINT32_MAX, &v[2]) < 0 ||
            parse_int(p[3], 0, UINT32_MAX, &v[3]) < 0 || parse_int(p[4], 1, 64, &v[4]) < 0 ||
            parse_int(p[5], 0, INT64_MAX, &v[5]) < 0 || parse_int(p[8], 0, 2, &v[8]) < 0)
                return -EINVAL;
        /* %c: "18446744073709551615" means unlimited */
        a->rlimit = parse_int(p[6], 0, INT64_MAX, &v[6]) == 0 ? v[6] : -1;
        a->rlimit_text = p[6];
        a->pid = (int32_t)v[1];
        a->uid = (uint32_t)v[2];
        a->gid = (uint32_t)v[3];
        a->signal = (int)v[4];
        a->time = v[5];
        a->hostname = p[7];
        a->dumpable = (int)v[8];
        a->comm = p[9];
        return 0;
}

static int64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static char *boot_id(void) {
        char buf[64] = "";
        FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

        if (f) {
                if (!fgets(buf, sizeof(buf), f))
                        buf[0] = 0;
                fclose(f);
        }
        buf[strcspn(buf, "\n")] = 0;
        return buf[0] ? strdup(buf) : NULL;
}

/* A directory below the storage root, created private, never through a link. */
static int private_subdir(int parent, const char *name) {
        struct stat st;
        int fd;

        if (mkdirat(parent, name, 0700) < 0 && errno != EEXIST)
                return -errno;
        fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 022)) {
                close(fd);
                return -EPERM;
        }
        return fd;
}

static int open_storage(const char *dir) {
        struct stat st;
        int fd;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        /* a storage directory others can write to would let them plant links and files */
        if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 022)) {
                close(fd);
                return -EPERM;
        }
        return fd;
}

/* How many more bytes may be written under the limits, now. */
static uint64_t space_allowed(int dirfd, const struct config *c, uint64_t used) {
        struct statvfs sv;
        uint64_t total, avail, max_use, keep_free, by_use, by_free;

        if (fstatvfs(dirfd, &sv) < 0)
                return 0;
        total = (uint64_t)sv.f_blocks * sv.f_frsize;
        avail = (uint64_t)sv.f_bavail * sv.f_frsize;
        max_use = size_limit_bytes(&c->max_use, total);
        keep_free = size_limit_bytes(&c->keep_free, total);
        by_use = max_use > used ? max_use - used : 0;
        by_free = avail > keep_free ? avail - keep_free : 0;
        return by_use < by_free ? by_use : by_free;
}

enum take_result { TAKE_OK, TAKE_TOO_LARGE, TAKE_NO_SPACE, TAKE_ERROR };

/*
 * Move the core from stdin into fd as fast as the kernel produces it:
 * splice moves pages without copying them through us.  Stops at `limit`
 * bytes or when the space budget runs out.
 */
static enum take_result take_core(int fd, int dirfd, const struct config *c, uint64_t used,
                                  uint64_t *size) {
        uint64_t budget = space_allowed(dirfd, c, used), since_check = 0;

        /* room for the record and the compressed copy's metadata: the disk must never fill up */
        budget = budget > STORE_RESERVE ? budget - STORE_RESERVE : 0;
        *size = 0;
        for (;;) {
                /* never write past the budget: one byte more than it proves the core does not fit */
                size_t want = (size_t)MIN((uint64_t)SPLICE_CHUNK, budget - MIN(*size, budget) + 1);
                ssize_t n = splice(STDIN_FILENO, NULL, fd, NULL, want, SPLICE_F_MOVE | SPLICE_F_MORE);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EINVAL || errno == ESPIPE)) {
                        /* stdin is not a pipe (run by hand): copy */
                        static char buf[1 << 20];
                        n = read(STDIN_FILENO, buf, MIN(sizeof(buf), want));
                        if (n > 0 && write(fd, buf, n) != n)
                                return errno == ENOSPC ? TAKE_NO_SPACE : TAKE_ERROR;
                }
                if (n < 0)
                        return errno == ENOSPC || errno == EDQUOT ? TAKE_NO_SPACE : TAKE_ERROR;
                if (n == 0)
                        return TAKE_OK;
                *size += n;
                since_check += n;
                if (*size > c->max_core_size)
                        return TAKE_TOO_LARGE;
                if (*size > budget)
                        return TAKE_NO_SPACE;
                /* the file system is shared: look again every 256 MiB */
                if (since_check >= (256u << 20)) {
                        uint64_t now = space_allowed(dirfd, c, used);
                        budget = *size + (now > STORE_RESERVE ? now - STORE_RESERVE : 0);
                        since_check = 0;
                }
        }
}

/* The raw core in `raw` (size bytes) as a seekable zstd file in `out`. */
static int compress_core(int raw, int out, const struct config *c, uint64_t size, uint64_t *stored) {
        struct zst_writer *w;
        char *buf;
        uint64_t off = 0;
        int r;

        buf = malloc(COMPRESS_CHUNK);
        if (!buf)
                return -ENOMEM;
        r = zst_writer_new(out, c->compression_level, 2, 0, &w);
        if (r < 0) {
                free(buf);
                return r;
        }
        while (off < size && r == 0) {
                ssize_t n = pread(raw, buf, COMPRESS_CHUNK, (off_t)off);
                if (n <= 0) {
                        r = n < 0 ? -errno : -EIO;
                        break;
                }
                r = zst_writer_write(w, buf, (size_t)n);
                off += n;
        }
        if (r == 0)
                r = zst_writer_finish(w, stored);
        zst_writer_free(w);
        free(buf);
        return r;
}

/* comm as a file name: anything but [A-Za-z0-9._-] becomes '_', and it never starts with '.' */
static void safe_name(const char *in, char *out, size_t size) {
        size_t i;

        for (i = 0; in[i] && i + 1 < size && i < 32; i++) {
                char ch = in[i];
                bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                          ch == '-' || ch == '_' || (ch == '.' && i > 0);
                out[i] = ok ? ch : '_';
        }
        out[i] = 0;
        if (i == 0)
                snprintf(out, size, "unknown");
}

/* Tell pystackd there is work; it may not run, and that is fine: the crash waits in the store. */
static void wake_daemon(const char *runtime_dir, int64_t id) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char msg[64];
        int fd;

        if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", runtime_dir) >= sizeof(sa.sun_path))
                return;
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return;
        snprintf(msg, sizeof(msg), "CRASH=%lld", (long long)id);
        (void)sendto(fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
}

/*
 * A crash we do not capture goes to the handler that was in core_pattern
 * before us (recorded at setup in <Storage>/previous-core-pattern), so
 * installing pystackd never loses another program's core.  Pipe handlers
 * are executed with the core still on stdin and their % specifiers filled
 * in from what we know; a file pattern is not emulated (the kernel would
 * write it with the crashing process's credentials): we say so and drop it.
 */
static void forward(int storage_fd, const struct args *a, const struct proc_info *pi) {
        char pattern[512], *argv[64];
        char expanded[64][256];
        size_t n = 0, argc = 0;
        int fd;

        fd = openat(storage_fd, "previous-core-pattern", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return;
        ssize_t len = read(fd, pattern, sizeof(pattern) - 1);
        close(fd);
        if (len <= 0)
                return;
        pattern[len] = 0;
        pattern[strcspn(pattern, "\n")] = 0;
        if (pattern[0] != '|') {
                if (pattern[0])
                        log_msg(LOG_INFO, "process %d (%s) not captured; the previous core_pattern \"%s\" is "
                                "a file pattern, which is not forwarded", a->pid, a->comm, pattern);
                return;
        }
        for (char *tok = strtok(pattern + 1, " \t"); tok && argc < 63; tok = strtok(NULL, " \t")) {
                char *out = expanded[argc];
                size_t o = 0;

                for (const char *p = tok; *p && o < sizeof(expanded[0]) - 24; p++) {
                        if (*p != '%' || !p[1]) {
                                out[o++] = *p;
                                continue;
                        }
                        p++;
                        switch (*p) {
                        case '%': out[o++] = '%'; break;
                        case 'p': o += sprintf(out + o, "%d", pi->pid_ns > 0 ? pi->pid_ns : a->pid); break;
                        case 'P': case 'i': case 'I': o += sprintf(out + o, "%d", a->pid); break;
                        case 'u': o += sprintf(out + o, "%u", a->uid); break;
                        case 'g': o += sprintf(out + o, "%u", a->gid); break;
                        case 's': o += sprintf(out + o, "%d", a->signal); break;
                        case 't': o += sprintf(out + o, "%lld", (long long)a->time); break;
                        case 'c': o += snprintf(out + o, sizeof(expanded[0]) - o, "%.24s", a->rlimit_text); break;
                        case 'd': o += sprintf(out + o, "%d", a->dumpable); break;
                        case 'F': o += sprintf(out + o, "%d", a->pidfd); break;
                        case 'h': o += snprintf(out + o, sizeof(expanded[0]) - o, "%.64s", a->hostname); break;
                        case 'e': o += snprintf(out + o, sizeof(expanded[0]) - o, "%.16s", a->comm); break;
                        case 'E':
                                for (const char *e = pi->exe ? pi->exe : ""; *e && o < sizeof(expanded[0]) - 2; e++)
                                        out[o++] = *e == '/' ? '!' : *e;
                                break;
                        default: break;  /* unknown: the kernel leaves nothing either */
                        }
                }
                out[o] = 0;
                argv[argc++] = out;
        }
        argv[argc] = NULL;
        if (argc == 0 || argv[0][0] != '/')
                return;
        (void)n;
        log_msg(LOG_INFO, "process %d (%s) not captured: forwarded to %s", a->pid, a->comm, argv[0]);
        execv(argv[0], argv);
        log_msg(LOG_WARNING, "cannot run the previous handler %s: %m", argv[0]);
}

int main(int argc, char **argv) {
        const char *config_path = PYSTACK_CONF_DEFAULT;
        struct config cfg;
        struct args a = {};
        struct proc_info pi = {};
        struct crash_record rec = {};
        char err[512], name[256], comm_safe[40], rel[300];
        sqlite3 *db = NULL;
        int storage_fd = -1, cores_fd = -1, raw = -1, out = -1, procfd;
        uint64_t size = 0, stored = 0;
        int64_t id = 0, start = now_usec();
        char *bid;
        enum take_result took;

        /* a fault in here must never produce a core that comes back to us */
        prctl(PR_SET_DUMPABLE, 0);
        umask(077);
        signal(SIGPIPE, SIG_IGN);

        if (parse_args(argc, argv, &config_path, &a) < 0) {
                /* run by hand, most likely: say it where a person looks */
                fprintf(stderr, "pystack-coredump: usage: pystack-coredump [--config=FILE] %%F %%P %%u %%g %%s %%t %%c "
                        "%%h %%d %%e (see --help)\n");
                return 2;
        }
        if (config_defaults(&cfg) < 0)
                return 1;
        if (config_load(&cfg, config_path, true, err, sizeof(err)) < 0)
                log_msg(LOG_ERR, "%s; using the defaults", err);   /* a crash is never lost to a config typo */

        procfd = proc_open(a.pid, a.pidfd);
        if (procfd >= 0) {
                proc_info_read(procfd, cfg.store_environment, &pi);
                close(procfd);
        } else
                snprintf(pi.comm, sizeof(pi.comm), "%s", a.comm);
        /* first words, at once: if the machine is going down, at least this is in the journal */
        log_msg(LOG_INFO, "process %d (%s) of user %u dumped core with signal %d", a.pid, pi.comm, a.uid, a.signal);

        storage_fd = open_storage(cfg.directory);
        if (storage_fd < 0) {
                log_msg(LOG_ERR, "cannot use the storage directory %s: %s", cfg.directory, strerror(-storage_fd));
                return 1;
        }
        if (cfg.capture == CAPTURE_PYTHON && !pi.python) {
                forward(storage_fd, &a, &pi);
                return 0;  /* not ours; closing stdin lets the kernel go on */
        }

        bid = boot_id();
        rec = (struct crash_record) {
                .time_usec = start, .boot_id = bid, .hostname = a.hostname, .pid = a.pid,
                .pid_ns = pi.pid_ns, .uid = a.uid, .gid = a.gid, .signal = a.signal,
                .comm = pi.comm, .exe = pi.exe, .cmdline_json = buf_str(&pi.cmdline), .cwd = pi.cwd,
                .cgroup = pi.cgroup, .unit = pi.unit,
                .thread_names_json = buf_str(&pi.threads),
                .environ_json = cfg.store_environment ? buf_str(&pi.environ) : NULL,
                .container = pi.container, .dumpable = a.dumpable,
                .rlimit_core = pi.rlimit_core != -2 ? pi.rlimit_core : a.rlimit,
                .core_size = -1, .core_state = "present",
        };

        if (store_open(cfg.directory, &db, err, sizeof(err)) < 0) {
                log_msg(LOG_ERR, "cannot open the store: %s", err);
                return 1;
        }
        if (cfg.rate_limit_burst) {
                int64_t recent = store_count_recent(db, pi.exe, start - (int64_t)cfg.rate_limit_interval * 1000000);
                if (recent >= (int64_t)cfg.rate_limit_burst) {
                        /* a crash loop: keep the record, not the core; reading nothing lets the process go now */
                        rec.core_state = "rate-limited";
                        rec.suppressed = recent - cfg.rate_limit_burst + 1;
                        rec.capture_note = "more than RateLimitBurst crashes of this executable within RateLimitIntervalSec";
                        close(STDIN_FILENO);
                        goto record;
                }
        }

        cores_fd = private_subdir(storage_fd, "cores");
        if (cores_fd < 0) {
                rec.core_state = "error";
                rec.capture_note = "cannot use the cores directory";
                goto record;
        }
        /* unnamed until complete: a crash of ours halfway leaves nothing behind */
        raw = openat(cores_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (raw < 0) {
                rec.core_state = "error";
                rec.capture_note = "cannot create a file in the cores directory";
                goto record;
        }
        took = take_core(raw, cores_fd, &cfg, (uint64_t)MAX(store_cores_size(db), 0), &size);
        /* the whole core is ours (or we gave up on it): let the kernel release the process */
        close(STDIN_FILENO);
        rec.core_size = (int64_t)size;
        if (took != TAKE_OK) {
                /* give the space back before anything else needs it (the record itself) */
                if (ftruncate(raw, 0) < 0)
                        log_msg(LOG_WARNING, "cannot truncate the partial core: %m");
                close(raw);
                raw = -1;
                rec.core_state = took == TAKE_TOO_LARGE ? "too-large" : took == TAKE_NO_SPACE ? "no-space" : "error";
                rec.capture_note = took == TAKE_TOO_LARGE ? "the core is larger than MaxCoreSize" :
                                   took == TAKE_NO_SPACE ? "not enough room under MaxUse/KeepFree (or the disk is full)" :
                                   "reading the core failed";
                goto record;
        }

        safe_name(pi.comm, comm_safe, sizeof(comm_safe));
        char bid_hex[40] = "x";
        for (size_t i = 0, k = 0; bid && bid[i] && k + 1 < sizeof(bid_hex); i++)
                if (bid[i] != '-')
                        bid_hex[k++] = bid[i], bid_hex[k] = 0;
        snprintf(name, sizeof(name), "core.%s.%u.%s.%d.%lld.zst", comm_safe, a.uid, bid_hex, a.pid,
                 (long long)start);
        out = openat(cores_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (out < 0 || compress_core(raw, out, &cfg, size, &stored) < 0 || fsync(out) < 0) {
                rec.core_state = errno == ENOSPC ? "no-space" : "error";
                rec.capture_note = "compressing the core failed";
                goto record;
        }
        char fdpath[64];
        snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", out);
        if (linkat(AT_FDCWD, fdpath, cores_fd, name, AT_SYMLINK_FOLLOW) < 0) {
                rec.core_state = "error";
                rec.capture_note = "cannot link the core into place";
                goto record;
        }
        snprintf(rel, sizeof(rel), "cores/%s", name);
        rec.core_path = rel;
        rec.core_stored_size = (int64_t)stored;

record:
        if (store_add_crash(db, &rec, &id) < 0) {
                log_msg(LOG_ERR, "cannot record the crash of process %d: %s", a.pid, sqlite3_errmsg(db));
                if (rec.core_path)
                        unlinkat(cores_fd, name, 0);  /* a core with no record would only fill the disk */
                return 1;
        }
        log_msg(LOG_INFO, "crash %lld: process %d (%s), core %s%s%s", (long long)id, a.pid, pi.comm,
                rec.core_state, rec.capture_note ? ": " : "", rec.capture_note ? rec.capture_note : "");
        if (!strcmp(rec.core_state, "present"))
                wake_daemon(cfg.runtime_directory, id);

        sqlite3_close(db);
        if (raw >= 0)
                close(raw);
        if (out >= 0)
                close(out);
        if (cores_fd >= 0)
                close(cores_fd);
        close(storage_fd);
        proc_info_free(&pi);
        free(bid);
        config_free(&cfg);
        return 0;
}
