/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * utf8: the two UTF-8 primitives both sides need — the analyzer turning
 * strings from a core into text, the crash handler turning /proc bytes into
 * JSON.  No dependencies, so the handler links it without the analysis code.
 */

#include <stddef.h>
#include <stdint.h>

/* Write the UTF-8 encoding of cp (invalid code points as U+FFFD) to out: 1 to 4 bytes, returned. */
size_t utf8_put(char *out, uint32_t cp);

/* The length of the valid UTF-8 sequence at s (at most n > 0 bytes), or 0 when it is invalid
 * (overlong, a surrogate, past U+10FFFF, cut short). */
size_t utf8_valid_len(const uint8_t *s, size_t n);
