/*
 * xs-floor: the least any xenstore daemon can do per request, for `pnpm bench xenstored`.
 *
 *   xs-floor SOCKET sleep|poll SPIN_US
 *
 * Listens on SOCKET and serves one connection at a time with no tree at all: READ answers "a",
 * every other request "OK". What a client measures against it is the cost of the socket, the
 * wake-ups and the client itself: the floor under any real daemon on this machine.
 *   sleep: blocks in read() between requests (one wake-up per request, as cxenstored pays);
 *   poll:  after each reply, polls the socket for SPIN_US µs before blocking again (the policy of
 *          xencons-xenstored's --spin-us), so a client's next request is taken without a wake-up.
 * Runs until killed. Exit 2 on bad arguments, 1 if it cannot listen.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define HEADER 16
#define XS_READ 2

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Answers every complete request in buf[0..*have); keeps the incomplete rest. 0 on write error. */
static int answer(int fd, unsigned char *buf, size_t *have)
{
    unsigned char out[8192];
    size_t at = 0, len = 0;
    while (*have - at >= HEADER) {
        uint32_t h[4];
        memcpy(h, buf + at, HEADER);
        if (*have - at < HEADER + (size_t)h[3])
            break;
        const char *body = h[0] == XS_READ ? "a" : "OK";
        uint32_t r[4] = { h[0], h[1], h[2], h[0] == XS_READ ? 1 : 3 };
        if (len + HEADER + r[3] > sizeof out)
            break;
        memcpy(out + len, r, HEADER);
        memcpy(out + len + HEADER, body, r[3]);
        len += HEADER + r[3];
        at += HEADER + h[3];
    }
    memmove(buf, buf + at, *have - at);
    *have -= at;
    return len == 0 || write(fd, out, len) == (ssize_t)len;
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[2], "sleep") && strcmp(argv[2], "poll"))) {
        fprintf(stderr, "usage: %s SOCKET sleep|poll SPIN_US\n", argv[0]);
        return 2;
    }
    int polling = strcmp(argv[2], "poll") == 0;
    long long spin_ns = atoll(argv[3]) * 1000LL;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(argv[1]) >= sizeof addr.sun_path) {
        fprintf(stderr, "xs-floor: socket path too long\n");
        return 2;
    }
    strcpy(addr.sun_path, argv[1]);
    unlink(argv[1]);
    int ls = socket(AF_UNIX, SOCK_STREAM, 0);
    if (ls < 0 || bind(ls, (struct sockaddr *)&addr, sizeof addr) || listen(ls, 16)) {
        perror("xs-floor: listen");
        return 1;
    }
    static unsigned char buf[65536];
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            continue;
        size_t have = 0;
        long long spin_until = 0;
        for (;;) {
            ssize_t n;
            if (polling && now_ns() < spin_until) {
                n = recv(fd, buf + have, sizeof buf - have, MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    continue;
            } else {
                n = read(fd, buf + have, sizeof buf - have);
            }
            if (n <= 0 || have + n > sizeof buf)
                break;
            have += n;
            if (!answer(fd, buf, &have))
                break;
            spin_until = now_ns() + spin_ns;
        }
        close(fd);
    }
}
