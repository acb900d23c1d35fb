/* ICE-lite transport (see icelite.h): owns a media worker's shared UDP sockets, the tables that map
 * source addresses and ufrags to connections, the receive buffers and the send batch. Runs on the
 * worker's thread; creation and freeing happen on the main thread while the worker does not use
 * it. The per-packet path (receive, demultiplex, queue, flush) allocates, locks and logs nothing.
 */
#define G_LOG_DOMAIN "encore-icelite"
#include "config.h"

#include "media/icelite.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gio/gio.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "media/stun.h"

#define RECV_BATCH 32
/* recvmmsg rounds per socket per dispatch, so that timers and other sources keep their turn. */
#define RECV_ROUNDS 8
/* Datagrams per sendmmsg: enough to spread the system call over many (the kernel's work per
 * datagram stays), few enough that the first listener of a fan-out does not wait long for the
 * others to be encrypted. The arena holds a full batch of the largest datagrams. */
#define SEND_BATCH 64
#define SEND_ARENA (SEND_BATCH * ENCORE_ICELITE_MTU)
/* Addresses a connection remembers (each one passed a check); the oldest unselected one goes. */
#define MAX_PATHS 4
#define UFRAG_LEN 8
#define PWD_LEN 24
/* Longest local ufrag we may be asked for: ours are UFRAG_LEN, anything longer is unknown. */
#define UFRAG_MAX 32
#define CONSENT_SCAN_US G_USEC_PER_SEC
#define SOCKET_BUF (4 * 1024 * 1024)

/* A remote transport address as seen on one of our sockets: the key of the address table. Packed
 * by hand (memset first) so that hashing and comparing the bytes is exact. */
typedef struct {
    uint8_t sock;   /* index of our socket */
    uint8_t family; /* 4 or 6 */
    uint16_t port;  /* network order */
    uint8_t addr[16];
} path_key;

typedef union {
    struct sockaddr sa;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
} sockaddr_any;

/* One remote address that passed a check for a connection. */
typedef struct {
    path_key key; /* in lite->by_addr while `used` */
    sockaddr_any to;
    socklen_t to_len;
    bool used;
    int64_t seen_us; /* last valid check from it */
} path;

struct encore_icelite_conn {
    encore_icelite *lite;
    encore_icelite_callbacks cb;
    void *user_data;
    char ufrag[UFRAG_LEN + 1];
    char pwd[PWD_LEN + 1];
    /* Credentials before the last restart, valid until a check uses the new ones. */
    bool has_old;
    char old_ufrag[UFRAG_LEN + 1];
    char old_pwd[PWD_LEN + 1];

    path paths[MAX_PATHS];
    int selected;                     /* index in paths, -1 before the first check */
    bool ready_fired;                 /* on_ready called */
    bool rx_selected;                 /* inside on_data: the datagram came from the selected path */
    bool consent_lost;                /* on_consent_lost called */
    int64_t consent_us;               /* last valid check from the selected path */
    int64_t deadline_us;              /* armed timer, 0 = none */
    encore_icelite_conn *prev, *next; /* lite->conns */
    encore_icelite_conn *tprev, *tnext; /* lite->timed, while deadline_us != 0 */
};

/* One bound socket, with its part of the send batch. */
typedef struct {
    int fd;
    int index;
    uint16_t port;
    gpointer tag; /* g_source_add_unix_fd */
    unsigned n;   /* datagrams queued */
    size_t arena_used;
    struct mmsghdr msgs[SEND_BATCH];
    struct iovec iov[SEND_BATCH];
    sockaddr_any to[SEND_BATCH];
    uint8_t arena[SEND_ARENA];
} lite_socket;

typedef struct {
    GSource base;
    encore_icelite *lite;
} lite_source;

