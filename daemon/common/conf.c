/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf.h"
#include "util.h"

#define CONFIG_MAX_SIZE (1u << 20)

int config_defaults(struct config *c) {
        *c = (struct config) {
                .compression_level = 7,
                .max_core_size = 2ull << 30,
                .max_use = { .percent = 10 },
                .keep_free = { .percent = 15 },
                .capture = CAPTURE_PYTHON,
                .rate_limit_burst = 10,
                .rate_limit_interval = 60,
                .store_environment = false,
                .keep_binaries = true,
                .max_binary_size = 512ull << 20,
                .max_binaries_per_crash = 2ull << 30,
                .max_age = 30 * 86400,
                .journal = true,
                .tasks = true,
                .journal_report_max = 64u << 10,
                .workers = 0,
                .timeout = 60,
                .memory_max = 1ull << 30,
                .max_attempts = 3,
        };
        c->directory = strdup("/var/lib/pystack");
        c->runtime_directory = strdup("/run/pystack");
        c->user = strdup("pystack");
        c->query_user = strdup("pystack-query");
        c->analyzer = strdup(PYSTACK_ANALYZER_DEFAULT);
        if (!c->directory || !c->runtime_directory || !c->user || !c->query_user || !c->analyzer) {
                config_free(c);
                return -ENOMEM;
        }
        return 0;
}

static void free_patterns(char ***p) {
        for (char **q = *p; q && *q; q++)
                free(*q);
        free(*p);
        *p = NULL;
}

/* BinariesExclude=: absolute fnmatch(3) patterns separated by spaces, at most 64; "" clears */
static int set_patterns(char ***out, const char *v) {
        _cleanup_free_ char *copy = strdup(v);
        char **p = NULL, *tok, *save = NULL;
        size_t n = 0;

        if (!copy)
                return -ENOMEM;
        for (tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
                char **q;

                if (tok[0] != '/' || n == 64 || strlen(tok) > PATH_MAX || !(q = realloc(p, (n + 2) * sizeof(*p)))) {
                        free_patterns(&p);
                        return -EINVAL;
                }
                p = q;
                p[n + 1] = NULL;
                if (!(p[n] = strdup(tok))) {
                        free_patterns(&p);
                        return -ENOMEM;
                }
                n++;
        }
        free_patterns(out);
        *out = p;
        return 0;
}

void config_free(struct config *c) {
        free_patterns(&c->binaries_exclude);
        free(c->directory);
        free(c->runtime_directory);
        free(c->user);
        free(c->query_user);
        free(c->analyzer);
        c->directory = c->runtime_directory = c->user = c->query_user = c->analyzer = NULL;
}

int parse_duration(const char *s, uint64_t *out) {
        static const struct { const char *suffix; uint64_t mult; } units[] = {
                { "", 1 }, { "s", 1 }, { "sec", 1 }, { "min", 60 }, { "m", 60 }, { "h", 3600 },
                { "d", 86400 }, { "w", 7 * 86400 },
        };
        char *end;
        unsigned long long v;

        if (!isdigit((unsigned char)*s))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno)
                return -EINVAL;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                if (!strcmp(end, units[i].suffix)) {
                        if (v > UINT64_MAX / units[i].mult)
                                return -EINVAL;
                        *out = v * units[i].mult;
                        return 0;
                }
        return -EINVAL;
}

uint64_t size_limit_bytes(const struct size_limit *l, uint64_t total) {
        return l->percent ? total / 100 * l->percent : l->bytes;
}

int parse_size(const char *s, bool percent_ok, struct size_limit *out) {
        char *end;
        unsigned long long v;
        uint64_t mult = 1;

        if (!isdigit((unsigned char)*s))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno)
                return -EINVAL;
        if (*end == '%') {
                if (!percent_ok || end[1] || v == 0 || v > 100)
                        return -EINVAL;
                *out = (struct size_limit) { .percent = (unsigned)v };
                return 0;
        }
        switch (*end) {
        case 0: break;
        case 'K': mult = 1ull << 10; break;
        case 'M': mult = 1ull << 20; break;
        case 'G': mult = 1ull << 30; break;
        case 'T': mult = 1ull << 40; break;
        default: return -EINVAL;
        }
        if (*end && end[1])
                return -EINVAL;
        if (v > UINT64_MAX / mult)
                return -EINVAL;
        *out = (struct size_limit) { .bytes = v * mult };
        return 0;
}

