/*
 * xs-client: the libxenstore baseline for `pnpm bench xenstore`.
 *
 *   xs-client read|write COUNT PATH
 *
 * Connects as every Xen tool does (xs_open: $XENSTORED_PATH, else the default socket), writes a
 * 1-byte value to PATH, then does COUNT blocking xs_read (or xs_write) calls, one at a time,
 * as libxenstore allows. Prints `<count> <elapsed ns>` on stdout. Exit 1 on any failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xenstore.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "read") && strcmp(argv[1], "write"))) {
        fprintf(stderr, "usage: %s read|write COUNT PATH\n", argv[0]);
        return 2;
    }
    int reading = strcmp(argv[1], "read") == 0;
    long count = strtol(argv[2], NULL, 10);
    const char *path = argv[3];
    struct xs_handle *xs = xs_open(0);
    if (!xs) {
        perror("xs_open");
        return 1;
    }
    if (!xs_write(xs, XBT_NULL, path, "x", 1)) {
        perror("xs_write");
        return 1;
    }
    long long start = now_ns();
    for (long i = 0; i < count; i++) {
        if (reading) {
            unsigned int len;
            char *v = xs_read(xs, XBT_NULL, path, &len);
            if (!v || len != 1) {
                perror("xs_read");
                return 1;
            }
            free(v);
        } else if (!xs_write(xs, XBT_NULL, path, "y", 1)) {
            perror("xs_write");
            return 1;
        }
    }
    long long elapsed = now_ns() - start;
    printf("%ld %lld\n", count, elapsed);
    xs_close(xs);
    return 0;
}
