/* SPDX-License-Identifier: MIT */
#pragma once

/* sha256: FIPS 180-4's SHA-256, the name of a file in the binaries store (a hash no one can make
 * two files share, unlike a build-id, which a file only claims). */

#include <stddef.h>
#include <stdint.h>

#define SHA256_BYTES 32
#define SHA256_HEX (2 * SHA256_BYTES + 1)

struct sha256 {
        uint32_t h[8];
        uint64_t length;                /* bytes so far */
        uint8_t block[64];
        size_t used;                    /* bytes in block */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t n);
void sha256_final(struct sha256 *s, uint8_t out[SHA256_BYTES]);

/* out as 64 lowercase hex digits and a NUL */
void sha256_hex(const uint8_t digest[SHA256_BYTES], char out[SHA256_HEX]);
