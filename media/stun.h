/* STUN (RFC 8489, RFC 5389) for ICE-lite: parses, authenticates and builds the Binding messages
 * that ICE connectivity and consent checks use (RFC 8445, RFC 7675). Pure functions over byte
 * buffers, callable from any thread: no allocation of their own, no logging, no state. */
#ifndef ENCORE_MEDIA_STUN_H
#define ENCORE_MEDIA_STUN_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ENCORE_STUN_HEADER_LEN 20
#define ENCORE_STUN_MAGIC_COOKIE 0x2112A442u
#define ENCORE_STUN_TXID_LEN 12
/* Largest message the parser accepts (and integrity checks copy on the stack). ICE checks are
 * about 100 bytes; RFC 8489 asks for messages under the path MTU. */
#define ENCORE_STUN_MAX_LEN 2048
/* Unknown comprehension-required attribute types remembered for a 420 answer. */
#define ENCORE_STUN_MAX_UNKNOWN 8
/* RFC 8489: USERNAME holds fewer than 513 bytes (RFC 5389's limit; 8489 says 509). */
#define ENCORE_STUN_MAX_USERNAME 512

/* Methods and classes (RFC 8489 section 5). */
#define ENCORE_STUN_BINDING 0x001
enum {
    ENCORE_STUN_REQUEST = 0,
    ENCORE_STUN_INDICATION = 1,
    ENCORE_STUN_SUCCESS = 2,
    ENCORE_STUN_ERROR = 3,
};

/* Attribute types. Types below 0x8000 are comprehension-required. */
enum {
    ENCORE_STUN_ATTR_MAPPED_ADDRESS = 0x0001,
    ENCORE_STUN_ATTR_USERNAME = 0x0006,
    ENCORE_STUN_ATTR_MESSAGE_INTEGRITY = 0x0008,
    ENCORE_STUN_ATTR_ERROR_CODE = 0x0009,
    ENCORE_STUN_ATTR_UNKNOWN_ATTRIBUTES = 0x000A,
    ENCORE_STUN_ATTR_MESSAGE_INTEGRITY_SHA256 = 0x001C,
    ENCORE_STUN_ATTR_XOR_MAPPED_ADDRESS = 0x0020,
    ENCORE_STUN_ATTR_PRIORITY = 0x0024,      /* RFC 8445 */
    ENCORE_STUN_ATTR_USE_CANDIDATE = 0x0025, /* RFC 8445 */
    ENCORE_STUN_ATTR_SOFTWARE = 0x8022,
    ENCORE_STUN_ATTR_FINGERPRINT = 0x8028,
    ENCORE_STUN_ATTR_ICE_CONTROLLED = 0x8029,  /* RFC 8445 */
    ENCORE_STUN_ATTR_ICE_CONTROLLING = 0x802A, /* RFC 8445 */
};

/* Error response codes ICE-lite sends. */
enum {
    ENCORE_STUN_CODE_BAD_REQUEST = 400,
    ENCORE_STUN_CODE_UNAUTHENTICATED = 401,
    ENCORE_STUN_CODE_UNKNOWN_ATTRIBUTE = 420,
    ENCORE_STUN_CODE_ROLE_CONFLICT = 487,
};

/* Error codes of this module (all negative). */
enum {
    /* Not a STUN message at all: shorter than the header, top two bits set, no magic cookie,
     * length field not a multiple of 4 or not equal to the datagram's length minus 20, or over
     * ENCORE_STUN_MAX_LEN. */
    ENCORE_STUN_ERR_NOT_STUN = -1,
    /* A STUN header, but the attributes are broken: one runs past the end, an attribute follows
     * FINGERPRINT, or a known attribute (processed, i.e. not after MESSAGE-INTEGRITY) has a
     * length or value its RFC forbids. */
    ENCORE_STUN_ERR_MALFORMED = -2,
    /* FINGERPRINT present but its CRC-32 does not match: the datagram is not STUN. */
    ENCORE_STUN_ERR_FINGERPRINT = -3,
    /* Integrity check asked for a message without MESSAGE-INTEGRITY(-SHA256). */
    ENCORE_STUN_ERR_NO_INTEGRITY = -4,
    /* The HMAC does not verify with the key given. */
    ENCORE_STUN_ERR_INTEGRITY = -5,
    /* Builder: the output buffer is too small. */
    ENCORE_STUN_ERR_NOSPACE = -6,
    /* Builder: an invalid argument (value over 65535 bytes, unsupported address family, error
     * code outside 300-699, attribute added after FINGERPRINT, NULL where a value is needed). */
    ENCORE_STUN_ERR_INVALID = -7,
};

