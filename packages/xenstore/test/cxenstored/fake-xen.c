/*
 * fake-xen.c: an LD_PRELOAD shim that lets Debian's C xenstored 4.17 run on a machine without a
 * hypervisor, so the client suite can run against the real daemon.
 *
 * Why it is needed: `xenstored -D` (no domain init) skips the database setup in 4.17 and crashes
 * on the first request (NULL tdb context), and without -D it needs /dev/xen/{privcmd,evtchn,gntdev}
 * and dom0's ring from /proc/xen/xsd_{port,kva}. This shim answers those calls:
 *   - xc_interface_open/close, xenevtchn_*, xengnttab_* return dummy handles;
 *   - xc_domain_getinfo says every domid below DOMID_FIRST_RESERVED exists and is running;
 *   - the event channel fd is a pipe that never becomes readable (no VIRQ_DOM_EXC, no guest
 *     notifications); grant maps return fresh zeroed pages (so INTRODUCE works: the "guest" never
 *     writes to its ring);
 *   - open("/proc/xen/xsd_port") reads "1", open("/proc/xen/xsd_kva") is a zeroed 4 KiB memfd
 *     (dom0's ring, which nobody writes to).
 * Socket connections then behave exactly as on a real host (they are privileged and bypass rings).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xenctrl.h>
#include <xenevtchn.h>
#include <xengnttab.h>

static int dummy_handle;
static int evtchn_pipe[2] = {-1, -1};
static int next_port = 10;

xc_interface *xc_interface_open(xentoollog_logger *l, xentoollog_logger *d, unsigned f)
{
    (void)l; (void)d; (void)f;
    return (xc_interface *)&dummy_handle;
}

int xc_interface_close(xc_interface *xch) { (void)xch; return 0; }

int xc_domain_getinfo(xc_interface *xch, uint32_t first_domid, unsigned int max_doms,
                      xc_dominfo_t *info)
{
    (void)xch;
    if (max_doms == 0 || first_domid >= DOMID_FIRST_RESERVED) return 0;
    memset(info, 0, sizeof(*info));
    info->domid = first_domid;
    info->running = 1;
    return 1;
}

xenevtchn_handle *xenevtchn_open(xentoollog_logger *logger, unsigned int flags)
{
    (void)logger; (void)flags;
    if (evtchn_pipe[0] < 0 && pipe(evtchn_pipe) != 0) return NULL;
    return (xenevtchn_handle *)&dummy_handle;
}

xenevtchn_handle *xenevtchn_fdopen(xentoollog_logger *logger, int fd, unsigned open_flags)
{
    (void)fd;
    return xenevtchn_open(logger, open_flags);
}

int xenevtchn_fd(xenevtchn_handle *xce) { (void)xce; return evtchn_pipe[0]; }
int xenevtchn_notify(xenevtchn_handle *xce, evtchn_port_t port) { (void)xce; (void)port; return 0; }
xenevtchn_port_or_error_t xenevtchn_bind_interdomain(xenevtchn_handle *xce, uint32_t domid,
                                                     evtchn_port_t remote_port)
{
    (void)xce; (void)domid; (void)remote_port;
    return next_port++;
}
xenevtchn_port_or_error_t xenevtchn_bind_virq(xenevtchn_handle *xce, unsigned int virq)
{
    (void)xce; (void)virq;
    return next_port++;
}
int xenevtchn_unbind(xenevtchn_handle *xce, evtchn_port_t port) { (void)xce; (void)port; return 0; }
xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *xce) { (void)xce; return -1; }
int xenevtchn_unmask(xenevtchn_handle *xce, evtchn_port_t port) { (void)xce; (void)port; return 0; }

xengnttab_handle *xengnttab_open(xentoollog_logger *logger, unsigned open_flags)
{
    (void)logger; (void)open_flags;
    return (xengnttab_handle *)&dummy_handle;
}
int xengnttab_close(xengnttab_handle *xgt) { (void)xgt; return 0; }
int xengnttab_set_max_grants(xengnttab_handle *xgt, uint32_t nr) { (void)xgt; (void)nr; return 0; }
void *xengnttab_map_grant_ref(xengnttab_handle *xgt, uint32_t domid, uint32_t ref, int prot)
{
    (void)xgt; (void)domid; (void)ref; (void)prot;
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}
int xengnttab_unmap(xengnttab_handle *xgt, void *start_address, uint32_t count)
{
    (void)xgt;
    return munmap(start_address, 4096 * (size_t)count);
}

static int memfd_with(const char *data, size_t len, size_t size)
{
    int fd = memfd_create("fake-xen", 0);
    if (fd < 0) return -1;
    if (ftruncate(fd, (off_t)size) != 0 || (len && pwrite(fd, data, len, 0) != (ssize_t)len)) {
        close(fd);
        return -1;
    }
    return fd;
}

int open(const char *path, int flags, ...)
{
    static int (*real_open)(const char *, int, ...);
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    if (strcmp(path, "/proc/xen/xsd_port") == 0) return memfd_with("1", 1, 1);
    if (strcmp(path, "/proc/xen/xsd_kva") == 0) return memfd_with(NULL, 0, 4096);
    if (!real_open) real_open = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
    return real_open(path, flags, mode);
}
