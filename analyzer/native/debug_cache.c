/* SPDX-License-Identifier: MIT */
/*
 * debug_cache: separate debug files kept decompressed, by build-id.
 *
 * Distributions compress their debug files (Debian's libc6-dbg: zlib
 * SHF_COMPRESSED sections), and libdw inflates every debug section of a
 * file the first time it reads any of it: for glibc that is most of the
 * time of a --native report.  The first report that needs such a file
 * writes an uncompressed copy into the cache; later ones map that copy.
 *
 * The cache is only used when its directory belongs to the caller and no
 * one else can write to it: a file planted there would be parsed as DWARF.
 */
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "debug_cache.h"
#include "util.h"

static bool has_compressed_sections(Elf *elf) {
        Elf_Scn *scn = NULL;

        while ((scn = elf_nextscn(elf, scn))) {
                GElf_Shdr sh;
                if (gelf_getshdr(scn, &sh) && (sh.sh_flags & SHF_COMPRESSED))
                        return true;
        }
        return false;
}

/* Make dir (and its parent for the per-user default) owned by us and private, or fail. */
static int private_dir(const char *dir) {
        struct stat st;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (lstat(dir, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022))
                return -EPERM;
        return 0;
}

int debug_cache_dir(char *buf, size_t size) {
        const char *env = getenv("PYSTACK_CACHE_DIR"), *home, *xdg;
        char parent[PATH_MAX];

        if (env) {
                if (!*env)
                        return -ENOENT;  /* set but empty: no cache */
                if ((size_t)snprintf(buf, size, "%s", env) >= size)
                        return -ENAMETOOLONG;
                return private_dir(buf);
        }
        if (geteuid() == 0) {
                if (private_dir("/var/cache/pystack") < 0)
                        return -EPERM;
                snprintf(buf, size, "/var/cache/pystack/debug");
                return private_dir(buf);
        }
        xdg = getenv("XDG_CACHE_HOME");
        home = getenv("HOME");
        if (xdg && *xdg == '/')
                snprintf(parent, sizeof(parent), "%s", xdg);
        else if (home && *home == '/')
                snprintf(parent, sizeof(parent), "%s/.cache", home);
        else
                return -ENOENT;
        if (mkdir(parent, 0700) < 0 && errno != EEXIST)
                return -errno;
        if ((size_t)snprintf(buf, size, "%s/pystack", parent) >= size)
                return -ENAMETOOLONG;
        return private_dir(buf);
}

/* Write an uncompressed copy of src into fd. */
static int write_uncompressed(Elf *src, int fd) {
        Elf *dst = NULL;
        GElf_Ehdr eh;
        size_t phnum, shstrndx;
        Elf_Scn *scn = NULL;
        int r = -EIO;

        if (!gelf_getehdr(src, &eh) || elf_getphdrnum(src, &phnum) < 0 || elf_getshdrstrndx(src, &shstrndx) < 0)
                return -EBADMSG;
        dst = elf_begin(fd, ELF_C_WRITE, NULL);
        if (!dst || !gelf_newehdr(dst, gelf_getclass(src)))
                goto out;
        if (phnum) {
                if (!gelf_newphdr(dst, phnum))
                        goto out;
                for (size_t i = 0; i < phnum; i++) {
                        GElf_Phdr ph;
                        if (!gelf_getphdr(src, i, &ph) || !gelf_update_phdr(dst, i, &ph))
                                goto out;
                }
        }
        while ((scn = elf_nextscn(src, scn))) {
                Elf_Scn *out_scn = elf_newscn(dst);
                GElf_Shdr sh;
                Elf_Data *in, *data;

                if (!out_scn || !gelf_getshdr(scn, &sh))
                        goto out;
                if ((sh.sh_flags & SHF_COMPRESSED) && elf_compress(scn, 0, 0) < 0)
                        goto out;
                if (!gelf_getshdr(scn, &sh))
                        goto out;
                in = elf_getdata(scn, NULL);
                data = elf_newdata(out_scn);
                if (!data)
                        goto out;
                if (in)
                        *data = *in;
                if (!gelf_update_shdr(out_scn, &sh))
                        goto out;
        }
        eh.e_shstrndx = shstrndx < SHN_LORESERVE ? shstrndx : SHN_XINDEX;
        if (!gelf_update_ehdr(dst, &eh) || elf_update(dst, ELF_C_WRITE) < 0)
                goto out;
        r = 0;
out:
        if (dst)
                elf_end(dst);
        return r;
}

/* "<dir>" and "<hex build-id>.debug", or -1 when the cache cannot be used. */
static int cache_names(const unsigned char *build_id, size_t build_id_len, char *dir, size_t dirsz,
                       char *name, size_t namesz) {
        if (build_id_len == 0 || build_id_len > BUILD_ID_MAX_BYTES || namesz < 2 * build_id_len + 7 ||
            debug_cache_dir(dir, dirsz) < 0)
                return -1;
        for (size_t i = 0; i < build_id_len; i++)
                sprintf(name + 2 * i, "%02x", build_id[i]);
        strcpy(name + 2 * build_id_len, ".debug");
        return 0;
}

int debug_cache_open(const unsigned char *build_id, size_t build_id_len, char **path) {
        char dir[PATH_MAX], name[2 * BUILD_ID_MAX_BYTES + 8];
        _cleanup_close_ int dfd = -1, fd = -1;
        struct stat st;

        if (cache_names(build_id, build_id_len, dir, sizeof(dir), name, sizeof(name)) < 0)
                return -ENOENT;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dfd < 0)
                return -ENOENT;
        fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid())
                return -ENOENT;
        if (path && asprintf(path, "%s/%s", dir, name) < 0)
                *path = NULL;
        return TAKE_FD(fd);
}

void debug_cache_store(int fd, const unsigned char *build_id, size_t build_id_len) {
        char dir[PATH_MAX], name[2 * BUILD_ID_MAX_BYTES + 8], tmp[sizeof(name) + 24];
        _cleanup_close_ int dfd = -1, tfd = -1;
        Elf *src;
        int r;

        if (cache_names(build_id, build_id_len, dir, sizeof(dir), name, sizeof(name)) < 0)
                return;
        src = elf_begin(fd, ELF_C_READ_MMAP_PRIVATE, NULL);
        if (!src)
                return;
        if (!has_compressed_sections(src)) {
                elf_end(src);
                return;
        }
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        snprintf(tmp, sizeof(tmp), ".%s.%d", name, (int)getpid());
        if (dfd >= 0)
                tfd = openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (tfd < 0) {
                elf_end(src);
                return;
        }
        r = write_uncompressed(src, tfd);
        elf_end(src);
        /* renamed into place only when complete: readers never see half a file */
        if (r < 0 || fsync(tfd) < 0 || renameat(dfd, tmp, dfd, name) < 0)
                unlinkat(dfd, tmp, 0);
}