struct encore_icelite {
    GMainContext *ctx;
    GSource *source;
    encore_worker_stats *stats;
    int64_t consent_us;
    int n_socks;
    lite_socket *socks[ENCORE_ICELITE_MAX_SOCKETS];
    char candidates[ENCORE_ICELITE_MAX_SOCKETS][128];

    GHashTable *by_addr;  /* path_key * (inside a conn's path) -> conn */
    GHashTable *by_ufrag; /* char * (a conn's ufrag or old_ufrag) -> conn */
    encore_icelite_conn *conns;
    encore_icelite_conn *timed;
    int64_t ready_at;   /* the source's ready time, -1 = none */
    int64_t consent_at; /* next consent scan */

    /* Receive buffers for one recvmmsg. */
    struct mmsghdr rmsgs[RECV_BATCH];
    struct iovec riov[RECV_BATCH];
    sockaddr_any rfrom[RECV_BATCH];
    uint8_t rbuf[RECV_BATCH][ENCORE_ICELITE_MTU];
};

/* ---- tables ------------------------------------------------------------------------------ */

static guint key_hash(gconstpointer p)
{
    const uint8_t *b = p;
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < sizeof(path_key); i++) {
        h ^= b[i];
        h *= 16777619u;
    }
    return h;
}

static gboolean key_equal(gconstpointer a, gconstpointer b)
{
    return memcmp(a, b, sizeof(path_key)) == 0;
}

static bool key_of(int sock, const sockaddr_any *from, path_key *k, socklen_t *len)
{
    memset(k, 0, sizeof *k);
    k->sock = (uint8_t)sock;
    if (from->sa.sa_family == AF_INET) {
        k->family = 4;
        k->port = from->sin.sin_port;
        memcpy(k->addr, &from->sin.sin_addr, 4);
        *len = sizeof(struct sockaddr_in);
        return true;
    }
    if (from->sa.sa_family == AF_INET6) {
        k->family = 6;
        k->port = from->sin6.sin6_port;
        memcpy(k->addr, &from->sin6.sin6_addr, 16);
        *len = sizeof(struct sockaddr_in6);
        return true;
    }
    return false;
}

static void random_ice_chars(char *out, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t r[64];
    g_assert(n <= sizeof r);
    if (RAND_bytes(r, (int)n) != 1) {
        /* OpenSSL's generator does not fail once seeded; fall back rather than abort. */
        for (size_t i = 0; i < n; i++)
            r[i] = (uint8_t)g_random_int();
    }
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[r[i] & 63];
    out[n] = '\0';
}

/* Fresh credentials whose ufrag no other connection of this transport uses. */
static void new_credentials(encore_icelite *lite, char ufrag[UFRAG_LEN + 1], char pwd[PWD_LEN + 1])
{
    do {
        random_ice_chars(ufrag, UFRAG_LEN);
    } while (g_hash_table_contains(lite->by_ufrag, ufrag));
    random_ice_chars(pwd, PWD_LEN);
}

static void path_forget(encore_icelite_conn *c, int i)
{
    path *p = &c->paths[i];
    if (!p->used)
        return;
    if (g_hash_table_lookup(c->lite->by_addr, &p->key) == c)
        g_hash_table_remove(c->lite->by_addr, &p->key);
    p->used = false;
    if (c->selected == i)
        c->selected = -1;
}

/* The path of `c` for this key, added (evicting the oldest unselected one when all are used, and
 * taking the address from any other connection that had it). */
