/* SPDX-License-Identifier: MIT */
/* Unit test: daemon/capture/binaries.c on this very process: the mapped ELF files taken through
 * /proc/self/map_files (root only: CAP_SYS_ADMIN), stored under their SHA-256, once. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "binaries.h"
#include "proc_info.h"
#include "sha256.h"
#include "tap.h"

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
        (void)sb, (void)flag, (void)ftw;
        return remove(path);
}

/* the SHA-256 of a file, by path; "" when unreadable */
static void file_hash(int dirfd, const char *path, char out[SHA256_HEX]) {
        int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
        uint8_t buf[65536], d[SHA256_BYTES];
        struct sha256 s;
        ssize_t n;

        out[0] = 0;
        if (fd < 0)
                return;
        sha256_init(&s);
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                sha256_update(&s, buf, (size_t)n);
        close(fd);
        sha256_final(&s, d);
        sha256_hex(d, out);
}

static int say_fake(const struct mapped_file *f, char hash[SHA256_HEX], void *userdata) {
        (void)f, (void)userdata;
        memcpy(hash, "f00df00df00df00df00df00df00df00df00df00df00df00df00df00df00df00d", SHA256_HEX);
        return 1;
}

static const struct mapped_file *find(const struct binaries *b, const char *base) {
        for (size_t i = 0; i < b->n; i++) {
                const char *p = strrchr(b->files[i].path, '/');
                if (p && !strncmp(p + 1, base, strlen(base)))
                        return &b->files[i];
        }
        return NULL;
}

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* cgroup_container: the runtimes' conventions, and what merely looks like them */
static void test_cgroup_container(void) {
        static const struct { const char *cgroup, *runtime, *id; } cases[] = {
                { "/system.slice/docker-" ID ".scope", "docker", ID },
                { "/docker/" ID, "docker", ID },
                { "/machine.slice/libpod-" ID ".scope/container", "podman", ID },
                { "/libpod_parent/libpod-" ID, "podman", ID },
                { "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-" ID
                  ".scope", "containerd", ID },
                { "/kubepods.slice/kubepods-besteffort.slice/x.slice/crio-" ID ".scope", "cri-o", ID },
                { "/kubepods/burstable/pod0a1b-2c3d/" ID, "kubernetes", ID },
                { "/lxc.payload.web1", "lxc", "web1" },
                { "/lxc/web2/sub", "lxc", "web2" },
                { "/machine.slice/machine-box.scope", "machine", "box" },
                { "/machine.slice/systemd-nspawn@box2.service/payload", "systemd-nspawn", "box2" },
                /* the innermost wins: docker in a machine */
                { "/machine.slice/machine-outer.scope/docker/" ID, "docker", ID },
                { "/user.slice/user-1000.slice/session-3.scope", NULL, NULL },
                { "/system.slice/docker.service", NULL, NULL },
                { "/system.slice/docker-0123.scope", NULL, NULL },              /* not 64 digits */
                { "/system.slice/docker-" ID "0.scope", NULL, NULL },           /* 65 */
                { "/machine.slice/libpod-conmon-" ID ".scope", NULL, NULL },    /* podman's monitor */
                { "/" ID, NULL, NULL },                                         /* whose? */
                { "/machine-.scope", NULL, NULL },
                { "/lxc.payload.", NULL, NULL },
                { "", NULL, NULL },
                { "/", NULL, NULL },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
                char *rt = NULL, *id = NULL;
                int r = cgroup_container(cases[i].cgroup, &rt, &id);

                if (cases[i].runtime)
                        tap_ok(r == 0 && rt && id && !strcmp(rt, cases[i].runtime) && !strcmp(id, cases[i].id),
                               "cgroup %s: %s %s (got %d %s %s)", cases[i].cgroup, cases[i].runtime, cases[i].id, r,
                               rt ? rt : "-", id ? id : "-");
                else
                        tap_ok(r == -ENOENT && !rt && !id, "cgroup '%s': no container (got %d %s %s)",
                               cases[i].cgroup, r, rt ? rt : "-", id ? id : "-");
                free(rt);
                free(id);
        }
}

