/* DTLS-SRTP handshakes on OpenSSL 3: the shared certificate and SSL_CTX, and per-peer associations
 * driven through a datagram BIO of our own (one datagram in, one send callback call per datagram
 * out). An association runs on its peer's media worker thread; it never blocks, never reads a
 * clock except through OpenSSL's retransmission timer, and never touches sockets or main loops. */
#include "media/dtls.h"

#include <string.h>

#include <gio/gio.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define ENCORE_DTLS_CIPHERS                                                                        \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define ENCORE_DTLS_GROUPS "X25519:P-256:P-384"
#define ENCORE_DTLS_SRTP_PROFILES "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80"
#define ENCORE_DTLS_EXPORTER_LABEL "EXTRACTOR-dtls_srtp"
/* Retransmission timer: first 500 ms, doubling, capped at 4 s (OpenSSL's default starts at 1 s and
 * grows to 60 s, far longer than a listener waits for audio). */
#define ENCORE_DTLS_TIMER_FIRST_US 500000u
#define ENCORE_DTLS_TIMER_MAX_US 4000000u
#define ENCORE_DTLS_CERT_DAYS 30
/* "sha-512 " + 64 * "XX:" */
#define ENCORE_DTLS_FP_TEXT_MAX (8 + 3 * ENCORE_DTLS_FP_MAX)

struct encore_dtls_cert {
    gatomicrefcount ref;
    SSL_CTX *ctx; /* owns the certificate and key */
    char fingerprint[ENCORE_DTLS_FP_TEXT_MAX];
};

typedef enum {
    DTLS_STATE_NEW,         /* created; a client waits for start */
    DTLS_STATE_HANDSHAKING, /* flights in progress */
    DTLS_STATE_CONNECTED,   /* CONNECTED reported; keys exported */
    DTLS_STATE_DEAD,        /* error or close; sticky_error says which */
} dtls_state;

struct encore_dtls {
    encore_dtls_cert *cert; /* a reference of our own */
    SSL *ssl;
    encore_dtls_role role;
    dtls_state state;
    int sticky_error;     /* what handle returns once DEAD */
    bool fp_mismatch;     /* set by the verify callback */
    bool keys_valid;      /* keys hold the exported material */
    unsigned retransmits; /* retransmissions of the current flight */
    const EVP_MD *fp_md;  /* digest of the remote fingerprint */
    uint8_t remote_fp[ENCORE_DTLS_FP_MAX];
    size_t remote_fp_len;
    encore_dtls_send_fn send;
    void *user_data;
    /* The datagram being fed: our BIO hands it to OpenSSL once, then reports "retry". */
    const uint8_t *in_data;
    size_t in_len;
    encore_srtp_keys keys;
};

/* ---- fingerprints ---- */

static const struct {
    const char *name;
    size_t len;
} fp_algs[] = {
    {"sha-1", 20},
    {"sha-256", 32},
    {"sha-384", 48},
    {"sha-512", 64},
};

/* Index into fp_algs for a hash name of name_len bytes (case-insensitive), or -1. */
static int fp_alg_index(const char *name, size_t name_len)
{
    for (size_t i = 0; i < G_N_ELEMENTS(fp_algs); i++) {
        if (strlen(fp_algs[i].name) == name_len &&
            g_ascii_strncasecmp(fp_algs[i].name, name, name_len) == 0)
            return (int)i;
    }
    return -1;
}

