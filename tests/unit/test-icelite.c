/* Unit tests for media/icelite.c on a real loopback socket and a real GMainContext: answers to
 * Binding requests (success, 400, 401, 420, 487), pair selection and nomination, demultiplexing
 * by address, batched and immediate sends, ICE restart credentials, an address moving between
 * connections, consent loss and the connection timer. */
#include <arpa/inet.h>
#include <errno.h>
#include <gio/gio.h>
#include <glib.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "media/icelite.h"
#include "media/stun.h"

typedef struct {
    int ready;
    int data;
    int timers;
    int consent_lost;
    uint8_t last[256];
    size_t last_len;
    encore_icelite_conn *conn;
    int64_t rearm_us;     /* on_timer re-arms this far ahead once */
    bool consent_on_data; /* on_data renews consent (as the peer does for SRTCP) */
} events;

static void on_ready(void *ud)
{
    ((events *)ud)->ready++;
}

static void on_data(uint8_t *d, size_t len, void *ud)
{
    events *e = ud;
    e->data++;
    e->last_len = MIN(len, sizeof e->last);
    memcpy(e->last, d, e->last_len);
    if (e->consent_on_data)
        encore_icelite_conn_consent(e->conn);
}

static void on_timer(void *ud)
{
    events *e = ud;
    e->timers++;
    if (e->rearm_us) {
        encore_icelite_conn_set_timer(e->conn, g_get_monotonic_time() + e->rearm_us);
        e->rearm_us = 0;
    }
}

static void on_consent_lost(void *ud)
{
    ((events *)ud)->consent_lost++;
}

static const encore_icelite_callbacks CB = {on_ready, on_data, on_timer, on_consent_lost};

typedef struct {
    GMainContext *ctx;
    encore_worker_stats stats;
    encore_icelite *lite;
    struct sockaddr_in server;
} fixture;

static void fixture_init(fixture *f, int consent_ms)
{
    memset(f, 0, sizeof *f);
    f->ctx = g_main_context_new();
    static const char *const ips[] = {"127.0.0.1", NULL};
    encore_icelite_config cfg = {.ips = ips, .consent_ms = consent_ms};
    GError *err = NULL;
    f->lite = encore_icelite_new(f->ctx, &cfg, &f->stats, &err);
    g_assert_no_error(err);
    g_assert_nonnull(f->lite);
    f->server.sin_family = AF_INET;
    f->server.sin_port = htons(encore_icelite_port(f->lite, 0));
    inet_pton(AF_INET, "127.0.0.1", &f->server.sin_addr);
}

static void fixture_clear(fixture *f)
{
    encore_icelite_free(f->lite);
    g_main_context_unref(f->ctx);
}

static int client_new(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    g_assert_cmpint(bind(fd, (struct sockaddr *)&a, sizeof a), ==, 0);
    return fd;
}

static uint16_t client_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    return ntohs(a.sin_port);
}

/* Runs the context until `done` says so or `ms` pass. */
static void pump(fixture *f, int ms, gboolean (*done)(gpointer), gpointer data)
{
    int64_t end = g_get_monotonic_time() + ms * 1000;
    while (g_get_monotonic_time() < end && !(done && done(data))) {
        while (g_main_context_iteration(f->ctx, FALSE))
            ;
        g_usleep(1000);
    }
}

/* Waits up to 1 s for a datagram on fd. Returns its length, or -1. */
static ssize_t client_recv(fixture *f, int fd, uint8_t *buf, size_t cap)
{
    for (int i = 0; i < 1000; i++) {
        ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
        if (n >= 0)
            return n;
        while (g_main_context_iteration(f->ctx, FALSE))
            ;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 1);
    }
    return -1;
}

enum { USE_CANDIDATE = 1, CONTROLLED = 2, UNKNOWN_ATTR = 4, NO_INTEGRITY = 8 };

