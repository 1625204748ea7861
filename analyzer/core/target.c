/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "package_note.h"
#include "target.h"

/* Segments are sorted and disjoint: binary search for the one holding addr. */
static const struct core_segment *segment_at(const struct core_file *c, uint64_t addr) {
        size_t lo = 0, hi = c->n_segments;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const struct core_segment *s = &c->segments[mid];

                if (addr < s->vaddr)
                        hi = mid;
                else if (addr - s->vaddr >= s->memsz)
                        lo = mid + 1;
                else
                        return s;
        }
        return NULL;
}

/* The first segment above addr, or NULL. */
static const struct core_segment *segment_after(const struct core_file *c, uint64_t addr) {
        size_t lo = 0, hi = c->n_segments;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (c->segments[mid].vaddr <= addr)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < c->n_segments ? &c->segments[lo] : NULL;
}

struct module *target_module_at(struct target *t, uint64_t addr) {
        for (size_t i = 0; i < t->n_modules; i++)
                if (addr >= t->modules[i].start && addr < t->modules[i].end)
                        return &t->modules[i];
        return NULL;
}

/* Bytes the kernel did not dump, from the file mapped there: *len of them at most, as far as the
 * mapping at addr goes (*len is set to how many were read). */
static int read_from_file(struct target *t, uint64_t addr, void *buf, uint64_t *len) {
        const struct core_mapping *m = core_mapping_at(t->core, addr);
        struct module *mod;
        struct elf_image *img;

        if (!m)
                return -EFAULT;
        *len = MIN(*len, m->end - addr);
        mod = target_module_at(t, addr);
        if (!mod)
                return -EFAULT;
        img = target_module_image(t, mod);
        if (!img)
                return -EFAULT;
        if (m->file_offset > UINT64_MAX - (addr - m->start))
                return -EFAULT;
        return elf_image_pread(img, buf, *len, m->file_offset + (addr - m->start)) < 0 ? -EFAULT : 0;
}

int target_read(struct target *t, uint64_t addr, void *buf, size_t len) {
        uint8_t *out = buf;

        if (len > TARGET_MAX_READ)
                return -E2BIG;
        if (addr + len < addr)
                return -EFAULT;
        while (len > 0) {
                const struct core_segment *s = segment_at(t->core, addr);
                uint64_t in_seg, chunk;
                int r;

                if (!s) {
                        /* not in any segment: only a file mapping can supply it, up to the next segment */
                        const struct core_segment *next = segment_after(t->core, addr);

                        chunk = next ? MIN((uint64_t)len, next->vaddr - addr) : len;
                        r = read_from_file(t, addr, out, &chunk);
                } else {
                        in_seg = addr - s->vaddr;
                        chunk = MIN((uint64_t)len, s->memsz - in_seg);
                        if (in_seg < s->filesz) {
                                chunk = MIN(chunk, s->filesz - in_seg);
                                r = t->core->src.pread(t->core->src.ctx, out, chunk, s->offset + in_seg);
                        } else
                                r = read_from_file(t, addr, out, &chunk);
                }
                if (r < 0)
                        return -EFAULT;
                out += chunk;
                addr += chunk;
                len -= chunk;
        }
        return 0;
}

/* ---- finding and verifying the files ---- */

/* The build-id the core kept in the first page of the module's mapping. */
static int core_build_id(struct target *t, struct module *m, uint8_t *id, size_t *len) {
        uint8_t page[4096];
        const uint8_t *p;
        size_t n;

        if (!m->base || target_read(t, m->base, page, sizeof(page)) < 0)
                return -ENOENT;
        /* target_read may have come from the file itself: only the core's copy proves anything */
        const struct core_segment *s = segment_at(t->core, m->base);
        if (!s || s->filesz < sizeof(page) || s->vaddr != m->base)
                return -ENOENT;
        if (elf_build_id_from_header(page, sizeof(page), &p, &n) < 0)
                return -ENOENT;
        memcpy(id, p, n);
        *len = n;
        return 0;
}

/* Try one candidate file: 1 if it matches, 0 if absent, <0 if it exists but is refused. */
static int try_candidate(struct target *t, struct module *m, const char *path,
                         const uint8_t *want, size_t want_len, struct elf_image **ret) {
        struct elf_image *img;
        const uint8_t *id;
        size_t n;
        int r;

        r = elf_image_open(path, &img);
        if (r == -ENOENT || r == -ENOTDIR)
                return 0;
        if (r == -ENOEXEC)
                return r;       /* data files (locales, caches) are mapped too: nothing to say */
        if (r == -ENOMEM)
                return target_out_of_memory(t);
        if (r < 0) {
                if (strcmp(path, m->path) == 0)
                        strv_addf(&t->warnings, "%s: %s", path, strerror(-r));
                else
                        strv_addf(&t->warnings, "%s: cannot stand in for %s: %s", path, m->path, strerror(-r));
                return r;
        }
        n = elf_image_build_id(img, &id);
        if (want_len && (n != want_len || memcmp(id, want, n) != 0)) {
                strv_addf(&t->warnings, "%s: build-id does not match the core's %s: not used", path, m->path);
                elf_image_free(img);
                return -EBADMSG;
        }
        *ret = img;
        return 1;
}