static int parse_bool(const char *s, bool *out) {
        if (!strcmp(s, "yes") || !strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "on"))
                return *out = true, 0;
        if (!strcmp(s, "no") || !strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "off"))
                return *out = false, 0;
        return -EINVAL;
}

static int parse_uint(const char *s, unsigned max, unsigned *out) {
        char *end;
        unsigned long v;

        if (!isdigit((unsigned char)*s))
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v > max)
                return -EINVAL;
        *out = (unsigned)v;
        return 0;
}

/* Replace *field by a copy of v. */
static int set_string(char **field, const char *v) {
        char *p = strdup(v);

        if (!p)
                return -ENOMEM;
        free(*field);
        *field = p;
        return 0;
}

static int set_path(char **field, const char *v) {
        if (v[0] != '/' || strstr(v, "/../") || strlen(v) > 1024)
                return -EINVAL;
        return set_string(field, v);
}

/* A user's name: not empty, not a path, not a passwd line */
static int set_user(char **user, const char *v) {
        if (!*v || strlen(v) > 64 || strchr(v, '/') || strchr(v, ':'))
                return -EINVAL;
        return set_string(user, v);
}

/* One key: 0, -EINVAL (bad value) or -ENOENT (unknown key). */
static int set_key(struct config *c, const char *section, const char *key, const char *v) {
        struct size_limit l;
        unsigned u;
        int r;

        if (!strcmp(section, "Storage")) {
                if (!strcmp(key, "Directory"))
                        return set_path(&c->directory, v);
                if (!strcmp(key, "CompressionLevel")) {
                        char *end;
                        long lv = strtol(v, &end, 10);
                        if (!*v || *end || lv < -7 || lv > 19)
                                return -EINVAL;
                        c->compression_level = (int)lv;
                        return 0;
                }
                if (!strcmp(key, "MaxCoreSize")) {
                        r = parse_size(v, false, &l);
                        if (r == 0)
                                c->max_core_size = l.bytes;
                        return r;
                }
                if (!strcmp(key, "MaxUse"))
                        return parse_size(v, true, &c->max_use);
                if (!strcmp(key, "MaxAge"))
                        return parse_duration(v, &c->max_age);
                if (!strcmp(key, "KeepFree"))
                        return parse_size(v, true, &c->keep_free);
        } else if (!strcmp(section, "Capture")) {
                if (!strcmp(key, "Processes")) {
                        if (!strcmp(v, "python"))
                                c->capture = CAPTURE_PYTHON;
                        else if (!strcmp(v, "all"))
                                c->capture = CAPTURE_ALL;
                        else
                                return -EINVAL;
                        return 0;
                }
                if (!strcmp(key, "Mode")) {
                        if (!strcmp(v, "pipe"))
                                c->socket_capture = false;
                        else if (!strcmp(v, "socket"))
                                c->socket_capture = true;
                        else
                                return -EINVAL;
                        return 0;
                }
                if (!strcmp(key, "RateLimitBurst")) {
                        r = parse_uint(v, 1000000, &u);
                        if (r == 0)
                                c->rate_limit_burst = u;
                        return r;
                }
                if (!strcmp(key, "RateLimitIntervalSec")) {
                        r = parse_uint(v, 86400 * 365, &u);
                        if (r == 0)
                                c->rate_limit_interval = u;
                        return r;
                }
                if (!strcmp(key, "StoreEnvironment"))
                        return parse_bool(v, &c->store_environment);
                if (!strcmp(key, "KeepBinaries"))
                        return parse_bool(v, &c->keep_binaries);
                if (!strcmp(key, "MaxBinarySize")) {
                        r = parse_size(v, false, &l);
                        if (r == 0)
                                c->max_binary_size = l.bytes;
                        return r;
                }
                if (!strcmp(key, "MaxBinariesPerCrash")) {
                        r = parse_size(v, false, &l);
                        if (r == 0)
                                c->max_binaries_per_crash = l.bytes;
                        return r;
                }
                if (!strcmp(key, "BinariesExclude"))
                        return set_patterns(&c->binaries_exclude, v);
        } else if (!strcmp(section, "Daemon")) {
                if (!strcmp(key, "RuntimeDirectory"))
                        return set_path(&c->runtime_directory, v);
                if (!strcmp(key, "Journal"))
                        return parse_bool(v, &c->journal);
                if (!strcmp(key, "JournalReportMax")) {
                        r = parse_size(v, false, &l);
                        /* 0 (none), or room for a crashed thread's innermost frame; journal-remote takes
                         * entries well above 16M, but a shipper may not */
                        if (r == 0 && l.bytes && (l.bytes < 1024 || l.bytes > (16u << 20)))
                                r = -EINVAL;
                        if (r == 0)
                                c->journal_report_max = l.bytes;
                        return r;
                }
                if (!strcmp(key, "JournalLocals"))
                        return parse_bool(v, &c->journal_locals);
                if (!strcmp(key, "QueryUser"))
                        return set_user(&c->query_user, v);
        } else if (!strcmp(section, "Analysis")) {
                if (!strcmp(key, "Workers"))
                        return parse_uint(v, 256, &c->workers);
                if (!strcmp(key, "Tasks"))
                        return parse_bool(v, &c->tasks);
                if (!strcmp(key, "TimeoutSec")) {
                        uint64_t d;
                        r = parse_duration(v, &d);
                        if (r == 0 && (d == 0 || d > 86400))
                                r = -EINVAL;
                        if (r == 0)
                                c->timeout = (unsigned)d;
                        return r;
                }
                if (!strcmp(key, "MemoryMax")) {
                        r = parse_size(v, false, &l);
                        if (r == 0 && l.bytes < (64u << 20))
                                r = -EINVAL;  /* too little to map a libpython */
                        if (r == 0)
                                c->memory_max = l.bytes;
                        return r;
                }
                if (!strcmp(key, "MaxAttempts")) {
                        r = parse_uint(v, 100, &u);
                        if (r == 0 && u == 0)
                                r = -EINVAL;
                        if (r == 0)
                                c->max_attempts = u;
                        return r;
                }
                if (!strcmp(key, "User"))
                        return set_user(&c->user, v);
                if (!strcmp(key, "Analyzer"))
                        return set_path(&c->analyzer, v);
        }
        return -ENOENT;
}