static const EVP_MD *fp_alg_md(int idx)
{
    switch (idx) {
    case 0:
        return EVP_sha1();
    case 1:
        return EVP_sha256();
    case 2:
        return EVP_sha384();
    case 3:
        return EVP_sha512();
    default:
        return NULL;
    }
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

int encore_dtls_fingerprint_parse(const char *text, size_t len, const char **alg, uint8_t *out,
                                  size_t cap, size_t *out_len)
{
    size_t i = 0;
    while (i < len && is_blank(text[i]))
        i++;
    size_t name_start = i;
    while (i < len && !is_blank(text[i]))
        i++;
    int idx = fp_alg_index(text + name_start, i - name_start);
    if (idx < 0)
        return -1;
    if (i == len || !is_blank(text[i]))
        return -1;
    while (i < len && is_blank(text[i]))
        i++;
    while (len > i && is_blank(text[len - 1]))
        len--;

    size_t n = 0;
    size_t want = fp_algs[idx].len;
    if (want > cap)
        return -1;
    /* Exactly want pairs "XX" separated by single colons. */
    while (i < len) {
        if (n == want || len - i < 2)
            return -1;
        int hi = hex_value(text[i]), lo = hex_value(text[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[n++] = (uint8_t)(hi << 4 | lo);
        i += 2;
        if (i < len) {
            if (text[i] != ':' || i + 1 == len)
                return -1;
            i++;
        }
    }
    if (n != want)
        return -1;
    *alg = fp_algs[idx].name;
    *out_len = n;
    return 0;
}

/* True when the digest of x509 with dtls->fp_md equals the SDP fingerprint (constant time). */
static bool fingerprint_matches(const encore_dtls *dtls, X509 *x509)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!x509 || X509_digest(x509, dtls->fp_md, md, &md_len) != 1)
        return false;
    if (md_len != dtls->remote_fp_len)
        return false;
    return CRYPTO_memcmp(md, dtls->remote_fp, md_len) == 0;
}

/* ---- the datagram BIO ---- */

static int dgram_bio_write(BIO *bio, const char *data, int len)
{
    encore_dtls *dtls = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (len <= 0)
        return 0;
    if (dtls && dtls->state != DTLS_STATE_DEAD)
        dtls->send((const uint8_t *)data, (size_t)len, dtls->user_data);
    /* Datagrams are fire-and-forget: report the whole write as done so OpenSSL never retries. */
    return len;
}

static int dgram_bio_read(BIO *bio, char *buf, int cap)
{
    encore_dtls *dtls = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (!dtls || !dtls->in_data || cap <= 0) {
        BIO_set_retry_read(bio);
        return -1;
    }
    /* Datagram semantics: a read takes the whole datagram; what does not fit is dropped (OpenSSL's
     * DTLS read buffer holds a maximum-size record, so this never happens with valid input). */
    size_t n = dtls->in_len < (size_t)cap ? dtls->in_len : (size_t)cap;
    memcpy(buf, dtls->in_data, n);
    dtls->in_data = NULL;
    dtls->in_len = 0;
    return (int)n;
}

static long dgram_bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_DGRAM_QUERY_MTU:
    case BIO_CTRL_DGRAM_GET_FALLBACK_MTU:
        return ENCORE_DTLS_MTU;
    case BIO_CTRL_WPENDING:
    case BIO_CTRL_PENDING:
    case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD:
    default:
        return 0;
    }
}

static int dgram_bio_create(BIO *bio)
{
    BIO_set_init(bio, 1);
    BIO_set_data(bio, NULL);
    return 1;
}

static int dgram_bio_destroy(BIO *bio)
{
    BIO_set_data(bio, NULL);
    return 1;
}

static gpointer dgram_bio_method_init(gpointer unused)
{
    int type = BIO_get_new_index();
    if (type < 0)
        return NULL;
    BIO_METHOD *m = BIO_meth_new(type | BIO_TYPE_SOURCE_SINK, "encore dtls datagram");
    if (!m)
        return NULL;
    if (!BIO_meth_set_write(m, dgram_bio_write) || !BIO_meth_set_read(m, dgram_bio_read) ||
        !BIO_meth_set_ctrl(m, dgram_bio_ctrl) || !BIO_meth_set_create(m, dgram_bio_create) ||
        !BIO_meth_set_destroy(m, dgram_bio_destroy)) {
        BIO_meth_free(m);
        return NULL;
    }
    /* Lives for the whole process (held by the GOnce), like OpenSSL's own BIO methods. */
    return m;
}

