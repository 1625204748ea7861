/* SPDX-License-Identifier: MIT */
/*
 * zst-compress: compress a file into zstd's seekable format with our writer,
 * for the integration tests (test_zst_cores.py compiles it on the fly).
 *
 *   zst-compress [-l LEVEL] [-T THREADS] [-B FRAME_SIZE] IN OUT
 *
 * Prints "<input bytes> <output bytes> <seconds>" on stdout, so the test can
 * report the writer's speed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zst_seekable.h"

static double now(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
        static uint8_t buf[1 << 20];
        int level = 3, opt, in, out, r = 0;
        unsigned threads = 1;
        size_t frame = 0;
        uint64_t total = 0, compressed = 0;
        struct zst_writer *w;
        double t0;

        while ((opt = getopt(argc, argv, "l:T:B:")) != -1) {
                switch (opt) {
                case 'l': level = atoi(optarg); break;
                case 'T': threads = strtoul(optarg, NULL, 10); break;
                case 'B': frame = strtoull(optarg, NULL, 0); break;
                default:
                        fprintf(stderr, "usage: zst-compress [-l LEVEL] [-T THREADS] [-B FRAME_SIZE] IN OUT\n");
                        return 2;
                }
        }
        if (argc - optind != 2) {
                fprintf(stderr, "usage: zst-compress [-l LEVEL] [-T THREADS] [-B FRAME_SIZE] IN OUT\n");
                return 2;
        }
        in = open(argv[optind], O_RDONLY | O_CLOEXEC);
        if (in < 0) {
                fprintf(stderr, "zst-compress: %s: %s\n", argv[optind], strerror(errno));
                return 1;
        }
        out = open(argv[optind + 1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (out < 0) {
                fprintf(stderr, "zst-compress: %s: %s\n", argv[optind + 1], strerror(errno));
                return 1;
        }
        t0 = now();
        r = zst_writer_new(out, level, threads, frame, &w);
        if (r < 0) {
                fprintf(stderr, "zst-compress: %s\n", strerror(-r));
                return 1;
        }
        for (;;) {
                ssize_t n = read(in, buf, sizeof(buf));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        break;
                }
                if (n == 0)
                        break;
                r = zst_writer_write(w, buf, n);
                if (r < 0)
                        break;
                total += n;
        }
        if (r >= 0)
                r = zst_writer_finish(w, &compressed);
        zst_writer_free(w);
        if (r >= 0 && close(out) < 0)
                r = -errno;
        if (r < 0) {
                fprintf(stderr, "zst-compress: %s\n", strerror(-r));
                unlink(argv[optind + 1]);
                return 1;
        }
        printf("%llu %llu %.6f\n", (unsigned long long)total, (unsigned long long)compressed, now() - t0);
        return 0;
}