/* Depth-first search for a file named `name` under dir, bounded in depth and entries. */
static int find_in_tree(const char *dir, const char *name, int depth, size_t *budget, char *out, size_t outsz) {
        DIR *d;
        struct dirent *de;
        int found = 0;

        if (depth > 12 || *budget == 0)
                return 0;
        d = opendir(dir);
        if (!d)
                return 0;
        while (!found && (de = readdir(d)) && *budget > 0) {
                char path[PATH_MAX];
                struct stat st;

                (*budget)--;
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path))
                        continue;
                if (lstat(path, &st) < 0)
                        continue;
                if (S_ISDIR(st.st_mode))
                        found = find_in_tree(path, name, depth + 1, budget, out, outsz);
                else if (strcmp(de->d_name, name) == 0 && S_ISREG(st.st_mode)) {
                        snprintf(out, outsz, "%s", path);
                        found = 1;
                }
        }
        closedir(d);
        return found;
}

static bool binary_is(const char *key, const struct module *m) {
        char *end;

        if (!strncmp(key, "0x", 2)) {
                errno = 0;
                unsigned long long a = strtoull(key + 2, &end, 16);
                return !errno && end != key + 2 && !*end && m->start == a;
        }
        return !strcmp(key, m->path);
}

static struct elf_image *locate(struct target *t, struct module *m) {
        uint8_t want[BUILD_ID_MAX];
        size_t want_len = 0;
        struct elf_image *img = NULL;
        char path[PATH_MAX];
        const struct target_options *o = t->opts;

        if (core_build_id(t, m, want, &want_len) < 0)
                want_len = 0;

        /* the file the process really mapped, kept at the crash: it, or nothing.  Named by the
         * address of its first mapping (a path read from outside a chroot is not the core's), or
         * by the path as the core names it */
        for (size_t i = 0; i + 1 < o->binaries.n; i += 2)
                if (binary_is(o->binaries.v[i], m)) {
                        int r = try_candidate(t, m, o->binaries.v[i + 1], want, want_len, &img);
                        if (r > 0)
                                return img;
                        m->state = r < 0 ? r : -ENOENT;
                        return NULL;
                }
        if (m == t->exe && o->executable) {
                int r = try_candidate(t, m, o->executable, want, want_len, &img);
                m->state = r > 0 ? 1 : r == 0 ? -ENOENT : r;
                return img;
        }
        for (size_t i = 0; i < o->lib_search_paths.n; i++) {
                snprintf(path, sizeof(path), "%s/%s", o->lib_search_paths.v[i], path_base_name(m->path));
                if (try_candidate(t, m, path, want, want_len, &img) > 0)
                        return img;
        }
        if (o->lib_search_root) {
                size_t budget = 200000;

                char first[PATH_MAX];
                int r;

                /* the path the process saw, below the root (a container's or chroot's files) */
                snprintf(first, sizeof(first), "%s%s%s", o->lib_search_root, m->path[0] == '/' ? "" : "/",
                         m->path);
                r = try_candidate(t, m, first, want, want_len, &img);
                if (r > 0)
                        return img;
                if (r != -ENOEXEC &&
                    find_in_tree(o->lib_search_root, path_base_name(m->path), 0, &budget, path, sizeof(path)) &&
                    strcmp(path, first) != 0 && try_candidate(t, m, path, want, want_len, &img) > 0)
                        return img;
        }
        if (o->root && t->core->live_pid) {
                /* a live process: the very file it mapped (/proc/PID/map_files, root's only), or
                 * the path as the process sees it (a container's root: /proc/PID/maps names a file
                 * of another mount namespace by its path there) */
                const struct core_mapping *first = core_mapping_at(t->core, m->start);
                int fd;

                if (first && (size_t)snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx",
                                              (int)t->core->live_pid, (unsigned long long)first->start,
                                              (unsigned long long)first->end) < sizeof(path) &&
                    (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) >= 0) {
                        close(fd);
                        if (try_candidate(t, m, path, want, want_len, &img) > 0)
                                return img;
                }
                if (m->path[0] == '/' &&
                    (size_t)snprintf(path, sizeof(path), "%s%s", o->root, m->path) < sizeof(path) &&
                    try_candidate(t, m, path, want, want_len, &img) > 0)
                        return img;
        }
        int r = try_candidate(t, m, m->path, want, want_len, &img);
        if (r > 0)
                return img;
        /* say why the file named in the core could not be used (missing, unreadable, another build) */
        if (r < 0)
                m->state = r;
        return NULL;
}

/* Read from the file just verified, the one the report lists: never another by its path. */
static void read_package(struct target *t, struct module *m) {
        int r = elf_image_package(m->image, &m->package);

        if (r == -E2BIG)
                strv_addf(&t->warnings, "%s: package metadata note longer than %d bytes: not used",
                          m->path, PACKAGE_NOTE_MAX_JSON);
        else if (r == -EBADMSG)
                strv_addf(&t->warnings, "%s: package metadata note is not a NUL-terminated JSON object with unique keys: not used",
                          m->path);
        if (r <= 0)
                m->package = NULL;
}