static BIO_METHOD *dgram_bio_get_method(void)
{
    static GOnce once = G_ONCE_INIT;
    return g_once(&once, dgram_bio_method_init, NULL);
}

/* ---- the certificate and context ---- */

static int verify_cb(int preverify_ok, X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    encore_dtls *dtls = ssl ? SSL_get_app_data(ssl) : NULL;
    if (!dtls)
        return 0;
    /* Chain validity does not matter (WebRTC certificates are self-signed and unrelated to any CA);
     * the leaf's digest matching the fingerprint from the signalled SDP is what authenticates. */
    if (!fingerprint_matches(dtls, X509_STORE_CTX_get0_cert(store))) {
        dtls->fp_mismatch = true;
        X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
        return 0;
    }
    return 1;
}

static void set_openssl_error(GError **error, const char *what)
{
    unsigned long e = ERR_get_error();
    char reason[256] = "unknown error";
    if (e)
        ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s", what, reason);
}

static X509 *make_certificate(EVP_PKEY *pkey, GError **error)
{
    X509 *x509 = X509_new();
    BIGNUM *serial = BN_new();
    if (!x509 || !serial)
        goto out_fail;
    if (X509_set_version(x509, X509_VERSION_3) != 1)
        goto out_fail;
    /* A random positive 63-bit serial: browsers cache nothing by it, but equal serials from the
     * same issuer name confuse some tools. */
    if (BN_rand(serial, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
        !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x509)))
        goto out_fail;
    if (!X509_gmtime_adj(X509_getm_notBefore(x509), -24L * 3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x509), (long)ENCORE_DTLS_CERT_DAYS * 24 * 3600))
        goto out_fail;
    if (X509_set_pubkey(x509, pkey) != 1)
        goto out_fail;
    X509_NAME *name = X509_get_subject_name(x509);
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"encore", -1,
                                   -1, 0) != 1 ||
        X509_set_issuer_name(x509, name) != 1)
        goto out_fail;
    if (X509_sign(x509, pkey, EVP_sha256()) <= 0)
        goto out_fail;
    BN_free(serial);
    return x509;

out_fail:
    set_openssl_error(error, "cannot make the DTLS certificate");
    BN_free(serial);
    X509_free(x509);
    return NULL;
}

static void format_fingerprint(X509 *x509, char *out, size_t cap)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    static const char hex[] = "0123456789ABCDEF";
    if (X509_digest(x509, EVP_sha256(), md, &md_len) != 1 || 8 + 3 * (size_t)md_len > cap) {
        out[0] = '\0';
        return;
    }
    size_t o = 0;
    memcpy(out, "sha-256 ", 8);
    o = 8;
    for (unsigned int i = 0; i < md_len; i++) {
        if (i)
            out[o++] = ':';
        out[o++] = hex[md[i] >> 4];
        out[o++] = hex[md[i] & 15];
    }
    out[o] = '\0';
}

