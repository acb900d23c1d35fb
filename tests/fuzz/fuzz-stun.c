/* Fuzz target for media/stun.c: parses the input as a STUN datagram and checks what the parser
 * promises, verifies its integrity with a fixed key, answers it the way ICE-lite does (success and
 * each error) and parses the answers back; then builds a request from the input bytes and checks
 * that it round-trips. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "media/stun.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t KEY[] = "VOkJxbRl1RmTxUk/WvJxBt";

static void check_answer(const encore_stun_msg *req, int code)
{
    struct sockaddr_in6 from;
    memset(&from, 0, sizeof from);
    from.sin6_family = AF_INET6;
    from.sin6_port = htons(54321);
    from.sin6_addr.s6_addr[15] = 1;
    uint8_t out[600];
    size_t n = 0;
    int rc = encore_stun_build_response(req, (const struct sockaddr *)&from, code, KEY,
                                        sizeof KEY - 1, out, sizeof out, &n);
    CHECK(rc == 0);
    encore_stun_msg m;
    CHECK(encore_stun_parse(out, n, &m) == 0);
    CHECK(m.method == req->method);
    CHECK(memcmp(m.txid, req->txid, sizeof m.txid) == 0);
    CHECK(m.has_fingerprint);
    CHECK(encore_stun_check_integrity(out, n, &m, KEY, sizeof KEY - 1) == 0);
    if (code == 0) {
        CHECK(m.cls == ENCORE_STUN_SUCCESS && m.has_xor_mapped);
        CHECK(memcmp(&m.xor_mapped, &from, sizeof from) == 0);
    } else {
        CHECK(m.cls == ENCORE_STUN_ERROR && m.error_code == code);
    }
}

static void parse_input(const uint8_t *data, size_t size)
{
    encore_stun_msg m;
    int rc = encore_stun_parse(data, size, &m);
    CHECK(rc == 0 || rc == ENCORE_STUN_ERR_NOT_STUN || rc == ENCORE_STUN_ERR_MALFORMED ||
          rc == ENCORE_STUN_ERR_FINGERPRINT);
    if (rc != 0) {
        CHECK(rc != ENCORE_STUN_ERR_NOT_STUN || size < ENCORE_STUN_HEADER_LEN || (data[0] & 0xc0) ||
              size > ENCORE_STUN_MAX_LEN || size % 4 != 0 ||
              !(data[4] == 0x21 && data[5] == 0x12 && data[6] == 0xa4 && data[7] == 0x42) ||
              (size_t)(data[2] << 8 | data[3]) != size - ENCORE_STUN_HEADER_LEN);
        return;
    }
    CHECK(size >= ENCORE_STUN_HEADER_LEN && size % 4 == 0 && (data[0] & 0xc0) == 0);
    CHECK(encore_stun_is_stun(data, size) == (data[0] < 4));
    CHECK(m.method <= 0xfff && m.cls >= 0 && m.cls <= 3);
    if (m.username)
        CHECK(m.username >= data && m.username + m.username_len <= data + size &&
              m.username_len <= ENCORE_STUN_MAX_USERNAME);
    CHECK(m.integrity_at == 0 || m.integrity_at + 24 <= size);
    CHECK(m.integrity_sha256_at == 0 || m.integrity_sha256_at + 4 + m.integrity_sha256_len <= size);
    CHECK(m.error_code == 0 || (m.error_code >= 300 && m.error_code <= 699));
    rc = encore_stun_check_integrity(data, size, &m, KEY, sizeof KEY - 1);
    CHECK(rc == 0 || rc == ENCORE_STUN_ERR_INTEGRITY || rc == ENCORE_STUN_ERR_NO_INTEGRITY);
    CHECK((rc == ENCORE_STUN_ERR_NO_INTEGRITY) == (!m.integrity_at && !m.integrity_sha256_at));
    check_answer(&m, 0);
    check_answer(&m, ENCORE_STUN_CODE_UNKNOWN_ATTRIBUTE);
    check_answer(&m, ENCORE_STUN_CODE_ROLE_CONFLICT);
}

/* A Binding request built from the input: USERNAME from its first bytes, PRIORITY and the role
 * from the next ones. */
static void build_input(const uint8_t *data, size_t size)
{
    if (size < 12)
        return;
    uint8_t txid[ENCORE_STUN_TXID_LEN];
    memcpy(txid, data, sizeof txid);
    data += 12;
    size -= 12;
    size_t ulen = size > 600 ? 600 : size;
    uint8_t out[ENCORE_STUN_MAX_LEN];
    encore_stun_writer w;
    encore_stun_writer_init(&w, out, sizeof out, ENCORE_STUN_BINDING, ENCORE_STUN_REQUEST, txid);
    encore_stun_put(&w, ENCORE_STUN_ATTR_USERNAME, data, ulen);
    encore_stun_put_u32(&w, ENCORE_STUN_ATTR_PRIORITY, 0x6e0001ffu);
    encore_stun_put_u64(&w, ENCORE_STUN_ATTR_ICE_CONTROLLING, 0x0102030405060708u);
    encore_stun_put(&w, ENCORE_STUN_ATTR_USE_CANDIDATE, NULL, 0);
    encore_stun_put_integrity(&w, KEY, sizeof KEY - 1);
    encore_stun_put_fingerprint(&w);
    size_t n = 0;
    int rc = encore_stun_finish(&w, &n);
    encore_stun_msg m;
    if (ulen == 0 || ulen > ENCORE_STUN_MAX_USERNAME) {
        /* Written (the builder does not police USERNAME), but the parser refuses it. */
        CHECK(rc == 0 && encore_stun_parse(out, n, &m) == ENCORE_STUN_ERR_MALFORMED);
        return;
    }
    CHECK(rc == 0);
    CHECK(encore_stun_parse(out, n, &m) == 0);
    CHECK(m.cls == ENCORE_STUN_REQUEST && m.method == ENCORE_STUN_BINDING);
    CHECK(m.username_len == ulen && memcmp(m.username, data, ulen) == 0);
    CHECK(m.has_priority && m.priority == 0x6e0001ffu && m.use_candidate);
    CHECK(m.has_ice_controlling && m.ice_controlling == 0x0102030405060708u);
    CHECK(!m.has_ice_controlled && m.n_unknown == 0 && m.has_fingerprint);
    CHECK(encore_stun_check_integrity(out, n, &m, KEY, sizeof KEY - 1) == 0);
    CHECK(encore_stun_check_integrity(out, n, &m, KEY, sizeof KEY - 2) ==
          ENCORE_STUN_ERR_INTEGRITY);
    /* Any single flipped bit is caught by the fingerprint or the integrity check, or turns the
     * FINGERPRINT attribute into another one (ignored after MESSAGE-INTEGRITY). */
    size_t at = data[0] % n;
    out[at] ^= (uint8_t)(1u << (data[ulen - 1] & 7));
    rc = encore_stun_parse(out, n, &m);
    CHECK(rc != 0 || (!m.has_fingerprint && at >= n - 8 && at < n - 4) ||
          encore_stun_check_integrity(out, n, &m, KEY, sizeof KEY - 1) != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_input(data, size);
    build_input(data, size);
    return 0;
}