static int path_get(encore_icelite_conn *c, const path_key *k, const sockaddr_any *from,
                    socklen_t len, encore_icelite_conn *owner)
{
    for (int i = 0; i < MAX_PATHS; i++) {
        if (c->paths[i].used && key_equal(&c->paths[i].key, k))
            return i;
    }
    if (owner && owner != c) {
        /* The address moved to another connection (a re-subscribe from the same socket, a NAT
         * reusing a port): the check that proves it is authenticated. */
        for (int i = 0; i < MAX_PATHS; i++) {
            if (owner->paths[i].used && key_equal(&owner->paths[i].key, k))
                path_forget(owner, i);
        }
    }
    int slot = -1;
    for (int i = 0; i < MAX_PATHS && slot < 0; i++) {
        if (!c->paths[i].used)
            slot = i;
    }
    if (slot < 0) {
        for (int i = 0; i < MAX_PATHS; i++) {
            if (i != c->selected && (slot < 0 || c->paths[i].seen_us < c->paths[slot].seen_us))
                slot = i;
        }
        path_forget(c, slot);
    }
    path *p = &c->paths[slot];
    p->key = *k;
    memset(&p->to, 0, sizeof p->to);
    memcpy(&p->to, from, len);
    p->to_len = len;
    p->used = true;
    g_hash_table_replace(c->lite->by_addr, &p->key, c);
    return slot;
}

/* ---- timers ------------------------------------------------------------------------------ */

static void schedule(encore_icelite *lite, int64_t at)
{
    if (lite->ready_at < 0 || at < lite->ready_at) {
        lite->ready_at = at;
        g_source_set_ready_time(lite->source, at);
    }
}

static void timed_unlink(encore_icelite_conn *c)
{
    if (c->tprev)
        c->tprev->tnext = c->tnext;
    else if (c->lite->timed == c)
        c->lite->timed = c->tnext;
    if (c->tnext)
        c->tnext->tprev = c->tprev;
    c->tprev = c->tnext = NULL;
}

static void run_timers(encore_icelite *lite, int64_t now)
{
    /* Take the list: a callback re-arming its own timer links it into the new one. */
    encore_icelite_conn *pending = lite->timed;
    lite->timed = NULL;
    while (pending) {
        encore_icelite_conn *c = pending;
        pending = c->tnext;
        if (pending)
            pending->tprev = NULL;
        c->tprev = c->tnext = NULL;
        if (c->deadline_us > now) {
            c->tnext = lite->timed;
            if (lite->timed)
                lite->timed->tprev = c;
            lite->timed = c;
            continue;
        }
        c->deadline_us = 0;
        if (c->cb.on_timer)
            c->cb.on_timer(c->user_data);
    }
    if (now >= lite->consent_at) {
        lite->consent_at = now + CONSENT_SCAN_US;
        for (encore_icelite_conn *c = lite->conns; c; c = c->next) {
            /* A connection whose selected address went to another one (path_get) has none, and
             * loses consent the same way. */
            if (!c->ready_fired || c->consent_lost || now - c->consent_us <= lite->consent_us)
                continue;
            c->consent_lost = true;
            if (c->cb.on_consent_lost)
                c->cb.on_consent_lost(c->user_data);
        }
    }
}

/* The source's next ready time: the earliest timer, and the consent scan while connections
 * exist. */
static void reschedule(encore_icelite *lite)
{
    int64_t next = -1;
    for (encore_icelite_conn *c = lite->timed; c; c = c->tnext) {
        if (next < 0 || c->deadline_us < next)
            next = c->deadline_us;
    }
    if (lite->conns && (next < 0 || lite->consent_at < next))
        next = lite->consent_at;
    lite->ready_at = next;
    g_source_set_ready_time(lite->source, next);
}

/* ---- sending ----------------------------------------------------------------------------- */

static void flush_socket(encore_icelite *lite, lite_socket *s)
{
    unsigned done = 0;
    uint64_t errors = 0, calls = 0;
    while (done < s->n) {
        int r = sendmmsg(s->fd, s->msgs + done, s->n - done, MSG_DONTWAIT);
        calls++;
        if (r > 0) {
            done += (unsigned)r;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
            errors += s->n - done; /* the socket buffer is full: media is late, drop it */
            break;
        } else {
            errors++; /* this datagram's destination fails (e.g. unreachable): skip it */
            done++;
        }
    }
    s->n = 0;
    s->arena_used = 0;
    ENCORE_STAT_ADD(lite->stats, send_calls, calls);
    if (errors)
        ENCORE_STAT_ADD(lite->stats, send_errors, errors);
}