static SSL_CTX *make_context(X509 *x509, EVP_PKEY *pkey, GError **error)
{
    SSL_CTX *ctx = SSL_CTX_new(DTLS_method());
    if (!ctx) {
        set_openssl_error(error, "SSL_CTX_new");
        return NULL;
    }
    const char *step = NULL;
    if (SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION) != 1) {
        step = "DTLS 1.2 minimum";
        goto out_fail;
    }
    if (SSL_CTX_use_certificate(ctx, x509) != 1 || SSL_CTX_use_PrivateKey(ctx, pkey) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        step = "certificate";
        goto out_fail;
    }
    if (SSL_CTX_set_cipher_list(ctx, ENCORE_DTLS_CIPHERS) != 1) {
        step = "cipher list";
        goto out_fail;
    }
    if (SSL_CTX_set1_groups_list(ctx, ENCORE_DTLS_GROUPS) != 1) {
        step = "groups";
        goto out_fail;
    }
    /* Unlike everything else here, this returns 0 on success. */
    if (SSL_CTX_set_tlsext_use_srtp(ctx, ENCORE_DTLS_SRTP_PROFILES) != 0) {
        step = "SRTP profiles";
        goto out_fail;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
    SSL_CTX_set_read_ahead(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* No SSL_OP_COOKIE_EXCHANGE: ICE connectivity checks already proved the peer's address. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_QUERY_MTU | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    return ctx;

out_fail:
    set_openssl_error(error, step);
    SSL_CTX_free(ctx);
    return NULL;
}

encore_dtls_cert *encore_dtls_cert_new(GError **error)
{
    encore_dtls_cert *cert = NULL;
    X509 *x509 = NULL;
    ERR_clear_error();
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    if (!pkey) {
        set_openssl_error(error, "cannot make the DTLS key");
        goto out;
    }
    x509 = make_certificate(pkey, error);
    if (!x509)
        goto out;
    SSL_CTX *ctx = make_context(x509, pkey, error);
    if (!ctx)
        goto out;
    cert = g_new0(encore_dtls_cert, 1);
    g_atomic_ref_count_init(&cert->ref);
    cert->ctx = ctx;
    format_fingerprint(x509, cert->fingerprint, sizeof(cert->fingerprint));

out:
    /* The context holds its own references to the certificate and key. */
    X509_free(x509);
    EVP_PKEY_free(pkey);
    return cert;
}

encore_dtls_cert *encore_dtls_cert_ref(encore_dtls_cert *cert)
{
    g_atomic_ref_count_inc(&cert->ref);
    return cert;
}

void encore_dtls_cert_unref(encore_dtls_cert *cert)
{
    if (!cert || !g_atomic_ref_count_dec(&cert->ref))
        return;
    SSL_CTX_free(cert->ctx);
    g_free(cert);
}

void encore_dtls_cert_free(encore_dtls_cert *cert)
{
    encore_dtls_cert_unref(cert);
}

const char *encore_dtls_cert_fingerprint(const encore_dtls_cert *cert)
{
    return cert->fingerprint;
}

int encore_dtls_cert_digest(const encore_dtls_cert *cert, const char *alg, uint8_t *out, size_t cap,
                            size_t *out_len)
{
    int idx = alg ? fp_alg_index(alg, strlen(alg)) : -1;
    if (idx < 0 || fp_algs[idx].len > cap)
        return -1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    X509 *x509 = SSL_CTX_get0_certificate(cert->ctx);
    if (!x509 || X509_digest(x509, fp_alg_md(idx), md, &md_len) != 1 || md_len > cap) {
        ERR_clear_error();
        return -1;
    }
    memcpy(out, md, md_len);
    *out_len = md_len;
    return 0;
}

/* ---- associations ---- */

static unsigned int timer_cb(SSL *ssl, unsigned int timer_us)
{
    encore_dtls *dtls = SSL_get_app_data(ssl);
    if (timer_us == 0) {
        /* A new flight starts its timer. */
        if (dtls)
            dtls->retransmits = 0;
        return ENCORE_DTLS_TIMER_FIRST_US;
    }
    /* Called from DTLSv1_handle_timeout, just before the flight is sent again. */
    if (dtls)
        dtls->retransmits++;
    return timer_us >= ENCORE_DTLS_TIMER_MAX_US / 2 ? ENCORE_DTLS_TIMER_MAX_US : timer_us * 2;
}

encore_dtls *encore_dtls_new(encore_dtls_cert *cert, encore_dtls_role role,
                             const char *remote_fp_alg, const uint8_t *remote_fp,
                             size_t remote_fp_len, encore_dtls_send_fn send, void *user_data)
{
    if (!cert || !send || !remote_fp_alg || !remote_fp ||
        (role != ENCORE_DTLS_CLIENT && role != ENCORE_DTLS_SERVER))
        return NULL;
    int idx = fp_alg_index(remote_fp_alg, strlen(remote_fp_alg));
    if (idx < 0 || fp_algs[idx].len != remote_fp_len)
        return NULL;
    BIO_METHOD *method = dgram_bio_get_method();
    if (!method)
        return NULL;

    encore_dtls *dtls = g_new0(encore_dtls, 1);
    dtls->role = role;
    dtls->state = DTLS_STATE_NEW;
    dtls->fp_md = fp_alg_md(idx);
    memcpy(dtls->remote_fp, remote_fp, remote_fp_len);
    dtls->remote_fp_len = remote_fp_len;
    dtls->send = send;
    dtls->user_data = user_data;

    ERR_clear_error();
    dtls->ssl = SSL_new(cert->ctx);
    if (!dtls->ssl)
        goto out_free;
    BIO *bio = BIO_new(method);
    if (!bio)
        goto out_free;
    BIO_set_data(bio, dtls);
    /* One BIO for both directions; SSL_set_bio takes over our single reference. */
    SSL_set_bio(dtls->ssl, bio, bio);
    if (SSL_set_app_data(dtls->ssl, dtls) != 1)
        goto out_free;
    /* Returns the MTU it set, or 0 when it is below the DTLS minimum. */
    if (SSL_set_mtu(dtls->ssl, ENCORE_DTLS_MTU) <= 0)
        goto out_free;
    DTLS_set_timer_cb(dtls->ssl, timer_cb);
    if (role == ENCORE_DTLS_CLIENT)
        SSL_set_connect_state(dtls->ssl);
    else
        SSL_set_accept_state(dtls->ssl);
    dtls->cert = encore_dtls_cert_ref(cert);
    return dtls;

out_free:
    ERR_clear_error();
    encore_dtls_free(dtls);
    return NULL;
}

void encore_dtls_free(encore_dtls *dtls)
{
    if (!dtls)
        return;
    if (dtls->ssl) {
        /* Detach us from the BIO first: SSL_free may try to write nothing, but be sure. */
        BIO *bio = SSL_get_rbio(dtls->ssl);
        if (bio)
            BIO_set_data(bio, NULL);
        SSL_free(dtls->ssl);
    }
    encore_dtls_cert_unref(dtls->cert);
    OPENSSL_cleanse(&dtls->keys, sizeof(dtls->keys));
    g_free(dtls);
}

static int profile_from_openssl(unsigned long id)
{
    switch (id) {
    case SRTP_AES128_CM_SHA1_80:
        return ENCORE_SRTP_AES128_CM_SHA1_80;
    case SRTP_AEAD_AES_128_GCM:
        return ENCORE_SRTP_AEAD_AES_128_GCM;
    default:
        return ENCORE_SRTP_PROFILE_NONE;
    }
}

int encore_dtls_set_srtp_profile(encore_dtls *dtls, encore_srtp_profile profile)
{
    if (dtls->state != DTLS_STATE_NEW)
        return ENCORE_DTLS_ERR_STATE;
    const char *name;
    switch (profile) {
    case ENCORE_SRTP_AES128_CM_SHA1_80:
        name = "SRTP_AES128_CM_SHA1_80";
        break;
    case ENCORE_SRTP_AEAD_AES_128_GCM:
        name = "SRTP_AEAD_AES_128_GCM";
        break;
    default:
        return ENCORE_DTLS_ERR_STATE;
    }
    ERR_clear_error();
    /* 0 means success here. */
    if (SSL_set_tlsext_use_srtp(dtls->ssl, name) != 0) {
        ERR_clear_error();
        return ENCORE_DTLS_ERR_STATE;
    }
    return 0;
}

static int fail(encore_dtls *dtls, int code)
{
    dtls->state = DTLS_STATE_DEAD;
    dtls->sticky_error = code;
    ERR_clear_error();
    return code;
}

/* Exports the SRTP keys per RFC 5764 section 4.2. Returns 0 or -1. */
static int export_keys(encore_dtls *dtls)
{
    const SRTP_PROTECTION_PROFILE *p = SSL_get_selected_srtp_profile(dtls->ssl);
    encore_srtp_profile profile = p ? profile_from_openssl(p->id) : ENCORE_SRTP_PROFILE_NONE;
    size_t key_len, salt_len;
    if (encore_srtp_profile_lengths(profile, &key_len, &salt_len) != 0)
        return -1;
    uint8_t material[2 * (ENCORE_SRTP_MAX_KEY_LEN + ENCORE_SRTP_MAX_SALT_LEN)];
    size_t total = 2 * (key_len + salt_len);
    if (SSL_export_keying_material(dtls->ssl, material, total, ENCORE_DTLS_EXPORTER_LABEL,
                                   strlen(ENCORE_DTLS_EXPORTER_LABEL), NULL, 0, 0) != 1) {
        OPENSSL_cleanse(material, sizeof(material));
        return -1;
    }
    const uint8_t *client_key = material;
    const uint8_t *server_key = material + key_len;
    const uint8_t *client_salt = material + 2 * key_len;
    const uint8_t *server_salt = material + 2 * key_len + salt_len;
    bool client = dtls->role == ENCORE_DTLS_CLIENT;

    encore_srtp_keys *k = &dtls->keys;
    memset(k, 0, sizeof(*k));
    k->profile = profile;
    k->key_len = key_len;
    k->salt_len = salt_len;
    memcpy(k->local_key, client ? client_key : server_key, key_len);
    memcpy(k->local_salt, client ? client_salt : server_salt, salt_len);
    memcpy(k->remote_key, client ? server_key : client_key, key_len);
    memcpy(k->remote_salt, client ? server_salt : client_salt, salt_len);
    OPENSSL_cleanse(material, sizeof(material));
    dtls->keys_valid = true;
    return 0;
}

/* Classifies a failed SSL call: 0 to wait for more, or a terminal error. */
static int classify_ssl_error(encore_dtls *dtls, int ret)
{
    int err = SSL_get_error(dtls->ssl, ret);
    switch (err) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        ERR_clear_error();
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        return fail(dtls, ENCORE_DTLS_ERR_CLOSED);
    default:
        return fail(dtls,
                    dtls->fp_mismatch ? ENCORE_DTLS_ERR_FINGERPRINT : ENCORE_DTLS_ERR_HANDSHAKE);
    }
}

