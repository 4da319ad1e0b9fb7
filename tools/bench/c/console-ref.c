/*
 * console-ref: the C reference for `pnpm bench console`.
 *
 *   console-ref DIR out|in CHUNK WARMUP_MS MEASURE_MS   bytes through one ring, MiB/s
 *   console-ref DIR echo TRIPS WARMUP_TRIPS GAP_US        keystroke echo round trips, µs
 *
 * Two processes, "dom0" and "guest", share one console page (struct xencons_interface: in[1024]
 * at 0, out[2048] at 1024, in_cons/in_prod/out_cons/out_prod at 3072/3076/3080/3084) and wake
 * each other exactly as the simulated host does (packages/sim-hypervisor: event-file.ts,
 * event-handle.ts, doorbells.ts):
 *
 *  - each domain has an event file (36864 bytes: pending bits at 512, route[] at 1024, attach[]
 *    at 1024 + 4096 * 4); notify(port) loads route[port], sets the remote port's pending bit with
 *    a seq_cst atomic OR, loads the remote attach[port] and writes one byte to that handle's
 *    doorbell FIFO (opened O_WRONLY|O_NONBLOCK; EAGAIN ignored), on every notify;
 *  - a waiter reads its own doorbell FIFO (up to 64 KiB at a time, as libuv does), then takes
 *    its pending bits with one atomic AND per word it listens on, then looks at the ring.
 *
 * The ring code follows Xen's: the producer loads the other index with acquire, copies with
 * wrap-around, publishes its index with release and notifies after every pass that moved bytes;
 * the consumer reads until the ring is empty, then notifies once. Both refuse impossible indices.
 *
 * Throughput: the producer streams a 65537-byte pseudo-random pattern (a prime length, so a
 * wrong offset never matches) in application writes of CHUNK bytes, each written as space
 * allows (waiting for an event when the ring is full); the consumer memcmp()s every byte. The
 * parent samples the consumer's byte counter after WARMUP_MS and again MEASURE_MS later.
 * `out`: the guest produces into out[], dom0 consumes; `in`: dom0 produces into in[].
 *
 * Echo: dom0 stamps CLOCK_MONOTONIC, writes 1 byte into in[], notifies and waits; the guest
 * wakes, moves the byte to out[] and notifies; dom0 wakes, takes the byte (and notifies: space
 * freed, as the protocol asks), stamps, then sleeps GAP_US so both sides are asleep when the
 * next keystroke comes.
 *
 * Prints one line of key=value pairs on stdout. Exit 1 on any failure (corrupt data, a stall).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE_SIZE 4096
#define IN_OFF 0
#define IN_SIZE 1024
#define OUT_OFF 1024
#define OUT_SIZE 2048
#define IN_CONS 3072
#define IN_PROD 3076
#define OUT_CONS 3080
#define OUT_PROD 3084
/* Our control words, in the unused tail of the page, one cache line each. */
#define CTL_PHASE 3136    /* 0 warm-up, 1 measuring, 2 stop */
#define CTL_BYTES 3200    /* uint64: bytes the consumer verified */
#define CTL_BAD 3264      /* mismatching copies */

#define EVENT_FILE_SIZE 36864
#define MAX_PORTS 4096
#define PENDING_OFFSET 512
#define PENDING_WORDS (MAX_PORTS / 32)
#define ROUTE_OFFSET 1024
#define ATTACH_OFFSET (ROUTE_OFFSET + MAX_PORTS * 4)

#define PATTERN_LEN 65537

/* The two ends, as the simulated host would number them. */
#define GUEST_DOMID 1
#define GUEST_PORT 1   /* console/port, allocated for dom0 */
#define DOM0_PORT 3    /* dom0's end after bindInterdomain */
#define DOM0_HANDLE 1
#define GUEST_HANDLE 2

struct side {
    int domid;
    int port;
    int handle;
    uint32_t *own;    /* our event file */
    uint32_t *remote; /* the peer's event file */
    int bell;         /* our doorbell FIFO (read) */
    int peer_bell;    /* the peer's doorbell FIFO (write, non-blocking) */
    uint32_t mask[PENDING_WORDS];
    long waits;
    long notifies;
};

static uint8_t *page;
static const char *dir;
static uint8_t *pattern;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "console-ref: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void *map_file(const char *name, size_t size, int create)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDWR | (create ? O_CREAT | O_TRUNC : 0), 0600);
    if (fd < 0)
        die(path);
    if (create && ftruncate(fd, size) != 0)
        die("ftruncate");
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        die("mmap");
    close(fd);
    return p;
}