static char *trim(char *s) {
        char *e;

        while (isspace((unsigned char)*s))
                s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1]))
                *--e = 0;
        return s;
}


int config_parse(struct config *c, const char *text, size_t len, const char *name, char *err, size_t errsz) {
        char section[64] = "";
        size_t lineno = 0, pos = 0;

        while (pos < len) {
                const char *nl = memchr(text + pos, '\n', len - pos);
                size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
                char line[4096], *s, *eq;

                lineno++;
                if (n >= sizeof(line))
                        return errorf(err, errsz, "%s:%zu: line too long", name, lineno);
                memcpy(line, text + pos, n);
                line[n] = 0;
                pos += n + 1;
                if (memchr(line, 0, n))
                        return errorf(err, errsz, "%s:%zu: NUL byte", name, lineno);
                /* comments start a line, or follow white space ("Key=value   # why") */
                for (char *h = line; (h = strchr(h, '#')); h++)
                        if (h == line || isspace((unsigned char)h[-1])) {
                                *h = 0;
                                break;
                        }
                s = trim(line);
                if (!*s || *s == ';')
                        continue;
                if (*s == '[') {
                        char *e = strchr(s, ']');
                        if (!e || e[1] || e - s - 1 <= 0 || (size_t)(e - s - 1) >= sizeof(section))
                                return errorf(err, errsz, "%s:%zu: bad section header", name, lineno);
                        *e = 0;
                        snprintf(section, sizeof(section), "%s", s + 1);
                        if (strcmp(section, "Storage") && strcmp(section, "Capture") &&
                            strcmp(section, "Daemon") && strcmp(section, "Analysis"))
                                return errorf(err, errsz, "%s:%zu: unknown section [%s]", name, lineno, section);
                        continue;
                }
                eq = strchr(s, '=');
                if (!eq)
                        return errorf(err, errsz, "%s:%zu: expected Key=value", name, lineno);
                *eq = 0;
                char *key = trim(s), *value = trim(eq + 1);
                if (!*section)
                        return errorf(err, errsz, "%s:%zu: %s= outside a section", name, lineno, key);
                int r = set_key(c, section, key, value);
                if (r == -ENOMEM)
                        return errorf(err, errsz, "out of memory"), -ENOMEM;
                if (r == -ENOENT)
                        return errorf(err, errsz, "%s:%zu: unknown key %s= in [%s]", name, lineno, key, section);
                if (r < 0)
                        return errorf(err, errsz, "%s:%zu: bad value for %s=: %s", name, lineno, key, value);
        }
        return 0;
}