static int step_handshake(encore_dtls *dtls)
{
    int ret = SSL_do_handshake(dtls->ssl);
    if (ret != 1)
        return classify_ssl_error(dtls, ret);
    /* Defence in depth: the verify callback already checked the certificate as it arrived. */
    if (dtls->fp_mismatch || !fingerprint_matches(dtls, SSL_get0_peer_certificate(dtls->ssl)))
        return fail(dtls, ENCORE_DTLS_ERR_FINGERPRINT);
    if (export_keys(dtls) != 0)
        return fail(dtls, ENCORE_DTLS_ERR_HANDSHAKE);
    dtls->state = DTLS_STATE_CONNECTED;
    return ENCORE_DTLS_CONNECTED;
}

int encore_dtls_start(encore_dtls *dtls)
{
    if (dtls->state == DTLS_STATE_DEAD)
        return dtls->sticky_error;
    if (dtls->role == ENCORE_DTLS_SERVER)
        return 0;
    if (dtls->state != DTLS_STATE_NEW)
        return ENCORE_DTLS_ERR_STATE;
    dtls->state = DTLS_STATE_HANDSHAKING;
    ERR_clear_error();
    int r = step_handshake(dtls);
    /* Nothing has been received, so the handshake cannot have completed. */
    return r == ENCORE_DTLS_CONNECTED ? fail(dtls, ENCORE_DTLS_ERR_HANDSHAKE) : r;
}