void encore_icelite_flush(encore_icelite *lite)
{
    for (int i = 0; i < lite->n_socks; i++) {
        if (lite->socks[i]->n)
            flush_socket(lite, lite->socks[i]);
    }
}

int encore_icelite_conn_send(encore_icelite_conn *c, const uint8_t *data, size_t len)
{
    if (c->selected < 0)
        return -ENOTCONN;
    if (len > ENCORE_ICELITE_MTU)
        return -EMSGSIZE;
    const path *p = &c->paths[c->selected];
    lite_socket *s = c->lite->socks[p->key.sock];
    ssize_t n = sendto(s->fd, data, len, MSG_DONTWAIT, &p->to.sa, p->to_len);
    ENCORE_STAT_ADD(c->lite->stats, send_calls, 1);
    return n == (ssize_t)len ? 0 : (n < 0 ? -errno : -EIO);
}

int encore_icelite_conn_queue(encore_icelite_conn *c, const uint8_t *data, size_t len)
{
    if (c->selected < 0)
        return -ENOTCONN;
    if (len > ENCORE_ICELITE_MTU)
        return -EMSGSIZE;
    const path *p = &c->paths[c->selected];
    lite_socket *s = c->lite->socks[p->key.sock];
    if (s->n == SEND_BATCH || SEND_ARENA - s->arena_used < len)
        flush_socket(c->lite, s);
    unsigned i = s->n++;
    uint8_t *dst = s->arena + s->arena_used;
    memcpy(dst, data, len);
    s->arena_used += (len + 15) & ~(size_t)15;
    if (s->arena_used > SEND_ARENA)
        s->arena_used = SEND_ARENA;
    s->to[i] = p->to;
    s->iov[i].iov_base = dst;
    s->iov[i].iov_len = len;
    struct msghdr *h = &s->msgs[i].msg_hdr;
    h->msg_name = &s->to[i];
    h->msg_namelen = p->to_len;
    h->msg_iov = &s->iov[i];
    h->msg_iovlen = 1;
    h->msg_control = NULL;
    h->msg_controllen = 0;
    h->msg_flags = 0;
    return 0;
}

/* ---- receiving --------------------------------------------------------------------------- */

static void send_stun(encore_icelite *lite, lite_socket *s, const sockaddr_any *to, socklen_t len,
                      const encore_stun_msg *req, int code, const char *key)
{
    uint8_t out[512];
    size_t n = 0;
    if (encore_stun_build_response(req, &to->sa, code, (const uint8_t *)key, key ? strlen(key) : 0,
                                   out, sizeof out, &n) != 0)
        return;
    (void)sendto(s->fd, out, n, MSG_DONTWAIT, &to->sa, len);
    ENCORE_STAT_ADD(lite->stats, send_calls, 1);
}

/* A Binding request (or other STUN) on socket s from `from`; `owner` is the connection the
 * address already belongs to, if any. */