int main(void) {
        char dir[] = "/tmp/test_binaries.XXXXXX";
        struct binaries b;
        struct binaries_limits lim = { .max_file = 1ull << 40, .max_total = 1ull << 40 };
        uint64_t added = 0;
        int procfd, storage;

        test_cgroup_container();
        if (geteuid() != 0) {
                tap_skip("map_files needs root (CAP_SYS_ADMIN)");
                return tap_done();
        }
        if (!mkdtemp(dir))
                return 1;
        storage = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        procfd = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        binaries_take(procfd, &b);
        const struct mapped_file *libc = find(&b, "libc.so"), *self = find(&b, "test_binaries");
        tap_ok(b.n >= 2 && libc && self, "this process's mapped ELF files: %zu, libc and the test itself among them",
               b.n);
        bool unique = true, open_ok = true;
        for (size_t i = 0; i < b.n; i++) {
                for (size_t k = i + 1; k < b.n; k++)
                        if (b.files[i].dev == b.files[k].dev && b.files[i].ino == b.files[k].ino)
                                unique = false;
                if (b.files[i].fd < 0)
                        open_ok = false;
        }
        tap_ok(unique, "one entry per file (device, inode), not per mapping");
        tap_ok(open_ok, "each with a descriptor");
        tap_ok(libc && libc->build_id_len == 20, "libc's build-id read from its first page (%zu bytes)",
               libc ? libc->build_id_len : 0);
        bool no_data = true;
        for (size_t i = 0; i < b.n; i++)
                if (strstr(b.files[i].path, "locale-archive"))
                        no_data = false;
        tap_ok(no_data, "data files (a locale archive) are not taken");

        char libc_path[4096] = "", want[SHA256_HEX] = "", got[SHA256_HEX];
        if (libc)
                snprintf(libc_path, sizeof(libc_path), "%s", libc->path);
        file_hash(AT_FDCWD, libc_path, want);
        TAP_EQ_INT(binaries_store(storage, &lim, &b, &added), 0, "binaries_store");
        libc = find(&b, "libc.so");
        tap_ok(libc && !strcmp(libc->hash, want) && !libc->note, "libc is named by its SHA-256 (%s)",
               libc ? libc->hash : "-");
        char name[128];
        snprintf(name, sizeof(name), "binaries/%s", want);
        file_hash(storage, name, got);
        tap_ok(!strcmp(got, want), "binaries/<hash> holds libc's bytes");
        struct stat st;
        tap_ok(fstatat(storage, name, &st, 0) == 0 && (st.st_mode & 07777) == 0600 && st.st_uid == 0,
               "0600, root's");
        uint64_t sum = 0;
        for (size_t i = 0; i < b.n; i++)
                sum += b.files[i].size;
        tap_ok(added == sum, "the first crash adds every file (%llu bytes)", (unsigned long long)added);
        binaries_free(&b);

        /* the same files again: nothing new */
        binaries_take(procfd, &b);
        TAP_EQ_INT(binaries_store(storage, &lim, &b, &added), 0, "binaries_store again");
        tap_ok(added == 0, "a second crash of the same program stores nothing new (%llu bytes)",
               (unsigned long long)added);
        binaries_free(&b);

        /* a file kept before from this very file is not read again: the hash the store names is taken,
         * if binaries/ still has it */
        static const char fake[] = "f00df00df00df00df00df00df00df00df00df00df00df00df00df00df00df00d";
        snprintf(name, sizeof(name), "binaries/%s", fake);
        int tfd = openat(storage, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        if (tfd >= 0)
                close(tfd);
        binaries_take(procfd, &b);
        lim.known = say_fake;
        TAP_EQ_INT(binaries_store(storage, &lim, &b, &added), 0, "binaries_store with a store that knows the files");
        libc = find(&b, "libc.so");
        tap_ok(libc && !strcmp(libc->hash, fake) && added == 0, "libc unchanged since it was kept: not read again");
        binaries_free(&b);
        unlinkat(storage, name, 0);
        binaries_take(procfd, &b);
        binaries_store(storage, &lim, &b, &added);
        libc = find(&b, "libc.so");
        tap_ok(libc && !strcmp(libc->hash, want), "the file the store names is gone: copied and hashed afresh");
        binaries_free(&b);
        lim.known = NULL;

        /* limits: a file too large, the crash's budget, a pattern */
        binaries_take(procfd, &b);
        /* an absolute pattern, as BinariesExclude= takes them: libc's directory, any libc.so* */
        char pattern[4200];
        snprintf(pattern, sizeof(pattern), "%.*s/libc.so*", (int)(strrchr(libc_path, '/') ? strrchr(libc_path, '/') - libc_path : 0),
                 libc_path);
        char *exclude[] = { pattern, NULL };
        lim = (struct binaries_limits) { .max_file = 1ull << 40, .max_total = 1ull << 40, .exclude = exclude };
        binaries_store(storage, &lim, &b, &added);
        libc = find(&b, "libc.so");
        tap_ok(libc && !libc->hash[0] && libc->note && strstr(libc->note, "BinariesExclude"),
               "BinariesExclude: libc recorded, not kept (%s)", libc && libc->note ? libc->note : "-");
        binaries_free(&b);
        binaries_take(procfd, &b);
        lim = (struct binaries_limits) { .max_file = 4096, .max_total = 1ull << 40 };
        binaries_store(storage, &lim, &b, &added);
        bool all_large = true;
        for (size_t i = 0; i < b.n; i++)
                if (b.files[i].size > 4096 && (b.files[i].hash[0] || !b.files[i].note))
                        all_large = false;
        tap_ok(all_large, "MaxBinarySize: every larger file recorded, not kept");
        binaries_free(&b);
        binaries_take(procfd, &b);
        lim = (struct binaries_limits) { .max_file = 1ull << 40, .max_total = 1 };
        binaries_store(storage, &lim, &b, &added);
        bool none = true;
        for (size_t i = 0; i < b.n; i++)
                if (b.files[i].hash[0])
                        none = false;
        tap_ok(none && added == 0, "MaxBinariesPerCrash 1 byte: nothing kept");
        binaries_free(&b);

        close(procfd);
        close(storage);
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return tap_done();
}