static void send_check(fixture *f, int fd, const char *ufrag, const char *pwd, int flags,
                       uint8_t txid[12])
{
    uint8_t buf[256];
    for (int i = 0; i < 12; i++)
        txid[i] = (uint8_t)g_random_int();
    char user[64];
    g_snprintf(user, sizeof user, "%s:remoteFrag", ufrag);
    encore_stun_writer w;
    encore_stun_writer_init(&w, buf, sizeof buf, ENCORE_STUN_BINDING, ENCORE_STUN_REQUEST, txid);
    encore_stun_put(&w, ENCORE_STUN_ATTR_USERNAME, user, strlen(user));
    encore_stun_put_u32(&w, ENCORE_STUN_ATTR_PRIORITY, 1853824767u);
    encore_stun_put_u64(
        &w, flags & CONTROLLED ? ENCORE_STUN_ATTR_ICE_CONTROLLED : ENCORE_STUN_ATTR_ICE_CONTROLLING,
        0x1122334455667788u);
    if (flags & USE_CANDIDATE)
        encore_stun_put(&w, ENCORE_STUN_ATTR_USE_CANDIDATE, NULL, 0);
    if (flags & UNKNOWN_ATTR)
        encore_stun_put(&w, 0x7001, "??", 2);
    if (!(flags & NO_INTEGRITY))
        encore_stun_put_integrity(&w, (const uint8_t *)pwd, strlen(pwd));
    encore_stun_put_fingerprint(&w);
    size_t n = 0;
    g_assert_cmpint(encore_stun_finish(&w, &n), ==, 0);
    g_assert_cmpint(sendto(fd, buf, n, 0, (struct sockaddr *)&f->server, sizeof f->server), ==,
                    (ssize_t)n);
}

/* Sends a check and returns the answer's error code (0 for success), checking the transaction
 * id, the fingerprint, and, when `pwd` is the right one, integrity and XOR-MAPPED-ADDRESS. */
static int check(fixture *f, int fd, const char *ufrag, const char *pwd, int flags,
                 bool expect_integrity)
{
    uint8_t txid[12], buf[512];
    send_check(f, fd, ufrag, pwd, flags, txid);
    ssize_t n = client_recv(f, fd, buf, sizeof buf);
    g_assert_cmpint(n, >, 0);
    encore_stun_msg m;
    g_assert_cmpint(encore_stun_parse(buf, (size_t)n, &m), ==, 0);
    g_assert_cmpmem(m.txid, 12, txid, 12);
    g_assert_true(m.has_fingerprint);
    g_assert_cmpint(
        encore_stun_check_integrity(buf, (size_t)n, &m, (const uint8_t *)pwd, strlen(pwd)), ==,
        expect_integrity ? 0 : ENCORE_STUN_ERR_NO_INTEGRITY);
    if (m.cls == ENCORE_STUN_SUCCESS) {
        g_assert_true(m.has_xor_mapped);
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&m.xor_mapped;
        g_assert_cmpint(sin->sin_family, ==, AF_INET);
        g_assert_cmpuint(ntohs(sin->sin_port), ==, client_port(fd));
        return 0;
    }
    g_assert_cmpint(m.cls, ==, ENCORE_STUN_ERROR);
    return m.error_code;
}

static void send_data(fixture *f, int fd, uint8_t first, size_t len)
{
    uint8_t buf[200];
    memset(buf, 0xab, sizeof buf);
    buf[0] = first;
    g_assert_cmpint(sendto(fd, buf, len, 0, (struct sockaddr *)&f->server, sizeof f->server), ==,
                    (ssize_t)len);
}

static gboolean has_data(gpointer p)
{
    return ((events *)p)->data > 0;
}