static void handle_stun(encore_icelite *lite, lite_socket *s, const sockaddr_any *from,
                        socklen_t from_len, const path_key *k, const uint8_t *d, size_t len,
                        encore_icelite_conn *owner)
{
    encore_stun_msg m;
    if (encore_stun_parse(d, len, &m) != 0 || m.method != ENCORE_STUN_BINDING) {
        ENCORE_STAT_ADD(lite->stats, drop_stun, 1);
        return;
    }
    if (m.cls == ENCORE_STUN_INDICATION)
        return; /* a keepalive (RFC 8445 11): nothing to do */
    if (m.cls != ENCORE_STUN_REQUEST) {
        ENCORE_STAT_ADD(lite->stats, drop_stun, 1); /* we send no requests: a stray response */
        return;
    }
    if (!m.username || (!m.integrity_at && !m.integrity_sha256_at)) {
        send_stun(lite, s, from, from_len, &m, ENCORE_STUN_CODE_BAD_REQUEST, NULL);
        ENCORE_STAT_ADD(lite->stats, drop_stun, 1);
        return;
    }
    /* USERNAME is "local-ufrag:remote-ufrag"; ours is the first part. */
    const uint8_t *colon = memchr(m.username, ':', m.username_len);
    size_t ulen = colon ? (size_t)(colon - m.username) : m.username_len;
    char ufrag[UFRAG_MAX + 1];
    encore_icelite_conn *c = NULL;
    if (colon && ulen > 0 && ulen <= UFRAG_MAX) {
        memcpy(ufrag, m.username, ulen);
        ufrag[ulen] = '\0';
        c = g_hash_table_lookup(lite->by_ufrag, ufrag);
    }
    if (!c) {
        send_stun(lite, s, from, from_len, &m, ENCORE_STUN_CODE_UNAUTHENTICATED, NULL);
        ENCORE_STAT_ADD(lite->stats, drop_stun, 1);
        return;
    }
    bool fresh = strcmp(c->ufrag, ufrag) == 0;
    const char *pwd = fresh ? c->pwd : c->old_pwd;
    if (encore_stun_check_integrity(d, len, &m, (const uint8_t *)pwd, strlen(pwd)) != 0) {
        send_stun(lite, s, from, from_len, &m, ENCORE_STUN_CODE_UNAUTHENTICATED, NULL);
        ENCORE_STAT_ADD(lite->stats, drop_stun, 1);
        return;
    }
    if (m.n_unknown > 0) {
        send_stun(lite, s, from, from_len, &m, ENCORE_STUN_CODE_UNKNOWN_ATTRIBUTE, pwd);
        ENCORE_STAT_ADD(lite->stats, drop_stun, 1);
        return;
    }
    if (m.has_ice_controlled) {
        /* A lite agent is always controlled (RFC 8445 6.1.1): the other side must control. */
        send_stun(lite, s, from, from_len, &m, ENCORE_STUN_CODE_ROLE_CONFLICT, pwd);
        return;
    }
    if (fresh && c->has_old) {
        if (g_hash_table_lookup(lite->by_ufrag, c->old_ufrag) == c)
            g_hash_table_remove(lite->by_ufrag, c->old_ufrag);
        c->has_old = false;
    }
    int64_t now = g_get_monotonic_time();
    int i = path_get(c, k, from, from_len, owner);
    c->paths[i].seen_us = now;
    /* Lite and controlled: the first valid check selects a pair; a nomination moves it. */
    if (c->selected < 0 || (m.use_candidate && c->selected != i))
        c->selected = i;
    if (c->selected == i)
        c->consent_us = now;
    send_stun(lite, s, from, from_len, &m, 0, pwd);
    ENCORE_STAT_ADD(lite->stats, stun_in, 1);
    if (!c->ready_fired) {
        c->ready_fired = true;
        if (c->cb.on_ready)
            c->cb.on_ready(c->user_data);
    }
}

static void handle_datagram(encore_icelite *lite, lite_socket *s, const sockaddr_any *from,
                            uint8_t *d, size_t len, bool truncated)
{
    path_key k;
    socklen_t from_len;
    if (len == 0 || truncated || !key_of(s->index, from, &k, &from_len)) {
        ENCORE_STAT_ADD(lite->stats, drop_unknown, 1);
        return;
    }
    encore_icelite_conn *c = g_hash_table_lookup(lite->by_addr, &k);
    if (d[0] < 4) {
        handle_stun(lite, s, from, from_len, &k, d, len, c);
        return;
    }
    if (!c) {
        ENCORE_STAT_ADD(lite->stats, drop_unknown, 1); /* no check from this address yet */
        return;
    }
    c->rx_selected = c->selected >= 0 && key_equal(&c->paths[c->selected].key, &k);
    if (c->cb.on_data)
        c->cb.on_data(d, len, c->user_data);
    c->rx_selected = false;
}