/* A parsed message. Pointers point into the parsed buffer and live as long as it does. Only the
 * first instance of an attribute counts; attributes after MESSAGE-INTEGRITY other than
 * MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are ignored, as RFC 8489 section 14.5 says. */
typedef struct {
    uint16_t method; /* 12 bits, ENCORE_STUN_BINDING for ICE */
    int cls;         /* ENCORE_STUN_REQUEST ... ENCORE_STUN_ERROR */
    uint8_t txid[ENCORE_STUN_TXID_LEN];

    const uint8_t *username; /* NULL when absent; not NUL-terminated */
    size_t username_len;
    bool has_priority;
    uint32_t priority;
    bool use_candidate;
    bool has_ice_controlling;
    uint64_t ice_controlling; /* tie-breaker */
    bool has_ice_controlled;
    uint64_t ice_controlled;
    bool has_xor_mapped; /* XOR-MAPPED-ADDRESS, decoded into a sockaddr_in or sockaddr_in6 */
    struct sockaddr_storage xor_mapped;
    int error_code; /* ERROR-CODE as class * 100 + number (300-699), 0 when absent */

    /* Offsets of the integrity attributes' headers from the start of the message (0 = absent:
     * an attribute is never at offset 0). MESSAGE-INTEGRITY-SHA256's value is 16-32 bytes. */
    size_t integrity_at;
    size_t integrity_sha256_at;
    size_t integrity_sha256_len;
    bool has_fingerprint; /* present and verified */

    /* Comprehension-required attributes (type < 0x8000) this parser does not know, before
     * MESSAGE-INTEGRITY: the first ENCORE_STUN_MAX_UNKNOWN types, and how many there were. */
    size_t n_unknown;
    uint16_t unknown[ENCORE_STUN_MAX_UNKNOWN];
} encore_stun_msg;

/* RFC 7983 demultiplexing plus the fixed header: true when len >= 20, the first byte is 0-3 and
 * bytes 4-7 hold the magic cookie. Cheap; says nothing of the attributes. */
bool encore_stun_is_stun(const uint8_t *data, size_t len);

/* Parses one datagram. Returns 0 and fills *out, or ENCORE_STUN_ERR_NOT_STUN,
 * ENCORE_STUN_ERR_MALFORMED or ENCORE_STUN_ERR_FINGERPRINT (*out is then unspecified).
 * Known attributes: MAPPED-ADDRESS, USERNAME, MESSAGE-INTEGRITY, ERROR-CODE, UNKNOWN-ATTRIBUTES,
 * MESSAGE-INTEGRITY-SHA256, XOR-MAPPED-ADDRESS, PRIORITY, USE-CANDIDATE, SOFTWARE, FINGERPRINT,
 * ICE-CONTROLLED, ICE-CONTROLLING; other optional ones are skipped, other comprehension-required
 * ones listed in out->unknown. Padding bytes may hold anything. */
int encore_stun_parse(const uint8_t *data, size_t len,
                      encore_stun_msg *out) G_GNUC_WARN_UNUSED_RESULT;