static void test_candidates(void)
{
    fixture f;
    fixture_init(&f, 0);
    g_assert_cmpint(encore_icelite_n_candidates(f.lite), ==, 1);
    char want[128];
    g_snprintf(want, sizeof want, "candidate:1 1 udp 2130706431 127.0.0.1 %u typ host",
               encore_icelite_port(f.lite, 0));
    g_assert_cmpstr(encore_icelite_candidate(f.lite, 0), ==, want);
    g_assert_null(encore_icelite_candidate(f.lite, 1));
    g_assert_cmpuint(encore_icelite_port(f.lite, 0), >, 0);

    /* A busy port range is an error, a free one is used from its start. */
    uint16_t busy = encore_icelite_port(f.lite, 0);
    static const char *const ips[] = {"127.0.0.1", NULL};
    encore_icelite_config cfg = {.ips = ips, .port_min = busy, .port_max = busy};
    GError *err = NULL;
    g_assert_null(encore_icelite_new(f.ctx, &cfg, &f.stats, &err));
    g_assert_error(err, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE);
    g_clear_error(&err);
    static const char *const bad[] = {"localhost", NULL};
    cfg.ips = bad;
    g_assert_null(encore_icelite_new(f.ctx, &cfg, &f.stats, &err));
    g_assert_error(err, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_clear_error(&err);
    fixture_clear(&f);
}

static void test_checks(void)
{
    fixture f;
    fixture_init(&f, 0);
    events e = {0};
    encore_icelite_conn *c = encore_icelite_conn_new(f.lite, &CB, &e);
    e.conn = c;
    char ufrag[16], pwd[32];
    g_strlcpy(ufrag, encore_icelite_conn_ufrag(c), sizeof ufrag);
    g_strlcpy(pwd, encore_icelite_conn_pwd(c), sizeof pwd);
    g_assert_cmpuint(strlen(ufrag), ==, 8);
    g_assert_cmpuint(strlen(pwd), ==, 24);
    g_assert_false(encore_icelite_conn_has_path(c));
    g_assert_cmpint(encore_icelite_conn_queue(c, (const uint8_t *)"x", 1), ==, -ENOTCONN);
    int fd = client_new();

    /* Data before any check is dropped; so are bad checks, with the right answers. */
    send_data(&f, fd, 0x80, 100);
    pump(&f, 20, NULL, NULL);
    g_assert_cmpint(e.data, ==, 0);
    g_assert_cmpuint(f.stats.drop_unknown, ==, 1);
    g_assert_cmpint(check(&f, fd, ufrag, "wrong-password-wrong-pw", 0, false), ==, 401);
    g_assert_cmpint(check(&f, fd, "nobody", pwd, 0, false), ==, 401);
    g_assert_cmpint(check(&f, fd, ufrag, pwd, NO_INTEGRITY, false), ==, 400);
    g_assert_cmpint(check(&f, fd, ufrag, pwd, UNKNOWN_ATTR, true), ==, 420);
    g_assert_cmpint(check(&f, fd, ufrag, pwd, CONTROLLED, true), ==, 487);
    g_assert_cmpint(e.ready, ==, 0);
    g_assert_false(encore_icelite_conn_has_path(c));
    g_assert_cmpuint(f.stats.drop_stun, ==, 4);
    g_assert_cmpuint(f.stats.stun_in, ==, 0);

    /* A valid check (no nomination: we are lite) selects the pair. */
    g_assert_cmpint(check(&f, fd, ufrag, pwd, 0, true), ==, 0);
    g_assert_cmpint(e.ready, ==, 1);
    g_assert_true(encore_icelite_conn_has_path(c));
    g_assert_cmpuint(f.stats.stun_in, ==, 1);
    g_assert_cmpint(check(&f, fd, ufrag, pwd, USE_CANDIDATE, true), ==, 0);
    g_assert_cmpint(e.ready, ==, 1);

    /* Media from the checked address reaches the connection, byte for byte. */
    send_data(&f, fd, 0x80, 120);
    pump(&f, 1000, has_data, &e);
    g_assert_cmpint(e.data, ==, 1);
    g_assert_cmpuint(e.last_len, ==, 120);
    g_assert_cmphex(e.last[0], ==, 0x80);
    g_assert_cmphex(e.last[119], ==, 0xab);

    /* Batched sends leave in one sendmmsg at the flush, immediate ones at once. */
    uint64_t calls = f.stats.send_calls;
    for (int i = 0; i < 3; i++) {
        uint8_t pkt[40];
        memset(pkt, 0x90 + i, sizeof pkt);
        g_assert_cmpint(encore_icelite_conn_queue(c, pkt, (size_t)(30 + i)), ==, 0);
    }
    uint8_t buf[2048];
    g_assert_cmpint(recv(fd, buf, sizeof buf, MSG_DONTWAIT), ==, -1);
    encore_icelite_flush(f.lite);
    g_assert_cmpuint(f.stats.send_calls, ==, calls + 1);
    for (int i = 0; i < 3; i++) {
        g_assert_cmpint(client_recv(&f, fd, buf, sizeof buf), ==, 30 + i);
        g_assert_cmphex(buf[0], ==, 0x90 + i);
    }
    /* A full batch (64) leaves by itself. */
    calls = f.stats.send_calls;
    for (int i = 0; i < 65; i++)
        g_assert_cmpint(encore_icelite_conn_queue(c,
                                                  (const uint8_t *)"\x80"
                                                                   "abc",
                                                  4),
                        ==, 0);
    g_assert_cmpuint(f.stats.send_calls, ==, calls + 1);
    for (int i = 0; i < 64; i++)
        g_assert_cmpint(client_recv(&f, fd, buf, sizeof buf), ==, 4);
    g_assert_cmpint(recv(fd, buf, sizeof buf, MSG_DONTWAIT), ==, -1);
    encore_icelite_flush(f.lite);
    g_assert_cmpint(client_recv(&f, fd, buf, sizeof buf), ==, 4);
    g_assert_cmpuint(f.stats.send_errors, ==, 0);
    g_assert_cmpint(encore_icelite_conn_send(c, (const uint8_t *)"\x16hello", 6), ==, 0);
    g_assert_cmpint(client_recv(&f, fd, buf, sizeof buf), ==, 6);
    g_assert_cmpint(encore_icelite_conn_queue(c, buf, ENCORE_ICELITE_MTU + 1), ==, -EMSGSIZE);
    /* A queue the transport flushes by itself before the loop sleeps. */
    g_assert_cmpint(encore_icelite_conn_queue(c, (const uint8_t *)"\x80zz", 3), ==, 0);
    pump(&f, 5, NULL, NULL);
    g_assert_cmpint(recv(fd, buf, sizeof buf, MSG_DONTWAIT), ==, 3);

    /* A datagram of another connection's unchecked address is not this one's. */
    int other = client_new();
    send_data(&f, other, 0x80, 50);
    e.data = 0;
    pump(&f, 30, NULL, NULL);
    g_assert_cmpint(e.data, ==, 0);
    g_assert_cmpuint(f.stats.drop_unknown, ==, 2);

    encore_icelite_conn_free(c);
    /* Its address and credentials are forgotten. */
    send_data(&f, fd, 0x80, 50);
    pump(&f, 30, NULL, NULL);
    g_assert_cmpint(e.data, ==, 0);
    g_assert_cmpint(check(&f, fd, ufrag, "x", 0, false), ==, 401);
    close(fd);
    close(other);
    fixture_clear(&f);
}

static void test_nomination_and_move(void)
{
    fixture f;
    fixture_init(&f, 0);
    events a = {0}, b = {0};
    encore_icelite_conn *ca = encore_icelite_conn_new(f.lite, &CB, &a);
    encore_icelite_conn *cb = encore_icelite_conn_new(f.lite, &CB, &b);
    g_assert_cmpstr(encore_icelite_conn_ufrag(ca), !=, encore_icelite_conn_ufrag(cb));
    int fd1 = client_new(), fd2 = client_new();
    uint8_t buf[256];

    g_assert_cmpint(
        check(&f, fd1, encore_icelite_conn_ufrag(ca), encore_icelite_conn_pwd(ca), 0, true), ==, 0);
    /* A second address without nomination does not move the selected pair... */
    g_assert_cmpint(
        check(&f, fd2, encore_icelite_conn_ufrag(ca), encore_icelite_conn_pwd(ca), 0, true), ==, 0);
    g_assert_cmpint(encore_icelite_conn_send(ca, (const uint8_t *)"\x80one", 4), ==, 0);
    g_assert_cmpint(client_recv(&f, fd1, buf, sizeof buf), ==, 4);
    /* ...but both may send media. */
    send_data(&f, fd2, 0x81, 20);
    pump(&f, 1000, has_data, &a);
    g_assert_cmpint(a.data, ==, 1);
    /* USE-CANDIDATE moves it. */
    g_assert_cmpint(check(&f, fd2, encore_icelite_conn_ufrag(ca), encore_icelite_conn_pwd(ca),
                          USE_CANDIDATE, true),
                    ==, 0);
    g_assert_cmpint(encore_icelite_conn_send(ca, (const uint8_t *)"\x80two", 4), ==, 0);
    g_assert_cmpint(client_recv(&f, fd2, buf, sizeof buf), ==, 4);
    g_assert_cmpint(recv(fd1, buf, sizeof buf, MSG_DONTWAIT), ==, -1);

    /* fd1's address moves to connection b with b's check: its media goes to b now. */
    g_assert_cmpint(
        check(&f, fd1, encore_icelite_conn_ufrag(cb), encore_icelite_conn_pwd(cb), 0, true), ==, 0);
    a.data = b.data = 0;
    send_data(&f, fd1, 0x80, 20);
    pump(&f, 1000, has_data, &b);
    g_assert_cmpint(b.data, ==, 1);
    g_assert_cmpint(a.data, ==, 0);

    encore_icelite_conn_free(ca);
    encore_icelite_conn_free(cb);
    close(fd1);
    close(fd2);
    fixture_clear(&f);
}

static void test_restart(void)
{
    fixture f;
    fixture_init(&f, 0);
    events e = {0};
    encore_icelite_conn *c = encore_icelite_conn_new(f.lite, &CB, &e);
    int fd = client_new();
    char u1[16], p1[32];
    g_strlcpy(u1, encore_icelite_conn_ufrag(c), sizeof u1);
    g_strlcpy(p1, encore_icelite_conn_pwd(c), sizeof p1);
    g_assert_cmpint(check(&f, fd, u1, p1, USE_CANDIDATE, true), ==, 0);

    encore_icelite_conn_restart(c);
    const char *u2 = encore_icelite_conn_ufrag(c), *p2 = encore_icelite_conn_pwd(c);
    g_assert_cmpstr(u2, !=, u1);
    g_assert_cmpstr(p2, !=, p1);
    g_assert_true(encore_icelite_conn_has_path(c));
    /* The old credentials keep working until the new ones are used. */
    g_assert_cmpint(check(&f, fd, u1, p1, 0, true), ==, 0);
    g_assert_cmpint(check(&f, fd, u1, p2, 0, false), ==, 401);
    g_assert_cmpint(check(&f, fd, u2, p2, USE_CANDIDATE, true), ==, 0);
    g_assert_cmpint(check(&f, fd, u1, p1, 0, false), ==, 401);
    g_assert_cmpint(e.ready, ==, 1);

    encore_icelite_conn_free(c);
    close(fd);
    fixture_clear(&f);
}

static void test_consent_and_timer(void)
{
    fixture f;
    fixture_init(&f, 300);
    events e = {0}, live = {0}, idle = {0}, media = {0};
    encore_icelite_conn *c = encore_icelite_conn_new(f.lite, &CB, &e);
    encore_icelite_conn *l = encore_icelite_conn_new(f.lite, &CB, &live);
    encore_icelite_conn *never = encore_icelite_conn_new(f.lite, &CB, &idle);
    encore_icelite_conn *m = encore_icelite_conn_new(f.lite, &CB, &media);
    e.conn = c;
    media.conn = m;
    media.consent_on_data = true;
    int fd = client_new(), fd2 = client_new(), fd3 = client_new();
    g_assert_cmpint(
        check(&f, fd3, encore_icelite_conn_ufrag(m), encore_icelite_conn_pwd(m), 0, true), ==, 0);
    g_assert_cmpint(
        check(&f, fd, encore_icelite_conn_ufrag(c), encore_icelite_conn_pwd(c), 0, true), ==, 0);
    g_assert_cmpint(
        check(&f, fd2, encore_icelite_conn_ufrag(l), encore_icelite_conn_pwd(l), 0, true), ==, 0);

    /* The timer fires once at its deadline and may be re-armed from its callback. */
    int64_t t0 = g_get_monotonic_time();
    e.rearm_us = 30000;
    encore_icelite_conn_set_timer(c, t0 + 50000);
    /* A disarmed timer never fires. */
    encore_icelite_conn_set_timer(l, t0 + 10000);
    encore_icelite_conn_set_timer(l, 0);
    int64_t fired_at = 0;
    while (g_get_monotonic_time() - t0 < 1000000 && e.timers < 2) {
        g_main_context_iteration(f.ctx, TRUE);
        if (e.timers == 1 && !fired_at)
            fired_at = g_get_monotonic_time();
    }
    g_assert_cmpint(e.timers, ==, 2);
    g_assert_cmpint(fired_at - t0, >=, 50000);
    g_assert_cmpint(live.timers, ==, 0);

    /* Consent: c stops checking and loses it within the timeout plus the 1 s scan (renewing it
     * outside on_data does nothing); l keeps checking and keeps it; m sends only media that
     * authenticates and keeps it; a connection without a path never loses it. */
    int64_t end = g_get_monotonic_time() + 3500000, lost_at = 0;
    while (g_get_monotonic_time() < end) {
        g_assert_cmpint(
            check(&f, fd2, encore_icelite_conn_ufrag(l), encore_icelite_conn_pwd(l), 0, true), ==,
            0);
        send_data(&f, fd3, 0x81, 40);
        encore_icelite_conn_consent(c);
        pump(&f, 100, NULL, NULL);
        if (e.consent_lost && !lost_at)
            lost_at = g_get_monotonic_time();
    }
    g_assert_cmpint(e.consent_lost, ==, 1); /* once */
    g_assert_cmpint(lost_at - t0, >=, 300000);
    g_assert_cmpint(lost_at - t0, <=, 2500000);
    g_assert_cmpint(live.consent_lost + idle.consent_lost + media.consent_lost, ==, 0);
    g_assert_cmpint(media.data, >=, 30);

    encore_icelite_conn_free(c);
    encore_icelite_conn_free(l);
    encore_icelite_conn_free(never);
    encore_icelite_conn_free(m);
    close(fd);
    close(fd2);
    close(fd3);
    fixture_clear(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/icelite/candidates", test_candidates);
    g_test_add_func("/icelite/checks", test_checks);
    g_test_add_func("/icelite/nomination-and-move", test_nomination_and_move);
    g_test_add_func("/icelite/restart", test_restart);
    g_test_add_func("/icelite/consent-and-timer", test_consent_and_timer);
    return g_test_run();
}