static void receive(encore_icelite *lite, lite_socket *s)
{
    for (int round = 0; round < RECV_ROUNDS; round++) {
        for (int i = 0; i < RECV_BATCH; i++) {
            lite->riov[i].iov_base = lite->rbuf[i];
            lite->riov[i].iov_len = sizeof lite->rbuf[i];
            struct msghdr *h = &lite->rmsgs[i].msg_hdr;
            memset(h, 0, sizeof *h);
            h->msg_name = &lite->rfrom[i];
            h->msg_namelen = sizeof lite->rfrom[i];
            h->msg_iov = &lite->riov[i];
            h->msg_iovlen = 1;
        }
        int n = recvmmsg(s->fd, lite->rmsgs, RECV_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++) {
            const struct msghdr *h = &lite->rmsgs[i].msg_hdr;
            handle_datagram(lite, s, &lite->rfrom[i], lite->rbuf[i], lite->rmsgs[i].msg_len,
                            (h->msg_flags & MSG_TRUNC) != 0);
        }
        if (n < RECV_BATCH)
            break;
    }
}

/* ---- the source -------------------------------------------------------------------------- */

static gboolean source_prepare(GSource *src, gint *timeout)
{
    /* Whatever a dispatch queued and did not flush goes out before the loop sleeps. */
    encore_icelite_flush(((lite_source *)src)->lite);
    *timeout = -1;
    return FALSE;
}

static gboolean source_dispatch(GSource *src, GSourceFunc callback, gpointer user_data)
{
    encore_icelite *lite = ((lite_source *)src)->lite;
    for (int i = 0; i < lite->n_socks; i++) {
        lite_socket *s = lite->socks[i];
        if (g_source_query_unix_fd(src, s->tag) & (G_IO_IN | G_IO_ERR))
            receive(lite, s);
    }
    int64_t now = g_get_monotonic_time();
    if (lite->ready_at >= 0 && now >= lite->ready_at) {
        run_timers(lite, now);
        reschedule(lite);
    }
    encore_icelite_flush(lite);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs source_funcs = {
    .prepare = source_prepare,
    .dispatch = source_dispatch,
};

/* ---- lifetime ---------------------------------------------------------------------------- */

static void set_buffer(int fd, int force_opt, int opt)
{
    int v = SOCKET_BUF;
    if (setsockopt(fd, SOL_SOCKET, force_opt, &v, sizeof v) != 0)
        (void)setsockopt(fd, SOL_SOCKET, opt, &v, sizeof v);
}

static lite_socket *open_socket(const char *ip, int index, uint16_t port_min, uint16_t port_max,
                                GError **error)
{
    sockaddr_any a;
    socklen_t alen;
    memset(&a, 0, sizeof a);
    if (inet_pton(AF_INET, ip, &a.sin.sin_addr) == 1) {
        a.sin.sin_family = AF_INET;
        alen = sizeof a.sin;
    } else if (inet_pton(AF_INET6, ip, &a.sin6.sin6_addr) == 1) {
        a.sin6.sin6_family = AF_INET6;
        alen = sizeof a.sin6;
    } else {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "media address '%s' is not an IP address", ip);
        return NULL;
    }
    int fd = socket(a.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "socket: %s",
                    g_strerror(errno));
        return NULL;
    }
    if (a.sa.sa_family == AF_INET6) {
        int on = 1;
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    }
    set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF);
    set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF);
    bool bound = false;
    int err = 0;
    unsigned lo = port_min, hi = port_max;
    if (!lo || !hi || lo > hi)
        lo = hi = 0;
    for (unsigned p = lo; p <= hi && !bound; p++) {
        if (a.sa.sa_family == AF_INET)
            a.sin.sin_port = htons((uint16_t)p);
        else
            a.sin6.sin6_port = htons((uint16_t)p);
        if (bind(fd, &a.sa, alen) == 0)
            bound = true;
        else
            err = errno;
        if (err != EADDRINUSE && err != EACCES && !bound)
            break;
    }
    if (!bound) {
        g_set_error(error, G_IO_ERROR,
                    err == EADDRINUSE ? G_IO_ERROR_ADDRESS_IN_USE : g_io_error_from_errno(err),
                    "cannot bind a UDP port for media on %s in %u-%u: %s", ip, lo, hi,
                    g_strerror(err));
        close(fd);
        return NULL;
    }
    sockaddr_any got;
    socklen_t glen = sizeof got;
    if (getsockname(fd, &got.sa, &glen) != 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "getsockname: %s",
                    g_strerror(errno));
        close(fd);
        return NULL;
    }
    lite_socket *s = g_new0(lite_socket, 1);
    s->fd = fd;
    s->index = index;
    s->port = ntohs(got.sa.sa_family == AF_INET ? got.sin.sin_port : got.sin6.sin6_port);
    return s;
}

