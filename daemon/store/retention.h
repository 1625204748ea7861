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
