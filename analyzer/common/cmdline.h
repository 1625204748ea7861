/* SPDX-License-Identifier: MIT */
#pragma once

/* cmdline: what a person calls a crashed program, from its arguments — one rule for the
 * analyzer's report, the store's list and the journal's message. */

#include <stddef.h>

/*
 * For a Python interpreter (the executable's or argv[0]'s file name contains
 * "python"): the script's file name ("worker.py" for "python3 -u
 * /srv/worker.py"), "-m MODULE" for "python3 -m MODULE", "-c" for
 * "python3 -c CODE", skipping the options that take a value (-W, -X).
 * Otherwise, and when the interpreter was given none of these: comm, else
 * the executable's file name, else "?".  A new string (NULL when out of
 * memory); argc and every argument are trusted to be bounded by the caller.
 */
char *cmdline_script(const char *const *argv, size_t argc, const char *exe, const char *comm);

/* A command line stored as a JSON array of strings, its arguments joined by spaces: 0 and a new
 * string in *ret (NULL when json is NULL, not such an array, or empty), or -ENOMEM. */
int cmdline_join_json(const char *json, char **ret);