/* Verifies the short-term credential HMAC of a message parsed by encore_stun_parse() from the
 * same data/len: MESSAGE-INTEGRITY-SHA256 when present, else MESSAGE-INTEGRITY (HMAC-SHA1), keyed
 * with `key` (for ICE: the password of the receiving agent, as written in the SDP). Constant-time
 * comparison. Returns 0, ENCORE_STUN_ERR_NO_INTEGRITY or ENCORE_STUN_ERR_INTEGRITY. */
int encore_stun_check_integrity(const uint8_t *data, size_t len, const encore_stun_msg *msg,
                                const uint8_t *key, size_t key_len) G_GNUC_WARN_UNUSED_RESULT;

/* ---- building ---------------------------------------------------------------------------- */

/* A message under construction in a caller's buffer. Errors are sticky: the first one is kept and
 * later calls do nothing; encore_stun_finish() reports it. */
typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t len;
    int err;            /* 0 or the first ENCORE_STUN_ERR_* */
    bool sealed;        /* FINGERPRINT written: nothing may follow */
    bool has_integrity; /* MESSAGE-INTEGRITY written: only -SHA256 and FINGERPRINT may follow */
} encore_stun_writer;

/* Starts a message of `method` and class `cls` with transaction id `txid` in buf (cap bytes). */
void encore_stun_writer_init(encore_stun_writer *w, uint8_t *buf, size_t cap, uint16_t method,
                             int cls, const uint8_t txid[ENCORE_STUN_TXID_LEN]);
/* Appends an attribute with `len` bytes of value (zero padding to 4 bytes). */
void encore_stun_put(encore_stun_writer *w, uint16_t type, const void *value, size_t len);
void encore_stun_put_u32(encore_stun_writer *w, uint16_t type, uint32_t value);
void encore_stun_put_u64(encore_stun_writer *w, uint16_t type, uint64_t value);
/* XOR-MAPPED-ADDRESS (or any XOR'ed address attribute) from a sockaddr_in or sockaddr_in6. */
void encore_stun_put_xor_address(encore_stun_writer *w, uint16_t type, const struct sockaddr *sa);
/* ERROR-CODE with `code` 300-699 and a reason phrase (NULL: a standard one for 400, 401, 420,
 * 487, else ""). */
void encore_stun_put_error_code(encore_stun_writer *w, int code, const char *reason);
/* MESSAGE-INTEGRITY (HMAC-SHA1) or MESSAGE-INTEGRITY-SHA256 (32 bytes) over what was written. */
void encore_stun_put_integrity(encore_stun_writer *w, const uint8_t *key, size_t key_len);
void encore_stun_put_integrity_sha256(encore_stun_writer *w, const uint8_t *key, size_t key_len);
/* FINGERPRINT; must be the last attribute. */
void encore_stun_put_fingerprint(encore_stun_writer *w);
/* Returns 0 and the message length in *len, or the first error (ENCORE_STUN_ERR_NOSPACE,
 * ENCORE_STUN_ERR_INVALID). */
int encore_stun_finish(const encore_stun_writer *w, size_t *len) G_GNUC_WARN_UNUSED_RESULT;

/* The answer an ICE agent gives to the Binding request `req` that arrived from `from`: a success
 * response with XOR-MAPPED-ADDRESS when `error_code` is 0, else an error response with ERROR-CODE
 * (and UNKNOWN-ATTRIBUTES listing req->unknown for 420). With a key, MESSAGE-INTEGRITY follows
 * (MESSAGE-INTEGRITY-SHA256 instead when the request used it); FINGERPRINT always ends it.
 * Returns 0 with the length in *out_len, ENCORE_STUN_ERR_NOSPACE or ENCORE_STUN_ERR_INVALID. */
int encore_stun_build_response(const encore_stun_msg *req, const struct sockaddr *from,
                               int error_code, const uint8_t *key, size_t key_len, uint8_t *out,
                               size_t cap, size_t *out_len) G_GNUC_WARN_UNUSED_RESULT;

/* A short name of an error code of this module, for logs. Static storage. */
const char *encore_stun_strerror(int err);

#endif
