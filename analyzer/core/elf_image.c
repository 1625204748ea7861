/* SPDX-License-Identifier: MIT */
#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <string.h>
#include <sys/stat.h>

#include "elf_image.h"
#include "package_note.h"
#include "util.h"

struct elf_image {
        char *path;
        int fd;
        uint64_t file_size;
        Elf *elf;
        uint8_t build_id[BUILD_ID_MAX];
        size_t build_id_len;
        uint64_t first_load_vaddr;
        uint16_t machine;               /* EM_X86_64 or EM_AARCH64 */
        uint64_t entry;                 /* e_entry */
};

static void note_build_id(struct elf_image *e, Elf_Data *data) {
        GElf_Nhdr nh;
        size_t off = 0, name_off, desc_off;

        while ((off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
                if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
                    memcmp((char *)data->d_buf + name_off, "GNU", 4) == 0 &&
                    nh.n_descsz > 0 && nh.n_descsz <= BUILD_ID_MAX) {
                        memcpy(e->build_id, (char *)data->d_buf + desc_off, nh.n_descsz);
                        e->build_id_len = nh.n_descsz;
                        return;
                }
        }
}

int elf_image_open(const char *path, struct elf_image **ret) {
        _cleanup_close_ int fd = -1;
        struct elf_image *e;
        struct stat st;
        GElf_Ehdr eh;
        size_t phnum;
        bool have_load = false;

        /* non-blocking: a path from a core may name a FIFO, which must not stall us */
        fd = open_path_or_fd(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -ENOEXEC;
        if (elf_version(EV_CURRENT) == EV_NONE)
                return -EINVAL;
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->fd = -1;
        e->file_size = st.st_size;
        e->path = strdup(path);
        if (!e->path) {
                elf_image_free(e);
                return -ENOMEM;
        }
        e->elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        if (!e->elf || elf_kind(e->elf) != ELF_K_ELF ||
            !gelf_getehdr(e->elf, &eh) || gelf_getclass(e->elf) != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
            (eh.e_machine != EM_X86_64 && eh.e_machine != EM_AARCH64) || elf_getphdrnum(e->elf, &phnum) < 0) {
                elf_image_free(e);
                return -ENOEXEC;
        }
        e->machine = eh.e_machine;
        e->entry = eh.e_entry;
        for (size_t i = 0; i < phnum; i++) {
                GElf_Phdr ph;

                if (!gelf_getphdr(e->elf, i, &ph))
                        continue;
                if (ph.p_type == PT_LOAD && !have_load) {
                        e->first_load_vaddr = ph.p_vaddr & ~(uint64_t)0xfff;
                        have_load = true;
                } else if (ph.p_type == PT_NOTE && e->build_id_len == 0) {
                        Elf_Data *d = elf_getdata_rawchunk(e->elf, ph.p_offset, ph.p_filesz, ELF_T_NHDR);
                        if (d)
                                note_build_id(e, d);
                }
        }
        e->fd = TAKE_FD(fd);
        *ret = e;
        return 0;
}

void elf_image_free(struct elf_image *e) {
        if (!e)
                return;
        if (e->elf)
                elf_end(e->elf);
        if (e->fd >= 0)
                close(e->fd);
        free(e->path);
        free(e);
}

const char *elf_image_path(const struct elf_image *e) { return e->path; }

int elf_image_fd(const struct elf_image *e) { return e->fd; }

size_t elf_image_build_id(const struct elf_image *e, const uint8_t **id) {
        *id = e->build_id;
        return e->build_id_len;
}

uint64_t elf_image_first_load_vaddr(const struct elf_image *e) { return e->first_load_vaddr; }
uint16_t elf_image_machine(const struct elf_image *e) { return e->machine; }
uint64_t elf_image_entry(const struct elf_image *e) { return e->entry; }

size_t elf_image_segments(struct elf_image *e, uint32_t type, struct elf_segment *out, size_t max) {
        size_t phnum, n = 0;

        if (elf_getphdrnum(e->elf, &phnum) < 0)
                return 0;
        for (size_t i = 0; i < phnum; i++) {
                GElf_Phdr ph;

                if (!gelf_getphdr(e->elf, i, &ph) || ph.p_type != type)
                        continue;
                if (n < max)
                        out[n] = (struct elf_segment) { .vaddr = ph.p_vaddr, .memsz = ph.p_memsz,
                                                        .offset = ph.p_offset, .filesz = ph.p_filesz };
                n++;
        }
        return n;
}

/*
 * One pass over a symbol table for up to n names.  Runs over every symbol
 * of libpython (tens of thousands, .dynsym then .symtab, since names a
 * version lacks are never found): the names' first bytes and lengths are
 * checked against the string table directly before any comparison.
 */
static size_t scan_symbols(struct elf_image *e, Elf64_Word sh_type, const char *const *names,
                           uint64_t *values, uint64_t *sizes, bool *found, size_t n) {
        Elf_Scn *scn = NULL;
        size_t hits = 0, len[ELF_IMAGE_MAX_LOOKUP];
        bool first[256] = {};

        for (size_t k = 0; k < n; k++) {
                len[k] = strlen(names[k]);
                first[(unsigned char)names[k][0]] = true;
        }
        while ((scn = elf_nextscn(e->elf, scn))) {
                GElf_Shdr sh;
                Elf_Data *d, *strings;
                Elf_Scn *str_scn;

                if (!gelf_getshdr(scn, &sh) || sh.sh_type != sh_type || sh.sh_entsize == 0)
                        continue;
                d = elf_getdata(scn, NULL);
                str_scn = elf_getscn(e->elf, sh.sh_link);
                strings = str_scn ? elf_getdata(str_scn, NULL) : NULL;
                if (!d || !strings || !strings->d_buf)
                        continue;
                const char *str = strings->d_buf;
                size_t str_size = strings->d_size;
                size_t count = sh.sh_size / sh.sh_entsize;     /* gelf_getsym checks each against d */

                for (size_t i = 0; i < count; i++) {
                        GElf_Sym sym;

                        if (!gelf_getsym(d, (int)i, &sym) || sym.st_name >= str_size ||
                            !first[(unsigned char)str[sym.st_name]] || sym.st_shndx == SHN_UNDEF || sym.st_value == 0)
                                continue;
                        for (size_t k = 0; k < n; k++) {
                                /* the name and its NUL must lie in the table */
                                if (found[k] || len[k] + 1 > str_size - sym.st_name ||
                                    memcmp(str + sym.st_name, names[k], len[k] + 1) != 0)
                                        continue;
                                found[k] = true;
                                values[k] = sym.st_value;
                                if (sizes)
                                        sizes[k] = sym.st_size;
                                if (++hits == n)
                                        return hits;
                        }
                }
        }
        return hits;
}

size_t elf_image_symbols(struct elf_image *e, bool dynamic_only, const char *const *names, uint64_t *values,
                         uint64_t *sizes, size_t n) {
        bool found[ELF_IMAGE_MAX_LOOKUP] = {};
        size_t hits;

        if (n > ELF_IMAGE_MAX_LOOKUP)
                return 0;
        hits = scan_symbols(e, SHT_DYNSYM, names, values, sizes, found, n);
        if (hits < n && !dynamic_only)
                hits += scan_symbols(e, SHT_SYMTAB, names, values, sizes, found, n);
        return hits;
}

int elf_image_section(struct elf_image *e, const char *name, uint64_t *addr, uint64_t *size) {
        Elf_Scn *scn = NULL;
        size_t shstrndx;

        if (elf_getshdrstrndx(e->elf, &shstrndx) < 0)
                return -ENOENT;
        while ((scn = elf_nextscn(e->elf, scn))) {
                GElf_Shdr sh;
                const char *s;

                if (!gelf_getshdr(scn, &sh))
                        continue;
                s = elf_strptr(e->elf, shstrndx, sh.sh_name);
                if (s && strcmp(s, name) == 0) {
                        *addr = sh.sh_addr;
                        *size = sh.sh_size;
                        return 0;
                }
        }
        return -ENOENT;
}

int elf_image_package(struct elf_image *e, struct json_doc **ret) {
        Elf_Scn *scn = NULL;
        size_t shnum, phnum;
        unsigned areas = 0;

        if (elf_getshdrnum(e->elf, &shnum) < 0)
                shnum = 0;
        if (shnum > 0) {
                /* libelf checks each section's extent against the file before handing out its data */
                while (areas < ELF_IMAGE_MAX_NOTE_AREAS && (scn = elf_nextscn(e->elf, scn))) {
                        GElf_Shdr sh;
                        int r;

                        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
                                continue;
                        areas++;
                        r = package_note_find(elf_getdata(scn, NULL), ret);
                        if (r != 0)
                                return r;
                }
                return 0;
        }
        /* a file without section headers (stripped by sstrip, or hand-made): its segments */
        if (elf_getphdrnum(e->elf, &phnum) < 0)
                return 0;
        for (size_t i = 0; i < phnum && areas < ELF_IMAGE_MAX_NOTE_AREAS; i++) {
                GElf_Phdr ph;
                int r;

                if (!gelf_getphdr(e->elf, i, &ph) || ph.p_type != PT_NOTE)
                        continue;
                areas++;
                r = package_note_find(elf_getdata_rawchunk(e->elf, ph.p_offset, ph.p_filesz,
                                                           ph.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR), ret);
                if (r != 0)
                        return r;
        }
        return 0;
}

int elf_image_pread(struct elf_image *e, void *buf, size_t len, uint64_t off) {
        ssize_t n;

        if (!range_ok(off, len, e->file_size))
                return -EIO;
        n = pread(e->fd, buf, len, (off_t)off);
        return n == (ssize_t)len ? 0 : -EIO;
}