struct elf_image *target_module_image(struct target *t, struct module *m) {
        if (m->state == 0) {
                m->state = -ENOENT;     /* also guards against re-entry while locating; locate() may refine it */
                m->image = locate(t, m);
                if (m->image) {
                        m->state = 1;
                        read_package(t, m);
                }
        }
        return m->state > 0 ? m->image : NULL;
}

uint64_t target_module_bias(struct target *t, struct module *m) {
        struct elf_image *img = target_module_image(t, m);

        if (!img || !m->base)
                return 0;
        return m->base - elf_image_first_load_vaddr(img);
}

/* One module per file mapped (its mappings listed together under one path), in the kernel's order. */
static int build_modules(struct target *t) {
        const struct core_file *c = t->core;

        t->modules = calloc(MAX(c->n_mappings, (size_t)1), sizeof(*t->modules));
        if (!t->modules)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_mappings; i++) {
                const struct core_mapping *m = &c->mappings[i];
                struct module *mod = NULL;

                /* the kernel lists one file's mappings next to each other; a second mapping of offset
                 * 0 under the same name is another file (two deleted versions of one path, a memfd
                 * name used twice) or another copy: its own module, found by its own address */
                if (t->n_modules && strcmp(t->modules[t->n_modules - 1].path, m->path) == 0 &&
                    !(m->file_offset == 0 && t->modules[t->n_modules - 1].base))
                        mod = &t->modules[t->n_modules - 1];
                if (!mod) {
                        mod = &t->modules[t->n_modules++];
                        mod->path = m->path;
                        mod->start = m->start;
                        mod->end = m->end;
                }
                mod->start = MIN(mod->start, m->start);
                mod->end = MAX(mod->end, m->end);
                if (m->file_offset == 0 && !mod->base)
                        mod->base = m->start;
        }
        return 0;
}

/* The path the process was started with (AT_EXECFN), when it names the same file. */
static char *exec_display_name(struct target *t) {
        uint64_t at = core_auxv(t->core, AT_EXECFN);
        char buf[PATH_MAX];
        struct stat a, b;

        if (at && target_read(t, at, buf, 1) == 0) {
                size_t n = 0;
                /* read byte by byte only up to a page: the string sits at the stack top */
                while (n < sizeof(buf) - 1 && target_read(t, at + n, buf + n, 1) == 0 && buf[n])
                        n++;
                buf[n] = 0;
                if (buf[0] == '/' && t->exe && stat(buf, &a) == 0 && stat(t->exe->path, &b) == 0 &&
                    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
                        return strdup(buf);
        }
        return t->exe ? strdup(t->exe->path) : NULL;
}

int target_open(struct core_file *core, const struct target_options *opts,
                struct target **ret, const char **error) {
        struct target *t;
        uint64_t entry;

        t = calloc(1, sizeof(*t));
        if (!t)
                return *error = "out of memory", -ENOMEM;
        t->core = core;
        t->opts = opts;
        if (build_modules(t) < 0) {
                target_free(t);
                return *error = "out of memory", -ENOMEM;
        }
        entry = core_auxv(core, AT_ENTRY);
        t->exe = entry ? target_module_at(t, entry) : NULL;
        if (!t->exe && t->n_modules)
                t->exe = &t->modules[0];  /* the kernel maps the executable first */
        if (!t->exe && !opts->executable) {
                target_free(t);
                return *error = "the core names no executable (no NT_FILE note)", -ENOEXEC;
        }
        if (t->exe && !target_module_image(t, t->exe)) {
                int r = t->exe->state;
                static char msg[PATH_MAX + 128];

                snprintf(msg, sizeof(msg), "executable %s %s",
                         opts->executable ? opts->executable : t->exe->path,
                         r == -ENOENT ? "not found" :
                         r == -EACCES ? "cannot be read: permission denied" :
                         r == -EBADMSG ? "does not match the core (build-id differs)" :
                         r == -ENOEXEC ? "is not an x86-64 ELF executable" : "cannot be read");
                target_free(t);
                return *error = msg, r == -ENOENT ? -ENOENT : -EBADMSG;
        }
        t->exe_display = exec_display_name(t);
        if (opts->executable) {
                free(t->exe_display);
                t->exe_display = strdup(opts->executable);
        }
        if (!t->exe_display && (t->exe || opts->executable)) {
                target_free(t);
                return *error = "out of memory", -ENOMEM;
        }
        *ret = t;
        return 0;
}

void target_free(struct target *t) {
        if (!t)
                return;
        for (size_t i = 0; i < t->n_modules; i++) {
                elf_image_free(t->modules[i].image);
                json_free(t->modules[i].package);
        }
        free(t->modules);
        free(t->exe_display);
        strv_clear(&t->warnings);
        free(t);
}
