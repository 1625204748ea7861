/* SPDX-License-Identifier: MIT */
/* Unit test: SHA-256 (analyzer/common/sha256.h) against FIPS 180-4's examples, coreutils'
 * sha256sum, and itself fed in pieces of every size. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sha256.h"
#include "tap.h"

static void hex_of(const void *data, size_t n, char out[SHA256_HEX]) {
        struct sha256 s;
        uint8_t d[SHA256_BYTES];

        sha256_init(&s);
        sha256_update(&s, data, n);
        sha256_final(&s, d);
        sha256_hex(d, out);
}

/* the same bytes given in pieces of step bytes (the last one shorter) */
static void hex_in_pieces(const uint8_t *data, size_t n, size_t step, char out[SHA256_HEX]) {
        struct sha256 s;
        uint8_t d[SHA256_BYTES];

        sha256_init(&s);
        for (size_t i = 0; i < n; i += step)
                sha256_update(&s, data + i, n - i < step ? n - i : step);
        sha256_final(&s, d);
        sha256_hex(d, out);
}

/* coreutils' answer, or "" when sha256sum cannot be run */
static void sha256sum_of(const uint8_t *data, size_t n, char out[SHA256_HEX]) {
        char path[] = "/tmp/test_sha256.XXXXXX", cmd[64];
        int fd = mkstemp(path);
        FILE *p;

        out[0] = 0;
        if (fd < 0)
                return;
        if (write(fd, data, n) == (ssize_t)n) {
                snprintf(cmd, sizeof(cmd), "sha256sum < %s", path);
                if ((p = popen(cmd, "r"))) {
                        if (!fgets(out, SHA256_HEX, p))
                                out[0] = 0;
                        pclose(p);
                }
        }
        close(fd);
        unlink(path);
}

int main(void) {
        static const struct { const char *msg; const char *hex; } fips[] = {
                { "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
                { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
                { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
                { "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
                  "mnopqrstnopqrstu",
                  "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
        };
        char got[SHA256_HEX], want[SHA256_HEX];

        for (size_t i = 0; i < sizeof(fips) / sizeof(*fips); i++) {
                hex_of(fips[i].msg, strlen(fips[i].msg), got);
                tap_ok(!strcmp(got, fips[i].hex), "FIPS 180-4 example of %zu bytes: %s", strlen(fips[i].msg), got);
        }

        /* a million 'a', fed 1000 at a time */
        struct sha256 s;
        uint8_t d[SHA256_BYTES], a[1000];
        memset(a, 'a', sizeof(a));
        sha256_init(&s);
        for (int i = 0; i < 1000; i++)
                sha256_update(&s, a, sizeof(a));
        sha256_final(&s, d);
        sha256_hex(d, got);
        tap_ok(!strcmp(got, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
               "a million 'a' in pieces of 1000: %s", got);

        /* every length around the padding's edges (55, 56, 63, 64, 119, 120 ...) and random data,
         * each in pieces of 1 to 130 bytes: the same digest as in one piece and as sha256sum's */
        uint8_t *buf = malloc(4096);
        if (!buf)
                return 1;
        srand(12345);
        for (size_t i = 0; i < 4096; i++)
                buf[i] = (uint8_t)rand();
        bool pieces_ok = true, sum_ok = true, sum_ran = false;
        for (size_t n = 0; n <= 300; n++) {
                hex_of(buf, n, want);
                for (size_t step = 1; step <= 130; step++) {
                        hex_in_pieces(buf, n, step, got);
                        if (strcmp(got, want)) {
                                printf("# %zu bytes in pieces of %zu: %s, in one: %s\n", n, step, got, want);
                                pieces_ok = false;
                        }
                }
                if (n % 7 == 0 || (n >= 54 && n <= 66) || (n >= 118 && n <= 130)) {
                        char sum[SHA256_HEX];
                        sha256sum_of(buf, n, sum);
                        if (!sum[0])
                                continue;
                        sum_ran = true;
                        if (strcmp(sum, want)) {
                                printf("# %zu bytes: sha256sum %s, ours %s\n", n, sum, want);
                                sum_ok = false;
                        }
                }
        }
        tap_ok(pieces_ok, "0..300 bytes, each in pieces of 1..130 bytes: the digest of one piece");
        if (sum_ran)
                tap_ok(sum_ok, "sha256sum agrees on the lengths around every padding edge and every 7th");
        else
                tap_skip("sha256sum cannot be run here");
        hex_of(buf, 4096, want);
        sha256sum_of(buf, 4096, got);
        if (got[0])
                tap_ok(!strcmp(got, want), "4096 random bytes: sha256sum's digest");
        else
                tap_skip("sha256sum cannot be run here");
        free(buf);
        return tap_done();
}
