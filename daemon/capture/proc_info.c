/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmdline.h"
#include "escape.h"
#include "util.h"
#include "proc_info.h"

/* An allocation failed while proc_info_read() ran (the handler reads one process at a time). */
static bool short_of_memory;

static char *noted_strdup(const char *s) {
        char *p = strdup(s);

        if (!p)
                short_of_memory = true;
        return p;
}

char *proc_read_at(int dirfd, const char *name, size_t max, size_t *len) {
        int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        size_t cap = 4096, n = 0;
        char *p;

        if (fd < 0)
                return NULL;
        p = malloc(cap + 1);
        if (!p)
                short_of_memory = true;
        while (p && n < max) {
                ssize_t r;

                if (n == cap) {
                        char *q;
                        cap = cap * 2 > max ? max : cap * 2;
                        q = realloc(p, cap + 1);
                        if (!q) {
                                free(p);
                                p = NULL;
                                short_of_memory = true;
                                break;
                        }
                        p = q;
                }
                r = read(fd, p + n, cap - n);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                n += r;
        }
        close(fd);
        if (p) {
                p[n] = 0;
                *len = n;
        }
        return p;
}

static char *read_link(int dirfd, const char *name) {
        char buf[4096];
        ssize_t n = readlinkat(dirfd, name, buf, sizeof(buf) - 1);

        if (n < 0)
                return NULL;
        buf[n] = 0;
        return noted_strdup(buf);
}

/* NUL-separated strings as a JSON array */
static void json_strings(struct buf *b, const char *s, size_t n) {
        size_t i = 0;
        bool first = true;

        buf_puts(b, "[");
        while (i < n) {
                const char *e = memchr(s + i, 0, n - i);
                size_t l = e ? (size_t)(e - (s + i)) : n - i;

                if (!first)
                        buf_puts(b, ",");
                first = false;
                buf_put_json_string(b, s + i, l);
                i += l + 1;
        }
        buf_puts(b, "]");
}

/* cmdline_script() of NUL-separated arguments (the first 256 are enough to find the script). */
static char *script_of(const char *s, size_t n, const char *exe, const char *comm) {
        const char *argv[256];
        size_t argc = 0;

        for (size_t i = 0; i < n && argc < ELEMENTSOF(argv);) {
                const char *e = memchr(s + i, 0, n - i);

                if (!e)
                        break;          /* proc_read_at() NUL-terminates, but a cut argument is no argument */
                argv[argc++] = s + i;
                i = (size_t)(e - s) + 1;
        }
        return cmdline_script(argv, argc, exe, comm);
}

bool looks_like_python(const char *path) {
        const char *base = strrchr(path, '/');

        base = base ? base + 1 : path;
        if (strncmp(base, "python", 6) == 0 || strncmp(base, "libpython", 9) == 0)
                return true;
        return false;
}

/* Is any mapped file a libpython? (for processes whose executable is called otherwise: uwsgi, embedded) */
static bool maps_python(int procfd) {
        size_t n;
        char *maps = proc_read_at(procfd, "maps", PROC_MAX_MAPS, &n), *line, *save = NULL;
        bool found = false;

        if (!maps)
                return false;
        for (line = strtok_r(maps, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save)) {
                const char *path = strchr(line, '/');
                if (path && strstr(path, "/libpython"))
                        found = true;
        }
        free(maps);
        return found;
}

