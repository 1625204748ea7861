/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The two ways a core reaches pystack-coredump: the pipe (core_pattern "|pystack-coredump ...",
 * coredump.c's main) and the coredump socket (core_pattern "@@RUNTIME_DIR/coredump.socket",
 * Linux 6.17+): the listener (listener.c) accepts, and each connection is captured in a process
 * of its own by capture_connection (coredump.c), with the same steps as the pipe.
 */

#include <stdint.h>

#include "conf.h"

/* The configuration from a path only root controls; a refused one is logged and the defaults
 * used (a crash is never lost to a typo).  0, or -ENOMEM (not logged): then nothing is to be
 * captured, since the defaults may name another store. */
int capture_load_config(struct config *cfg, const char *path);

/* How long one connection may take in all, from the kernel's request to the record. */
#define CAPTURE_CONNECTION_LIMIT_SEC 600

/* Capture the crash the kernel connected about (conn, accepted at start_usec, CLOCK_REALTIME).
 * Runs in the connection's own process: the exit status. */
int capture_connection(int conn, const char *config_path, int64_t start_usec);

/*
 * pystack-coredump --listen: bind RUNTIME_DIR/coredump.socket, put "@@" and its path in
 * core_pattern in place of our pipe pattern, and serve each connection in a child until
 * SIGTERM; then put the pipe pattern back.  The exit status: 0 after SIGTERM, 3 when socket
 * capture is not possible here (the kernel, or core_pattern is not ours: not worth a restart),
 * 1 on other trouble.
 */
#define LISTENER_EXIT_UNSUPPORTED 3
int listener_run(const char *config_path);