/*
 * Walk an absolute path to the directory holding its last component, never
 * through a symbolic link, every directory on the way owned by root and
 * writable by nobody else -- a sticky directory such as /tmp is passed
 * through, as its entries can only be replaced by their owners, and the next
 * component must be root's.  Nobody but root can then change what the path
 * names.  Returns a descriptor of the parent and the last component in
 * `last`, or -errno with the offending directory in `why`.
 */
int open_private_dir(int dirfd, const char *name) {
        struct stat st;
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 022)) {
                close(fd);
                return -EPERM;
        }
        return fd;
}

int trusted_parent(const char *path, char *last, size_t lastsz, char *why, size_t whysz) {
        char buf[PATH_MAX], *comp, *next, done[PATH_MAX] = "";
        struct stat st;
        int fd, r;

        if (path[0] != '/' || strlen(path) >= sizeof(buf)) {
                snprintf(why, whysz, "%s: not an absolute path", path);
                return -EINVAL;
        }
        snprintf(buf, sizeof(buf), "%s", path);
        fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (comp = buf; *comp == '/'; comp++)
                ;
        for (;;) {
                bool sticky;

                if (fstat(fd, &st) < 0) {
                        r = -errno;
                        goto fail;
                }
                sticky = (st.st_mode & S_ISVTX) && (st.st_mode & 0002);
                if (st.st_uid != 0 || ((st.st_mode & 022) && !sticky)) {
                        snprintf(why, whysz, "%s: the directory %s is %s", path, done[0] ? done : "/",
                                 st.st_uid != 0 ? "not owned by root" : "writable by others");
                        r = -EPERM;
                        goto fail;
                }
                next = strchr(comp, '/');
                if (next)
                        *next++ = 0;
                while (next && *next == '/')
                        next++;
                if (!*comp || !strcmp(comp, ".") || !strcmp(comp, "..")) {
                        snprintf(why, whysz, "%s: \".\", \"..\" or an empty name in the path", path);
                        r = -EINVAL;
                        goto fail;
                }
                if (!next || !*next) {
                        if (strlen(comp) >= lastsz) {
                                r = -ENAMETOOLONG;
                                goto fail;
                        }
                        snprintf(last, lastsz, "%s", comp);
                        return fd;
                }
                int nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (nfd < 0) {
                        r = -errno;
                        snprintf(why, whysz, "%s: %s/%s: %s", path, done, comp, r == -ELOOP ?
                                 "a symbolic link in the path" : strerror(-r));
                        goto fail;
                }
                close(fd);
                fd = nfd;
                size_t dl = strlen(done), cl = strlen(comp);
                if (dl + 1 + cl < sizeof(done)) {     /* for messages only */
                        done[dl] = '/';
                        memcpy(done + dl + 1, comp, cl + 1);
                }
                comp = next;
        }
fail:
        close(fd);
        return r;
}