static void read_threads(int procfd, struct buf *b) {
        int tfd = openat(procfd, "task", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        DIR *d = tfd >= 0 ? fdopendir(tfd) : NULL;
        struct dirent *de;
        unsigned count = 0;
        bool first = true;

        buf_puts(b, "[");
        if (!d) {
                if (tfd >= 0) {
                        short_of_memory |= errno == ENOMEM;     /* fdopendir()'s DIR */
                        close(tfd);
                }
                buf_puts(b, "]");
                return;
        }
        while ((de = readdir(d)) && count < PROC_MAX_THREADS) {
                char path[64], num[32];
                size_t n;
                char *comm;

                if (!isdigit((unsigned char)de->d_name[0]) || strlen(de->d_name) > 10)
                        continue;
                snprintf(path, sizeof(path), "%.12s/comm", de->d_name);
                comm = proc_read_at(dirfd(d), path, 64, &n);
                if (comm && n && comm[n - 1] == '\n')
                        n--;
                snprintf(num, sizeof(num), "%s[%.12s,", first ? "" : ",", de->d_name);
                buf_puts(b, num);
                buf_put_json_string(b, comm ? comm : "", comm ? n : 0);
                buf_puts(b, "]");
                free(comm);
                first = false;
                count++;
        }
        closedir(d);
        buf_puts(b, "]");
}

/* Its root directory is ours (the link followed to the directory itself, nothing under it). */
static bool same_root(int procfd) {
        struct stat a, b;

        if (fstatat(procfd, "root", &a, 0) < 0 || stat("/", &b) < 0)
                return true;    /* cannot tell: as the host, as for the namespaces */
        return a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

static bool same_ns(int procfd, const char *ns) {
        char path[32];
        struct stat a, b;

        snprintf(path, sizeof(path), "ns/%s", ns);
        if (fstatat(procfd, path, &a, 0) < 0)
                return true;  /* no namespace support to compare: treat as the host */
        snprintf(path, sizeof(path), "/proc/self/ns/%s", ns);
        if (stat(path, &b) < 0)
                return true;
        return a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

/*
 * "0::/system.slice/foo.service" -> "/system.slice/foo.service"; the unit is its last
 * .service/.scope.  The container is named by that path, or (a hybrid system's runtime that
 * puts it in the v1 hierarchies only) by a v1 controller's path.
 */
static void read_cgroup(int procfd, struct proc_info *pi) {
        size_t n;
        char *cg = proc_read_at(procfd, "cgroup", 64 << 10, &n), *line, *save = NULL;

        if (!cg)
                return;
        for (line = strtok_r(cg, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *path = strchr(line, ':') ? strchr(strchr(line, ':') + 1, ':') : NULL;

                if (strncmp(line, "0::", 3) == 0 && !pi->cgroup)
                        pi->cgroup = noted_strdup(line + 3);
                else if (path && !pi->container_id)
                        (void)cgroup_container(path + 1, &pi->container_runtime, &pi->container_id);
        }
        free(cg);
        if (!pi->cgroup)
                return;
        char *copy = noted_strdup(pi->cgroup), *tok, *s2 = NULL;
        for (tok = copy ? strtok_r(copy, "/", &s2) : NULL; tok; tok = strtok_r(NULL, "/", &s2)) {
                size_t l = strlen(tok);
                if ((l > 8 && !strcmp(tok + l - 8, ".service")) || (l > 6 && !strcmp(tok + l - 6, ".scope"))) {
                        free(pi->unit);
                        pi->unit = noted_strdup(tok);
                }
        }
        free(copy);
        char *rt, *id;
        if (cgroup_container(pi->cgroup, &rt, &id) == 0) {
                /* the unified hierarchy's word first */
                free(pi->container_runtime);
                free(pi->container_id);
                pi->container_runtime = rt, pi->container_id = id;
        }
}

static bool hex64(const char *s, size_t n) {
        return n == 64 && strspn(s, "0123456789abcdef") >= 64;
}

/* One cgroup path component, and the one above it: a container's runtime and id, or false. */
static bool container_of(const char *comp, size_t n, const char *parent, size_t pn, const char **runtime,
                         const char **id, size_t *id_len) {
        /* "<prefix>-<64 hex>[.scope]": the systemd driver's scopes, and podman's cgroupfs ones */
        static const struct { const char *prefix, *runtime; } scopes[] = {
                { "docker-", "docker" }, { "libpod-", "podman" }, { "cri-containerd-", "containerd" },
                { "crio-", "cri-o" },
        };
        size_t body = n > 6 && !memcmp(comp + n - 6, ".scope", 6) ? n - 6 : n;

        for (size_t i = 0; i < sizeof(scopes) / sizeof(*scopes); i++) {
                size_t l = strlen(scopes[i].prefix);
                if (body == l + 64 && !memcmp(comp, scopes[i].prefix, l) && hex64(comp + l, 64)) {
                        *runtime = scopes[i].runtime, *id = comp + l, *id_len = 64;
                        return true;
                }
        }
        /* the cgroupfs driver: "/docker/<64 hex>", "/kubepods/burstable/pod<uid>/<64 hex>" */
        if (hex64(comp, n) && parent) {
                *runtime = pn == 6 && !memcmp(parent, "docker", 6) ? "docker" :
                           pn > 3 && !memcmp(parent, "pod", 3) ? "kubernetes" : NULL;
                *id = comp, *id_len = 64;
                return *runtime != NULL;
        }
        /* LXC names its containers: "lxc.payload.<name>" (4.0+), "/lxc/<name>" before */
        if (n > 12 && !memcmp(comp, "lxc.payload.", 12)) {
                *runtime = "lxc", *id = comp + 12, *id_len = n - 12;
                return true;
        }
        if (parent && pn == 3 && !memcmp(parent, "lxc", 3)) {
                *runtime = "lxc", *id = comp, *id_len = n;
                return true;
        }
        /* systemd-machined's machines (systemd-nspawn, VMs): "machine-<name>.scope",
         * "systemd-nspawn@<name>.service"; the name as systemd escaped it */
        if (body != n && n > 8 + 6 && !memcmp(comp, "machine-", 8)) {
                *runtime = "machine", *id = comp + 8, *id_len = n - 8 - 6;
                return true;
        }
        if (n > 15 + 8 && !memcmp(comp, "systemd-nspawn@", 15) && !memcmp(comp + n - 8, ".service", 8)) {
                *runtime = "systemd-nspawn", *id = comp + 15, *id_len = n - 15 - 8;
                return true;
        }
        return false;
}

int cgroup_container(const char *cgroup, char **runtime, char **id) {
        const char *rt = NULL, *found = NULL, *parent = NULL, *p = cgroup;
        size_t found_len = 0, pn = 0;

        *runtime = *id = NULL;
        while (p && *p) {
                const char *r, *i;
                size_t n, il;

                while (*p == '/')
                        p++;
                n = strcspn(p, "/");
                if (n && container_of(p, n, parent, pn, &r, &i, &il) && il > 0)
                        rt = r, found = i, found_len = il;
                parent = p, pn = n;
                p += n;
        }
        if (!found)
                return -ENOENT;
        *runtime = noted_strdup(rt);
        *id = strndup(found, found_len);
        if (!*runtime || !*id) {
                free(*runtime);
                free(*id);
                *runtime = *id = NULL;
                return -ENOMEM;
        }
        return 0;
}

static void read_status(int procfd, struct proc_info *pi) {
        size_t n;
        char *st = proc_read_at(procfd, "status", 64 << 10, &n), *line, *save = NULL;

        if (!st)
                return;
        for (line = strtok_r(st, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                if (strncmp(line, "NSpid:", 6) == 0) {
                        char *last = strrchr(line, '\t');
                        pi->pid_ns = last ? atoi(last + 1) : 0;
                }
        free(st);
}

static void read_limits(int procfd, struct proc_info *pi) {
        size_t n;
        char *lim = proc_read_at(procfd, "limits", 64 << 10, &n), *line, *save = NULL;

        pi->rlimit_core = -2;
        if (!lim)
                return;
        for (line = strtok_r(lim, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                if (strncmp(line, "Max core file size", 18) == 0) {
                        char soft[32];
                        if (sscanf(line + 18, "%31s", soft) == 1)
                                pi->rlimit_core = !strcmp(soft, "unlimited") ? -1 : strtoll(soft, NULL, 10);
                }
        free(lim);
}

/* The pid the pidfd refers to, as /proc/self/fdinfo says (-1: exited, or not a pidfd). */
static int32_t pidfd_pid(int pidfd) {
        char path[64], *info, *p;
        size_t n;
        int32_t pid = -1;

        snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
        info = proc_read_at(AT_FDCWD, path, 4096, &n);
        if (!info && errno == ENOMEM)
                return -ENOMEM;         /* not a mismatch */
        if (info && (p = strstr(info, "\nPid:")))
                pid = (int32_t)strtol(p + 5, NULL, 10);
        free(info);
        return pid;
}

/* "CoreDumping: 1" in /proc/PID/status: the kernel is dumping this process right now. */
static bool core_dumping(int procfd) {
        size_t n;
        char *st = proc_read_at(procfd, "status", 64 << 10, &n), *p;
        bool yes = false;

        if (st && (p = strstr(st, "\nCoreDumping:")))
                yes = strtol(p + 13, NULL, 10) == 1;
        free(st);
        return yes;
}

int proc_open(int32_t pid, int pidfd) {
        char path[64];
        int fd, r;

        /*
         * The pidfd names the process.  Its pid is checked before and after
         * /proc/PID is opened: a process keeps its pid until it dies and a pid
         * is not reused while its process lives, so when both checks see the
         * same pid, the directory we opened in between is that process's.
         */
        if (pidfd >= 0 && (r = pidfd_pid(pidfd)) != pid)
                return r == -ENOMEM ? r : -ESRCH;
        snprintf(path, sizeof(path), "/proc/%d", pid);
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        if (pidfd >= 0 ? (r = pidfd_pid(pidfd)) != pid :
            /* no pidfd (a kernel without %F): only a process the kernel is dumping, which
             * cannot be reaped (so its pid cannot be reused) until we have read its core */
            !core_dumping(fd)) {
                close(fd);
                return pidfd >= 0 && r == -ENOMEM ? r : -ESRCH;
        }
        return fd;
}

void proc_info_read(int procfd, bool want_environ, struct proc_info *pi) {
        size_t n;
        char *s;

        *pi = (struct proc_info) { .rlimit_core = -2 };
        short_of_memory = false;
        s = proc_read_at(procfd, "comm", sizeof(pi->comm) - 1, &n);
        if (s) {
                if (n && s[n - 1] == '\n')
                        s[--n] = 0;
                memcpy(pi->comm, s, n + 1);
                free(s);
        }
        pi->exe = read_link(procfd, "exe");
        pi->cwd = read_link(procfd, "cwd");
        s = proc_read_at(procfd, "cmdline", PROC_MAX_CMDLINE, &n);
        json_strings(&pi->cmdline, s ? s : "", s ? n : 0);
        pi->script = script_of(s ? s : "", s ? n : 0, pi->exe, pi->comm);
        free(s);
        if (want_environ) {
                s = proc_read_at(procfd, "environ", PROC_MAX_ENVIRON, &n);
                json_strings(&pi->environ, s ? s : "", s ? n : 0);
                free(s);
        }
        read_threads(procfd, &pi->threads);
        read_cgroup(procfd, pi);
        read_status(procfd, pi);
        read_limits(procfd, pi);
        pi->same_mount_ns = same_ns(procfd, "mnt");
        /* a chroot too: its files are not the host's files of the same names */
        pi->container = !pi->same_mount_ns || !same_ns(procfd, "pid") || !same_ns(procfd, "user") ||
                        !same_root(procfd) || pi->container_id;
        pi->python = (pi->exe && looks_like_python(pi->exe)) || looks_like_python(pi->comm) ||
                     maps_python(procfd);
        /* cmdline_script() names something for any command line: NULL is memory running out */
        pi->out_of_memory = short_of_memory || !pi->script || pi->cmdline.failed || pi->environ.failed ||
                            pi->threads.failed;
}

void proc_info_free(struct proc_info *pi) {
        free(pi->exe);
        free(pi->cwd);
        free(pi->cgroup);
        free(pi->unit);
        free(pi->container_runtime);
        free(pi->container_id);
        free(pi->script);
        buf_free(&pi->cmdline);
        buf_free(&pi->environ);
        buf_free(&pi->threads);
}