static uint32_t *u32(uint8_t *base, size_t off) { return (uint32_t *)(base + off); }

static uint32_t load_acq(uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void store_rel(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

static int phase(void) { return (int)__atomic_load_n(u32(page, CTL_PHASE), __ATOMIC_ACQUIRE); }

/* notify(port), as SimEventHandle.notify does it (every access seq_cst, as JS Atomics are). */
static void notify(struct side *s)
{
    uint32_t route = __atomic_load_n(&s->own[ROUTE_OFFSET / 4 + s->port], __ATOMIC_SEQ_CST);
    if (route == 0)
        return;
    int rdomid = (int)(route >> 16) - 1;
    uint32_t rport = route & 0xffff;
    uint32_t *ev = rdomid == s->domid ? s->own : s->remote;
    __atomic_fetch_or(&ev[PENDING_OFFSET / 4 + (rport >> 5)], 1u << (rport & 31),
                      __ATOMIC_SEQ_CST);
    uint32_t handle = __atomic_load_n(&ev[ATTACH_OFFSET / 4 + rport], __ATOMIC_SEQ_CST);
    if (handle == 0 || (int)handle == s->handle)
        return;
    static const char one = 1;
    s->notifies++;
    if (write(s->peer_bell, &one, 1) < 0 && errno != EAGAIN)
        die("doorbell write");
}

/* Sleeps on the doorbell, then takes our pending bits (the scan of SimEventHandle). */
static uint32_t wait_event(struct side *s)
{
    static char drain[65536];
    s->waits++;
    ssize_t n;
    do
        n = read(s->bell, drain, sizeof drain);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        die("doorbell read");
    uint32_t got = 0;
    for (int i = 0; i < PENDING_WORDS; i++) {
        if (s->mask[i] == 0)
            continue;
        got |= __atomic_fetch_and(&s->own[PENDING_OFFSET / 4 + i], ~s->mask[i],
                                  __ATOMIC_SEQ_CST) &
               s->mask[i];
    }
    return got;
}

static void corrupt(const char *ring, uint32_t prod, uint32_t cons)
{
    fprintf(stderr, "console-ref: %s ring corrupt: prod %u cons %u\n", ring, prod, cons);
    exit(1);
}

/* Producer: copies up to len bytes into the ring, publishes; returns the bytes written. */
static size_t produce(size_t data, size_t size, size_t cons_off, size_t prod_off,
                      const uint8_t *src, size_t len)
{
    uint32_t cons = load_acq(u32(page, cons_off));
    uint32_t prod = *u32(page, prod_off);
    uint32_t queued = prod - cons;
    if (queued > size)
        corrupt("producer", prod, cons);
    size_t space = size - queued;
    size_t n = len < space ? len : space;
    if (n == 0)
        return 0;
    size_t start = prod & (size - 1);
    size_t first = size - start;
    if (n <= first) {
        memcpy(page + data + start, src, n);
    } else {
        memcpy(page + data + start, src, first);
        memcpy(page + data, src + first, n - first);
    }
    store_rel(u32(page, prod_off), prod + (uint32_t)n);
    return n;
}

/* Consumer: copies out everything available (at most `room`), publishes; returns the count. */
static size_t consume(size_t data, size_t size, size_t cons_off, size_t prod_off, uint8_t *dst,
                      size_t room)
{
    uint32_t prod = load_acq(u32(page, prod_off));
    uint32_t cons = *u32(page, cons_off);
    uint32_t avail = prod - cons;
    if (avail > size)
        corrupt("consumer", prod, cons);
    size_t n = avail < room ? avail : room;
    if (n == 0)
        return 0;
    size_t start = cons & (size - 1);
    size_t first = size - start;
    if (n <= first) {
        memcpy(dst, page + data + start, n);
    } else {
        memcpy(dst, page + data + start, first);
        memcpy(dst + first, page + data, n - first);
    }
    store_rel(u32(page, cons_off), cons + (uint32_t)n);
    return n;
}

struct cpu {
    long long user_us, sys_us;
};

static struct cpu cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    struct cpu c = {(long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
                    (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec};
    return c;
}

/* What each child reports to the parent through a pipe. */
struct report {
    long long cpu_us;   /* user+sys during the measured window */
    long waits, notifies;
};

static void open_side(struct side *s, int is_dom0, int bell_dom0, int bell_guest)
{
    memset(s, 0, sizeof *s);
    s->domid = is_dom0 ? 0 : GUEST_DOMID;
    s->port = is_dom0 ? DOM0_PORT : GUEST_PORT;
    s->handle = is_dom0 ? DOM0_HANDLE : GUEST_HANDLE;
    s->own = map_file(is_dom0 ? "d0.events" : "d1.events", EVENT_FILE_SIZE, 0);
    s->remote = map_file(is_dom0 ? "d1.events" : "d0.events", EVENT_FILE_SIZE, 0);
    s->bell = is_dom0 ? bell_dom0 : bell_guest;
    char path[4096];
    snprintf(path, sizeof path, "%s/h%d.fifo", dir, is_dom0 ? GUEST_HANDLE : DOM0_HANDLE);
    s->peer_bell = open(path, O_WRONLY | O_NONBLOCK);
    if (s->peer_bell < 0)
        die(path);
    s->mask[s->port >> 5] |= 1u << (s->port & 31);
}

/* Window bookkeeping for a child: CPU at the start and end of phase 1. */
struct window {
    struct side *s;
    int seen;
    struct cpu start, end;
    long waits, notifies; /* at the start, then the window's counts */
};

static void track(struct window *w, int ph)
{
    if (ph >= 1 && w->seen < 1) {
        w->start = cpu_now();
        w->waits = w->s->waits;
        w->notifies = w->s->notifies;
        w->seen = 1;
    }
    if (ph >= 2 && w->seen < 2) {
        w->end = cpu_now();
        w->waits = w->s->waits - w->waits;
        w->notifies = w->s->notifies - w->notifies;
        w->seen = 2;
    }
}

static void send_report(int fd, struct window *w)
{
    track(w, 2);
    struct report r = {
        (w->end.user_us - w->start.user_us) + (w->end.sys_us - w->start.sys_us), w->waits,
        w->notifies};
    if (write(fd, &r, sizeof r) != sizeof r)
        die("report");
}

static void run_producer(struct side *s, size_t data, size_t size, size_t cons_off,
                         size_t prod_off, size_t chunk, int out)
{
    struct window w = {.s = s};
    size_t at = 0; /* offset in the pattern of the next application write */
    for (;;) {
        int ph = phase();
        track(&w, ph);
        if (ph >= 2)
            break;
        size_t done = 0;
        while (done < chunk) {
            size_t want = chunk - done;
            size_t off = (at + done) % PATTERN_LEN;
            /* The pattern buffer is long enough for any chunk from any offset. */
            size_t n = produce(data, size, cons_off, prod_off, pattern + off, want);
            if (n > 0)
                notify(s);
            done += n;
            if (done < chunk) {
                wait_event(s);
                if (phase() >= 2)
                    break;
            }
        }
        at = (at + done) % PATTERN_LEN;
    }
    send_report(out, &w);
}

static void run_consumer(struct side *s, size_t data, size_t size, size_t cons_off,
                         size_t prod_off, int out)
{
    struct window w = {.s = s};
    static uint8_t buf[4096];
    uint64_t total = 0;
    size_t at = 0;
    for (;;) {
        int ph = phase();
        track(&w, ph);
        if (ph >= 2)
            break;
        int moved = 0;
        size_t n;
        while ((n = consume(data, size, cons_off, prod_off, buf, sizeof buf)) > 0) {
            moved = 1;
            if (memcmp(buf, pattern + at, n) != 0)
                __atomic_fetch_add(u32(page, CTL_BAD), 1, __ATOMIC_RELAXED);
            at = (at + n) % PATTERN_LEN;
            total += n;
            __atomic_store_n((uint64_t *)(page + CTL_BYTES), total, __ATOMIC_RELAXED);
        }
        if (moved)
            notify(s);
        wait_event(s);
    }
    send_report(out, &w);
}

static double quantile(const double *sorted, long n, double q)
{
    long i = (long)(q * n);
    if (i > n - 1)
        i = n - 1;
    return sorted[i];
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* dom0 side of the echo test; prints the result line itself. */
static void run_echo_dom0(struct side *s, long trips, long warmup, long gap_us, int out)
{
    double *us = malloc(sizeof(double) * (size_t)trips);
    if (!us)
        die("malloc");
    struct window w = {.s = s};
    const struct timespec gap = {0, gap_us * 1000};
    for (long i = -warmup; i < trips; i++) {
        if (i == 0) {
            __atomic_store_n(u32(page, CTL_PHASE), 1, __ATOMIC_RELEASE);
            track(&w, 1);
        }
        uint8_t key = (uint8_t)(i & 0xff), got = 0;
        long long t0 = now_ns();
        if (produce(IN_OFF, IN_SIZE, IN_CONS, IN_PROD, &key, 1) != 1) {
            fprintf(stderr, "console-ref: echo: in[] full\n");
            exit(1);
        }
        notify(s);
        for (;;) {
            if (consume(OUT_OFF, OUT_SIZE, OUT_CONS, OUT_PROD, &got, 1) == 1)
                break;
            wait_event(s);
        }
        long long t1 = now_ns();
        notify(s); /* space freed in out[] */
        if (got != key) {
            fprintf(stderr, "console-ref: echo: sent %u, got %u\n", key, got);
            exit(1);
        }
        if (i >= 0)
            us[i] = (double)(t1 - t0) / 1000.0;
        nanosleep(&gap, NULL);
    }
    __atomic_store_n(u32(page, CTL_PHASE), 2, __ATOMIC_RELEASE);
    track(&w, 2);
    double sum = 0;
    for (long i = 0; i < trips; i++)
        sum += us[i];
    qsort(us, (size_t)trips, sizeof(double), cmp_double);
    printf("trips=%ld p50=%.1f p99=%.1f p999=%.1f max=%.1f mean=%.1f dom0_waits=%ld\n", trips,
           quantile(us, trips, 0.5), quantile(us, trips, 0.99), quantile(us, trips, 0.999),
           us[trips - 1], sum / (double)trips, s->waits);
    fflush(stdout);
    send_report(out, &w);
}

static void run_echo_guest(struct side *s, int out)
{
    struct window w = {.s = s};
    uint8_t buf[IN_SIZE];
    for (;;) {
        int ph = phase();
        track(&w, ph);
        if (ph >= 2)
            break;
        size_t n = consume(IN_OFF, IN_SIZE, IN_CONS, IN_PROD, buf, sizeof buf);
        if (n > 0) {
            size_t put = 0;
            while (put < n) {
                size_t m = produce(OUT_OFF, OUT_SIZE, OUT_CONS, OUT_PROD, buf + put, n - put);
                put += m;
                if (put < n)
                    wait_event(s);
            }
            notify(s); /* one notify for the pass: in[] consumed, out[] produced */
        }
        wait_event(s);
    }
    send_report(out, &w);
}

static void make_fifo(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
    if (mkfifo(path, 0600) != 0)
        die(path);
}

static int open_fifo_rw(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    /* Read and write, as the simulator's handle opens it: never end-of-file. */
    int fd = open(path, O_RDWR);
    if (fd < 0)
        die(path);
    return fd;
}

static void init_event_file(const char *name, int domid, int port, int remote_domid,
                            int remote_port, int handle)
{
    uint32_t *ev = map_file(name, EVENT_FILE_SIZE, 1);
    ev[0] = 0x58455654; /* 'XEVT' */
    ev[1] = 1;
    ev[2] = (uint32_t)domid;
    ev[ROUTE_OFFSET / 4 + port] = ((uint32_t)(remote_domid + 1) << 16) | (uint32_t)remote_port;
    ev[ATTACH_OFFSET / 4 + port] = (uint32_t)handle;
    munmap(ev, EVENT_FILE_SIZE);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr,
                "usage: %s DIR out|in CHUNK WARMUP_MS MEASURE_MS\n"
                "       %s DIR echo TRIPS WARMUP_TRIPS GAP_US\n",
                argv[0], argv[0]);
        return 2;
    }
    dir = argv[1];
    const char *mode = argv[2];
    long a = strtol(argv[3], NULL, 10), b = strtol(argv[4], NULL, 10),
         c = strtol(argv[5], NULL, 10);
    int echo = strcmp(mode, "echo") == 0;
    int dir_out = strcmp(mode, "out") == 0;
    if (!echo && !dir_out && strcmp(mode, "in") != 0) {
        fprintf(stderr, "console-ref: unknown mode %s\n", mode);
        return 2;
    }
    if (a <= 0 || b < 0 || c < 0) {
        fprintf(stderr, "console-ref: bad numbers\n");
        return 2;
    }

    /* The pattern, long enough to take any chunk from any offset with one memcmp/memcpy. */
    size_t chunk = echo ? 1 : (size_t)a;
    size_t plen = PATTERN_LEN + (chunk > 4096 ? chunk : 4096);
    pattern = malloc(plen);
    if (!pattern)
        die("malloc");
    uint32_t x = 0x2545f491;
    for (size_t i = 0; i < PATTERN_LEN; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        pattern[i] = (uint8_t)x;
    }
    for (size_t i = PATTERN_LEN; i < plen; i++)
        pattern[i] = pattern[i % PATTERN_LEN];

    page = map_file("page", PAGE_SIZE, 1);
    init_event_file("d0.events", 0, DOM0_PORT, GUEST_DOMID, GUEST_PORT, DOM0_HANDLE);
    init_event_file("d1.events", GUEST_DOMID, GUEST_PORT, 0, DOM0_PORT, GUEST_HANDLE);
    make_fifo("h1.fifo");
    make_fifo("h2.fifo");
    int bell_dom0 = open_fifo_rw("h1.fifo");
    int bell_guest = open_fifo_rw("h2.fifo");

    int reports[2];
    if (pipe(reports) != 0)
        die("pipe");
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        int is_dom0 = k == 0;
        kids[k] = fork();
        if (kids[k] < 0)
            die("fork");
        if (kids[k] == 0) {
            alarm(echo ? 600 : 120); /* a watchdog: never outlive a stuck run */
            close(reports[0]);
            struct side s;
            open_side(&s, is_dom0, bell_dom0, bell_guest);
            if (echo) {
                if (is_dom0)
                    run_echo_dom0(&s, a, b, c, reports[1]);
                else
                    run_echo_guest(&s, reports[1]);
            } else {
                int produces = dir_out ? !is_dom0 : is_dom0;
                size_t data = dir_out ? OUT_OFF : IN_OFF;
                size_t size = dir_out ? OUT_SIZE : IN_SIZE;
                size_t cons_off = dir_out ? OUT_CONS : IN_CONS;
                size_t prod_off = dir_out ? OUT_PROD : IN_PROD;
                if (produces)
                    run_producer(&s, data, size, cons_off, prod_off, chunk, reports[1]);
                else
                    run_consumer(&s, data, size, cons_off, prod_off, reports[1]);
            }
            _exit(0);
        }
    }
    close(reports[1]);

    int status_ok = 1;
    if (echo) {
        /* dom0 ends the run itself (phase 2); wake the guest so it sees it. */
        int st;
        if (waitpid(kids[0], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            status_ok = 0;
        static const char one = 1;
        if (write(bell_guest, &one, 1) < 0)
            die("kick");
        if (waitpid(kids[1], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            status_ok = 0;
        struct report r[2];
        for (int k = 0; k < 2; k++)
            if (read(reports[0], &r[k], sizeof r[k]) != sizeof r[k])
                status_ok = 0;
        if (!status_ok) {
            fprintf(stderr, "console-ref: a child failed\n");
            return 1;
        }
        return 0;
    }

    const struct timespec warm = {b / 1000, (b % 1000) * 1000000L};
    nanosleep(&warm, NULL);
    uint64_t *bytes = (uint64_t *)(page + CTL_BYTES);
    __atomic_store_n(u32(page, CTL_PHASE), 1, __ATOMIC_RELEASE);
    uint64_t b0 = __atomic_load_n(bytes, __ATOMIC_RELAXED);
    long long t0 = now_ns();
    const struct timespec measure = {c / 1000, (c % 1000) * 1000000L};
    nanosleep(&measure, NULL);
    uint64_t b1 = __atomic_load_n(bytes, __ATOMIC_RELAXED);
    long long t1 = now_ns();
    __atomic_store_n(u32(page, CTL_PHASE), 2, __ATOMIC_RELEASE);
    /* Kick both doorbells so a waiter sees the stop. */
    static const char one = 1;
    if (write(bell_dom0, &one, 1) < 0 || write(bell_guest, &one, 1) < 0)
        die("kick");
    for (int k = 0; k < 2; k++) {
        int st;
        if (waitpid(kids[k], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            status_ok = 0;
    }
    struct report r[2];
    for (int k = 0; k < 2; k++)
        if (read(reports[0], &r[k], sizeof r[k]) != sizeof r[k])
            status_ok = 0;
    uint32_t bad = *u32(page, CTL_BAD);
    if (!status_ok || bad != 0 || b1 == b0) {
        fprintf(stderr, "console-ref: failed (children ok %d, corrupt copies %u, bytes %llu)\n",
                status_ok, bad, (unsigned long long)(b1 - b0));
        return 1;
    }
    double seconds = (double)(t1 - t0) / 1e9;
    /* Reports arrive in exit order; CPU and waits are summed, so the order does not matter. */
    long long cpu_us = r[0].cpu_us + r[1].cpu_us;
    printf("bytes=%llu seconds=%.3f mibps=%.1f cpu_pct=%.0f waits=%ld notifies=%ld corrupt=0\n",
           (unsigned long long)(b1 - b0), seconds, (double)(b1 - b0) / seconds / 1048576.0,
           100.0 * (double)cpu_us / 1e6 / seconds, r[0].waits + r[1].waits,
           r[0].notifies + r[1].notifies);
    return 0;
}