int config_load(struct config *c, const char *path, bool optional, char *err, size_t errsz) {
        struct stat st;
        char *buf;
        ssize_t n;
        int fd, r;

        /* the file and every directory above it root's (or the caller's) and nobody else's */
        char last[NAME_MAX + 1], why[PATH_MAX + 128];
        int parent = path[0] == '/' ? trusted_parent(path, last, sizeof(last), why, sizeof(why)) : -EINVAL;
        if (parent < 0) {
                if (parent == -ENOENT && optional)
                        return 0;
                snprintf(err, errsz, "%s", path[0] == '/' ? why : "the configuration path must be absolute");
                return parent;
        }
        fd = openat(parent, last, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
        close(parent);
        if (fd < 0) {
                if (errno == ENOENT && optional)
                        return 0;
                r = -errno;
                snprintf(err, errsz, "%s: %s", path, strerror(errno));
                return r;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                snprintf(err, errsz, "%s: not a regular file", path);
                return -EINVAL;
        }
        if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 022)) {
                close(fd);
                snprintf(err, errsz, "%s: must be owned by root and writable by nobody else", path);
                return -EPERM;
        }
        if (st.st_size > CONFIG_MAX_SIZE) {
                close(fd);
                snprintf(err, errsz, "%s: larger than 1 MiB", path);
                return -EFBIG;
        }
        buf = malloc(st.st_size + 1);
        if (!buf) {
                close(fd);
                return errorf(err, errsz, "out of memory"), -ENOMEM;
        }
        n = read(fd, buf, st.st_size);
        close(fd);
        if (n < 0) {
                free(buf);
                snprintf(err, errsz, "%s: cannot read", path);
                return -EIO;
        }
        r = config_parse(c, buf, (size_t)n, path, err, errsz);
        free(buf);
        return r;
}

ssize_t send_with_fds(int sock, const struct sockaddr_un *to, const void *msg, size_t len, const int *fds,
                      size_t n_fds, int flags) {
        char cbuf[CMSG_SPACE(SEND_MAX_FDS * sizeof(int))] = {};
        struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
        struct msghdr mh = { .msg_name = (void *)to, .msg_namelen = to ? sizeof(*to) : 0, .msg_iov = &iov,
                             .msg_iovlen = 1 };

        if (n_fds > SEND_MAX_FDS)
                return -EINVAL;
        if (n_fds > 0) {
                mh.msg_control = cbuf;
                mh.msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
                memcpy(CMSG_DATA(c), fds, n_fds * sizeof(int));
        }
        return sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
}

ssize_t send_with_fd(int sock, const struct sockaddr_un *to, const void *msg, size_t len, int fd, int flags) {
        return send_with_fds(sock, to, msg, len, &fd, fd >= 0, flags);
}

void notify_daemon(const char *runtime_dir, const char *msg, const int *fds, size_t n_fds) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char last[NAME_MAX + 1], why[PATH_MAX + 128];
        struct stat st;
        int fd, parent, dfd;

        parent = trusted_parent(runtime_dir, last, sizeof(last), why, sizeof(why));
        if (parent < 0)
                return;
        dfd = openat(parent, last, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(parent);
        if (dfd < 0)
                return;
        if (fstat(dfd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022) ||
            fstatat(dfd, "notify", &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISSOCK(st.st_mode) || st.st_uid != 0) {
                close(dfd);
                return;
        }
        snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/notify", dfd);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd >= 0) {
                (void)send_with_fds(fd, &sa, msg, strlen(msg), fds, n_fds, MSG_DONTWAIT);
                close(fd);
        }
        close(dfd);
}
