/* noloop.so: an LD_PRELOAD shim for Janus under scripts/bench. It wraps getifaddrs() and clears
 * IFF_LOOPBACK on the `lo` interface, because Janus 1.1.2 skips loopback-flagged interfaces when it
 * gathers ICE candidates, so in a loopback-only namespace it would find no address at all.
 * Runs in whichever Janus thread calls getifaddrs(); it must not change anything else (addresses,
 * other interfaces, other flags) nor allocate. Build: cc -shared -fPIC -o noloop.so noloop.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stddef.h>
#include <string.h>

typedef int (*getifaddrs_fn)(struct ifaddrs **);

int getifaddrs(struct ifaddrs **ifap)
{
    /* Looked up on every call: cheap next to getifaddrs() itself, and no static state to race on.
     */
    getifaddrs_fn real = (getifaddrs_fn)dlsym(RTLD_NEXT, "getifaddrs");
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    int rc = real(ifap);
    if (rc != 0 || !ifap)
        return rc;
    for (struct ifaddrs *ifa = *ifap; ifa; ifa = ifa->ifa_next) {
        if (ifa->ifa_name && strcmp(ifa->ifa_name, "lo") == 0)
            ifa->ifa_flags &= ~(unsigned int)IFF_LOOPBACK;
    }
    return rc;
}