encore_icelite *encore_icelite_new(GMainContext *ctx, const encore_icelite_config *cfg,
                                   encore_worker_stats *stats, GError **error)
{
    int n = 0;
    while (cfg->ips && cfg->ips[n])
        n++;
    if (n == 0 || n > ENCORE_ICELITE_MAX_SOCKETS) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "ICE-lite needs 1 to %d media addresses, not %d", ENCORE_ICELITE_MAX_SOCKETS,
                    n);
        return NULL;
    }
    encore_icelite *lite = g_new0(encore_icelite, 1);
    lite->ctx = g_main_context_ref(ctx);
    lite->stats = stats;
    lite->consent_us =
        (int64_t)(cfg->consent_ms > 0 ? cfg->consent_ms : ENCORE_ICELITE_CONSENT_MS) * 1000;
    lite->by_addr = g_hash_table_new(key_hash, key_equal);
    lite->by_ufrag = g_hash_table_new(g_str_hash, g_str_equal);
    lite->ready_at = -1;
    lite->source = g_source_new(&source_funcs, sizeof(lite_source));
    ((lite_source *)lite->source)->lite = lite;
    g_source_set_name(lite->source, "encore-icelite");
    for (int i = 0; i < n; i++) {
        lite_socket *s = open_socket(cfg->ips[i], i, cfg->port_min, cfg->port_max, error);
        if (!s)
            goto out_free;
        lite->socks[lite->n_socks++] = s;
        s->tag = g_source_add_unix_fd(lite->source, s->fd, G_IO_IN | G_IO_ERR);
        /* Host candidates: type preference 126, local preference by address order, component 1
         * (RFC 8445 5.1.2.1). */
        uint32_t prio = (126u << 24) | ((uint32_t)(65535 - i) << 8) | 255u;
        snprintf(lite->candidates[i], sizeof lite->candidates[i],
                 "candidate:%d 1 udp %u %s %u typ host", i + 1, prio, cfg->ips[i], s->port);
    }
    g_source_attach(lite->source, ctx);
    return lite;

out_free:
    encore_icelite_free(lite);
    return NULL;
}

void encore_icelite_stop(encore_icelite *lite)
{
    if (lite && lite->source)
        g_source_destroy(lite->source);
}

void encore_icelite_free(encore_icelite *lite)
{
    if (!lite)
        return;
    g_warn_if_fail(lite->conns == NULL);
    if (lite->source) {
        g_source_destroy(lite->source);
        g_source_unref(lite->source);
    }
    for (int i = 0; i < lite->n_socks; i++) {
        if (lite->socks[i]->n)
            flush_socket(lite, lite->socks[i]);
        close(lite->socks[i]->fd);
        g_free(lite->socks[i]);
    }
    g_hash_table_destroy(lite->by_addr);
    g_hash_table_destroy(lite->by_ufrag);
    g_main_context_unref(lite->ctx);
    g_free(lite);
}