/* After the handshake: lets OpenSSL process the datagram (answering retransmitted flights,
 * refusing renegotiation) and throws away application data. */
static int read_connected(encore_dtls *dtls)
{
    unsigned char sink[2048];
    for (;;) {
        int ret = SSL_read(dtls->ssl, sink, sizeof(sink));
        if (ret > 0)
            continue; /* application data: we carry no data channel */
        int r = classify_ssl_error(dtls, ret);
        OPENSSL_cleanse(sink, sizeof(sink));
        return r;
    }
}

int encore_dtls_handle(encore_dtls *dtls, const uint8_t *data, size_t len)
{
    if (dtls->state == DTLS_STATE_DEAD)
        return dtls->sticky_error;
    if (!encore_dtls_is_dtls(data, len))
        return 0;
    if (dtls->state == DTLS_STATE_NEW) {
        if (dtls->role == ENCORE_DTLS_CLIENT)
            return 0;
        dtls->state = DTLS_STATE_HANDSHAKING;
    }
    ERR_clear_error();
    dtls->in_data = data;
    dtls->in_len = len;
    int r = dtls->state == DTLS_STATE_CONNECTED ? read_connected(dtls) : step_handshake(dtls);
    /* Whatever OpenSSL did not take (it stopped early on an error) is dropped with the datagram. */
    dtls->in_data = NULL;
    dtls->in_len = 0;
    return r;
}

