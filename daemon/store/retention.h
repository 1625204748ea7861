/* SPDX-License-Identifier: MIT */
#pragma once

#include <sqlite3.h>

#include "conf.h"

/*
 * Keep the stored cores within MaxAge, MaxUse and KeepFree: cores older than
 * MaxAge go, then the oldest (analysed ones before pending ones) while the
 * cores use more than MaxUse or leave less than KeepFree free.  The crash
 * records stay (core_state "removed").  storage_fd is the storage directory.
 * 0 and *removed, or -EIO.
 */
int retention_apply(sqlite3 *db, int storage_fd, const struct config *c, unsigned *removed);

/* A file in binaries/ with no row after this long was linked by a handler that died before recording it. */
#define ORPHAN_AGE_USEC (15 * 60 * 1000000LL)

/*
 * Remove such files (64 hex digits, regular, changed before now_usec - ORPHAN_AGE_USEC, no row),
 * looking at most at 100,000 entries.  The number removed, or -errno.
 */
int retention_sweep_orphans(sqlite3 *db, int storage_fd, int64_t now_usec);
