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

/* The file mapping holding addr: the core's (NT_FILE), or the one rebuilt from the loader's list. */
static const struct core_mapping *mapping_at(const struct target *t, uint64_t addr) {
        if (t->core->n_mappings)
                return core_mapping_at(t->core, addr);
        for (size_t i = 0; i < t->n_loaded; i++)
                if (addr >= t->loaded[i].start && addr < t->loaded[i].end)
                        return &t->loaded[i];
        return NULL;
}

/* Bytes the kernel did not dump, from the file mapped there: *len of them at most, as far as the
 * mapping at addr goes (*len is set to how many were read). */
static int read_from_file(struct target *t, uint64_t addr, void *buf, uint64_t *len) {
        const struct core_mapping *m = mapping_at(t, addr);
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
        if (elf_image_machine(img) != t->core->arch->machine) {
                strv_addf(&t->warnings, "%s: not an %s file, as the core's %s is: not used", path,
                          t->core->arch->name, m->path);
                elf_image_free(img);
                return -ENOEXEC;
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
                size_t n = strlen(o->lib_search_root);
                int r;

                /* a path already below the root (an emulator's -L tree: the executable was started by
                 * its path here) is its own candidate: no search of the tree */
                while (n > 1 && o->lib_search_root[n - 1] == '/')
                        n--;
                if (strncmp(m->path, o->lib_search_root, n) == 0 && m->path[n] == '/') {
                        r = try_candidate(t, m, m->path, want, want_len, &img);
                        if (r > 0)
                                return img;
                }
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

/* A NUL-terminated string of the process at addr, at most max-1 bytes; NULL when unreadable (or,
 * marked on the target, when out of memory). */
static char *read_string(struct target *t, uint64_t addr, size_t max) {
        char *s = malloc(max);
        size_t n = 0;

        if (!s) {
                target_out_of_memory(t);
                return NULL;
        }
        /* 64 bytes at a time where it can, a byte at a time near the end of what is readable */
        while (n < max - 1) {
                size_t chunk = MIN((size_t)64, max - 1 - n);

                if (target_read(t, addr + n, s + n, chunk) < 0) {
                        if (target_read(t, addr + n, s + n, 1) < 0)
                                break;
                        chunk = 1;
                }
                if (memchr(s + n, 0, chunk))
                        return s;
                n += chunk;
        }
        free(s);
        return NULL;
}

/* The path the process was started with (AT_EXECFN's string), or NULL. */
static char *execfn(struct target *t) {
        uint64_t at = core_auxv(t->core, AT_EXECFN);

        return at ? read_string(t, at, PATH_MAX) : NULL;
}

/* Why the executable cannot be used (a module's state), for the one-line error. */
static const char *exe_error(const char *path, int state, const char *hint) {
        static char msg[PATH_MAX + 160];

        snprintf(msg, sizeof(msg), "executable %s %s%s", path,
                 state == -ENOENT ? "not found" :
                 state == -EACCES ? "cannot be read: permission denied" :
                 state == -EBADMSG ? "does not match the core (build-id differs)" :
                 state == -ENOEXEC ? "is not an ELF executable of the core's architecture" : "cannot be read",
                 state == -ENOENT ? hint : "");
        return msg;
}

/* ---- a core without NT_FILE: the files from the dynamic linker's list ---- */

#define LOADER_MAX_OBJECTS 1024         /* link_map entries followed (each one named is opened) */
#define LOADER_MAX_LOADS 64             /* PT_LOAD headers of one file */

/* A copy just made, or NULL with the target marked out of memory. */
static char *copied(struct target *t, char *s) {
        if (!s)
                target_out_of_memory(t);
        return s;
}

/* The executable's path: the user's, AT_EXECFN's string, or the command line's first word; NULL
 * when nothing names it, or out of memory (marked). */
static char *loader_exe_path(struct target *t) {
        const struct core_process *p = &t->core->process;
        char *s;

        if (t->opts->executable)
                return copied(t, strdup(t->opts->executable));
        if ((s = execfn(t))) {
                if (s[0] == '/')
                        return s;
                free(s);
        }
        if (p->present && p->psargs[0] == '/')
                return copied(t, strndup(p->psargs, strcspn(p->psargs, " ")));
        return NULL;
}

/* A module for path (the executable's when is_exe), its file located as any module's (its base
 * unknown yet: no build-id to check); NULL when out of memory.  loader_map() places it. */
static struct module *loader_module(struct target *t, const char *path, bool is_exe) {
        struct module *m = &t->modules[t->n_modules];

        if (strv_addf(&t->loader_paths, "%s", path) < 0) {
                target_out_of_memory(t);
                return NULL;
        }
        *m = (struct module) { .path = t->loader_paths.v[t->loader_paths.n - 1] };
        t->n_modules++;
        if (is_exe)
                t->exe = m;     /* before it is located: the executable given is used as it is */
        target_module_image(t, m);
        return t->out_of_memory ? NULL : m;
}

/* m's extent and file-backed mappings from its image's PT_LOAD headers, loaded with bias (runtime
 * address = link-time address + bias).  A file that cannot be used is left unmapped: 0 either way,
 * -ENOMEM. */
static int loader_map(struct target *t, struct module *m, uint64_t bias) {
        struct elf_segment loads[LOADER_MAX_LOADS];
        struct elf_image *img = target_module_image(t, m);
        uint64_t page = 4096;
        size_t n;

        if (!img)
                return 0;
        n = elf_image_segments(img, PT_LOAD, loads, ELEMENTSOF(loads));
        if (n == 0 || n > ELEMENTSOF(loads)) {
                strv_addf(&t->warnings, "%s: %zu loadable segments: not used", m->path, n);
                m->state = -ENOEXEC;
                return 0;
        }
        m->base = bias + elf_image_first_load_vaddr(img);
        m->start = UINT64_MAX;
        for (size_t i = 0; i < n; i++) {
                uint64_t lo = (loads[i].vaddr & ~(page - 1)) + bias, off = loads[i].offset & ~(page - 1);
                uint64_t file_end = (loads[i].vaddr + loads[i].filesz + page - 1) / page * page + bias;
                uint64_t mem_end = (loads[i].vaddr + loads[i].memsz + page - 1) / page * page + bias;

                if (mem_end <= lo)
                        continue;
                m->start = MIN(m->start, lo);
                m->end = MAX(m->end, mem_end);
                if (file_end <= lo)
                        continue;
                if (grow_array(&t->loaded, &t->loaded_allocated, t->n_loaded + 1, sizeof(*t->loaded)) < 0)
                        return target_out_of_memory(t);
                t->loaded[t->n_loaded++] = (struct core_mapping) {
                        .start = lo, .end = file_end, .file_offset = off, .path = m->path };
        }
        if (m->start == UINT64_MAX)
                m->start = m->end = 0;
        return 0;
}

/* A library: its module, mapped where the loader put it. */
static int loader_add(struct target *t, const char *path, uint64_t bias) {
        struct module *m = loader_module(t, path, false);

        return m ? loader_map(t, m, bias) : -ENOMEM;
}

/*
 * Cores without NT_FILE (qemu-user's, some tools'): the executable is the
 * user's or the one the command line names, its load bias is where the
 * auxiliary vector put its entry point, the dynamic linker is its PT_INTERP
 * at AT_BASE, and the libraries are the dynamic linker's list (r_debug,
 * through the executable's DT_DEBUG), every pointer of it read from the
 * core and bounded.
 */
static int modules_from_loader(struct target *t, const char **error) {
        static char msg[PATH_MAX + 128];
        uint64_t names_at[LOADER_MAX_OBJECTS], bases[LOADER_MAX_OBJECTS];
        size_t n_objects = 0;
        _cleanup_free_ char *exe = loader_exe_path(t);
        struct elf_segment seg;
        struct elf_image *img;
        uint64_t bias, at_base = core_auxv(t->core, AT_BASE), r_debug = 0;

        if (t->out_of_memory)
                return *error = "out of memory", -ENOMEM;
        if (!exe)
                return *error = "the core names no executable (no NT_FILE note, no path in its command line): "
                                "give it as pystack core CORE EXECUTABLE", -ENOENT;
        /* at most: the executable, the dynamic linker, the list */
        t->modules = calloc(LOADER_MAX_OBJECTS + 2, sizeof(*t->modules));
        if (!t->modules || !loader_module(t, exe, true))
                return *error = "out of memory", target_out_of_memory(t);
        img = target_module_image(t, t->exe);
        if (!img)
                return *error = exe_error(exe, t->exe->state, " (the core has no NT_FILE note: give it as pystack "
                                          "core CORE EXECUTABLE)"), t->exe->state == -ENOENT ? -ENOENT : -EBADMSG;
        /* the bias: AT_ENTRY is the entry point where the process had it */
        bias = core_auxv(t->core, AT_ENTRY) - elf_image_entry(img);
        if (bias & 0xfff) {
                snprintf(msg, sizeof(msg), "executable %s does not match the core (its entry point is not where the "
                         "core's was)", exe);
                return *error = msg, -EBADMSG;
        }
        if (loader_map(t, t->exe, bias) < 0)
                return *error = "out of memory", -ENOMEM;

        /* the dynamic linker: the string in its link_map entry lies in its code, which such cores leave out */
        if (at_base && elf_image_segments(img, PT_INTERP, &seg, 1) == 1 && seg.filesz > 1 && seg.filesz < PATH_MAX) {
                char interp[PATH_MAX];

                if (elf_image_pread(img, interp, seg.filesz, seg.offset) == 0 && interp[seg.filesz - 1] == 0 &&
                    loader_add(t, interp, at_base) < 0)
                        return *error = "out of memory", -ENOMEM;
        }

        /* DT_DEBUG in the executable's dynamic section, as the process has it: r_debug */
        if (elf_image_segments(img, PT_DYNAMIC, &seg, 1) == 1)
                for (uint64_t i = 0; i < MIN(seg.memsz / 16, (uint64_t)4096); i++) {
                        uint64_t d[2];

                        if (target_read(t, seg.vaddr + bias + 16 * i, d, sizeof(d)) < 0 || d[0] == DT_NULL)
                                break;
                        if (d[0] == DT_DEBUG) {
                                r_debug = d[1];
                                break;
                        }
                }
        /* struct r_debug { int r_version; struct link_map *r_map; ... };
         * struct link_map { l_addr, char *l_name, l_ld, l_next, l_prev } */
        uint64_t lm = 0;
        struct addr_set seen = {};
        int r = 0;
        if (r_debug && target_read_u64(t, r_debug + 8, &lm) < 0)
                lm = 0;
        for (size_t k = 0; lm && k < LOADER_MAX_OBJECTS; k++) {
                uint64_t l[4];

                /* a list closed into a ring ends where it comes back */
                if ((r = addr_set_add(&seen, lm)) <= 0 || target_read(t, lm, l, sizeof(l)) < 0)
                        break;
                if (l[1] && l[0] != at_base && n_objects < LOADER_MAX_OBJECTS) {
                        names_at[n_objects] = l[1];
                        bases[n_objects++] = l[0];
                }
                lm = l[3];
        }
        addr_set_clear(&seen);
        if (r < 0)
                return *error = "out of memory", target_out_of_memory(t);
        if (lm && r == 0)
                strv_addf(&t->warnings, "the dynamic linker's list of libraries is a ring: read once");
        for (size_t i = 0; i < n_objects; i++) {
                _cleanup_free_ char *name = read_string(t, names_at[i], PATH_MAX);

                /* the executable's own entry has the name "", the vDSO a name of no file */
                if (!name || name[0] != '/')
                        continue;
                if (loader_add(t, name, bases[i]) < 0)
                        return *error = "out of memory", -ENOMEM;
        }
        strv_addf(&t->warnings, "the core lists no mapped files (no NT_FILE note, as in qemu-user's cores): the "
                  "executable and %zu libraries were found through the dynamic linker's list, and the core holds no "
                  "copy of their first pages to check their build-ids against", t->n_modules ? t->n_modules - 1 : 0);
        return 0;
}

/* The path the process was started with (AT_EXECFN), when it names the same file. */
static char *exec_display_name(struct target *t) {
        _cleanup_free_ char *s = execfn(t);
        struct stat a, b;

        if (s && s[0] == '/' && t->exe && stat(s, &a) == 0 && stat(t->exe->path, &b) == 0 &&
            a.st_dev == b.st_dev && a.st_ino == b.st_ino)
                return TAKE_PTR(s);
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
        if (core->n_mappings == 0 && !core->live_pid) {
                int r = modules_from_loader(t, error);

                if (r < 0 || t->out_of_memory) {
                        target_free(t);
                        return r < 0 ? r : (*error = "out of memory", -ENOMEM);
                }
                t->exe_display = exec_display_name(t);
                if (!t->exe_display) {
                        target_free(t);
                        return *error = "out of memory", -ENOMEM;
                }
                *ret = t;
                return 0;
        }
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

                *error = exe_error(opts->executable ? opts->executable : t->exe->path, r, "");
                target_free(t);
                return r == -ENOENT ? -ENOENT : -EBADMSG;
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
        free(t->loaded);
        strv_clear(&t->loader_paths);
        free(t->exe_display);
        strv_clear(&t->warnings);
        free(t);
}