int encore_icelite_n_candidates(const encore_icelite *lite)
{
    return lite->n_socks;
}

const char *encore_icelite_candidate(const encore_icelite *lite, int i)
{
    return i >= 0 && i < lite->n_socks ? lite->candidates[i] : NULL;
}

uint16_t encore_icelite_port(const encore_icelite *lite, int i)
{
    return i >= 0 && i < lite->n_socks ? lite->socks[i]->port : 0;
}

encore_icelite_conn *encore_icelite_conn_new(encore_icelite *lite,
                                             const encore_icelite_callbacks *cb, void *user_data)
{
    encore_icelite_conn *c = g_new0(encore_icelite_conn, 1);
    c->lite = lite;
    c->cb = *cb;
    c->user_data = user_data;
    c->selected = -1;
    new_credentials(lite, c->ufrag, c->pwd);
    g_hash_table_insert(lite->by_ufrag, c->ufrag, c);
    c->next = lite->conns;
    if (lite->conns)
        lite->conns->prev = c;
    lite->conns = c;
    int64_t now = g_get_monotonic_time();
    if (lite->consent_at < now)
        lite->consent_at = now + CONSENT_SCAN_US;
    schedule(lite, lite->consent_at);
    return c;
}

void encore_icelite_conn_free(encore_icelite_conn *c)
{
    if (!c)
        return;
    encore_icelite *lite = c->lite;
    for (int i = 0; i < MAX_PATHS; i++)
        path_forget(c, i);
    if (g_hash_table_lookup(lite->by_ufrag, c->ufrag) == c)
        g_hash_table_remove(lite->by_ufrag, c->ufrag);
    if (c->has_old && g_hash_table_lookup(lite->by_ufrag, c->old_ufrag) == c)
        g_hash_table_remove(lite->by_ufrag, c->old_ufrag);
    if (c->deadline_us)
        timed_unlink(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        lite->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    g_free(c);
}

const char *encore_icelite_conn_ufrag(const encore_icelite_conn *c)
{
    return c->ufrag;
}

const char *encore_icelite_conn_pwd(const encore_icelite_conn *c)
{
    return c->pwd;
}

void encore_icelite_conn_restart(encore_icelite_conn *c)
{
    encore_icelite *lite = c->lite;
    /* Only one generation back stays valid: a second restart before any check with the first
     * one's credentials retires the oldest. */
    if (c->has_old && g_hash_table_lookup(lite->by_ufrag, c->old_ufrag) == c)
        g_hash_table_remove(lite->by_ufrag, c->old_ufrag);
    memcpy(c->old_ufrag, c->ufrag, sizeof c->old_ufrag);
    memcpy(c->old_pwd, c->pwd, sizeof c->old_pwd);
    c->has_old = true;
    g_hash_table_replace(lite->by_ufrag, c->old_ufrag, c);
    new_credentials(lite, c->ufrag, c->pwd);
    g_hash_table_insert(lite->by_ufrag, c->ufrag, c);
}

void encore_icelite_conn_consent(encore_icelite_conn *c)
{
    if (c->rx_selected)
        c->consent_us = g_get_monotonic_time();
}

bool encore_icelite_conn_has_path(const encore_icelite_conn *c)
{
    return c->selected >= 0;
}

void encore_icelite_conn_set_timer(encore_icelite_conn *c, int64_t deadline_us)
{
    encore_icelite *lite = c->lite;
    if (c->deadline_us && !deadline_us)
        timed_unlink(c);
    else if (!c->deadline_us && deadline_us) {
        c->tnext = lite->timed;
        if (lite->timed)
            lite->timed->tprev = c;
        lite->timed = c;
    }
    c->deadline_us = deadline_us;
    if (deadline_us)
        schedule(lite, deadline_us);
}