int encore_dtls_timeout_ms(encore_dtls *dtls)
{
    if (dtls->state != DTLS_STATE_HANDSHAKING)
        return -1;
    struct timeval tv;
    if (DTLSv1_get_timeout(dtls->ssl, &tv) != 1)
        return -1;
    long long ms = (long long)tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
    return ms > G_MAXINT ? G_MAXINT : (int)ms;
}

int encore_dtls_handle_timeout(encore_dtls *dtls)
{
    if (dtls->state == DTLS_STATE_DEAD)
        return dtls->sticky_error;
    if (dtls->state != DTLS_STATE_HANDSHAKING)
        return 0;
    if (dtls->retransmits >= ENCORE_DTLS_MAX_RETRANSMITS) {
        struct timeval tv;
        /* The last retransmission had its chance: give up when its timer is due. */
        if (DTLSv1_get_timeout(dtls->ssl, &tv) == 1 && tv.tv_sec == 0 && tv.tv_usec == 0)
            return fail(dtls, ENCORE_DTLS_ERR_TIMEOUT);
        return 0;
    }
    ERR_clear_error();
    if (DTLSv1_handle_timeout(dtls->ssl) < 0)
        return fail(dtls, ENCORE_DTLS_ERR_TIMEOUT);
    return 0;
}

int encore_dtls_srtp_keys(encore_dtls *dtls, encore_srtp_keys *out)
{
    if (!dtls->keys_valid) {
        memset(out, 0, sizeof(*out));
        return ENCORE_DTLS_ERR_STATE;
    }
    *out = dtls->keys;
    return 0;
}

bool encore_dtls_is_connected(const encore_dtls *dtls)
{
    return dtls->state == DTLS_STATE_CONNECTED;
}

void encore_dtls_close(encore_dtls *dtls)
{
    if (dtls->state == DTLS_STATE_DEAD)
        return;
    if (dtls->state == DTLS_STATE_CONNECTED) {
        ERR_clear_error();
        (void)SSL_shutdown(dtls->ssl);
    }
    fail(dtls, ENCORE_DTLS_ERR_CLOSED);
}

bool encore_dtls_is_dtls(const uint8_t *data, size_t len)
{
    return data && len > 0 && data[0] >= 20 && data[0] <= 63;
}

const char *encore_dtls_strerror(int code)
{
    switch (code) {
    case 0:
        return "ok";
    case ENCORE_DTLS_CONNECTED:
        return "connected";
    case ENCORE_DTLS_ERR_FINGERPRINT:
        return "peer certificate does not match the fingerprint";
    case ENCORE_DTLS_ERR_HANDSHAKE:
        return "DTLS handshake or protocol failure";
    case ENCORE_DTLS_ERR_CLOSED:
        return "DTLS association closed";
    case ENCORE_DTLS_ERR_TIMEOUT:
        return "DTLS handshake timed out";
    case ENCORE_DTLS_ERR_STATE:
        return "DTLS call not valid in this state";
    default:
        return "unknown DTLS error";
    }
}
