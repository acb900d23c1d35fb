/* SDP offer parsing, answer building and ICE candidate parsing for Encore (see sdp.h).
 * Pure functions run by whichever thread calls them (signaling hands offers to media workers).
 * Must not allocate, log, keep state, or read beyond the given length. */
#include "media/sdp.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A view of part of the input; never NUL-terminated. */
typedef struct {
    const char *p;
    size_t n;
} span;

#define MAX_BUNDLE_GROUPS 4
#define MAX_CANDIDATE_INPUT 1024
#define SETUP_HOLDCONN 99 /* internal: a=setup:holdconn, refused */

enum { PT_UNKNOWN = 0, PT_OPUS, PT_RED, PT_OTHER };

/* Attributes of one level (the session, or one m-section), pointing into the input. */
struct attrs {
    span ufrag, pwd, mid;
    bool has_fp;
    char fp_alg[16];
    uint8_t fp[64];
    size_t fp_len;
    int setup;
    bool trickle, ice_lite, rtcp_mux, rtcp_rsize, bundle_only, end_of_candidates;
    bool has_direction;
    int direction;
    span candidates[ENCORE_SDP_MAX_CANDIDATES];
    int n_candidates, candidates_dropped;
    /* Codecs, by payload type. */
    uint8_t pt_kind[128];
    span fmtp[128];
    bool has_fmtp[128];
    bool nack[128], tcc[128];
    bool nack_all, tcc_all;
    bool has_ssrc, has_cname;
    uint32_t ssrc;
    span cname;
    /* Session level only: the values of a=group:BUNDLE lines. */
    span bundle_groups[MAX_BUNDLE_GROUPS];
    int n_bundle_groups;
};

/* One m-section found by the first pass. */
struct sect {
    size_t start, end; /* its lines, m= line included, as offsets into the input */
    span kind, proto, fmt, mid;
    uint32_t port;
    bool bundle_only, bundled;
    int tag; /* index of the BUNDLE tag section of its group, -1 when not bundled */
};

/* ---- small span helpers ---- */

static span span_of(const char *s)
{
    span r = {s, strlen(s)};
    return r;
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool span_eq(span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && (n == 0 || memcmp(s.p, lit, n) == 0);
}

static bool span_ieq(span s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.n != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (lower(s.p[i]) != lower(lit[i]))
            return false;
    }
    return true;
}

static bool span_iprefix(span s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.n < n)
        return false;
    span head = {s.p, n};
    return span_ieq(head, lit);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

static span trim(span s)
{
    while (s.n > 0 && is_space(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && is_space(s.p[s.n - 1]))
        s.n--;
    return s;
}

/* Takes the next whitespace-separated token from *rest. */
static bool next_token(span *rest, span *tok)
{
    size_t i = 0;
    while (i < rest->n && is_space(rest->p[i]))
        i++;
    if (i == rest->n) {
        rest->p += i;
        rest->n = 0;
        return false;
    }
    size_t start = i;
    while (i < rest->n && !is_space(rest->p[i]))
        i++;
    tok->p = rest->p + start;
    tok->n = i - start;
    rest->p += i;
    rest->n -= i;
    return true;
}

/* Splits *rest at the first sep: *head gets what precedes it. False (and *head = all) if sep is
 * absent. */
static bool split_at(span *rest, char sep, span *head)
{
    const char *hit = rest->n ? memchr(rest->p, sep, rest->n) : NULL;
    if (!hit) {
        *head = *rest;
        rest->p += rest->n;
        rest->n = 0;
        return false;
    }
    head->p = rest->p;
    head->n = (size_t)(hit - rest->p);
    rest->n -= head->n + 1;
    rest->p = hit + 1;
    return true;
}

/* Decimal digits only, at most max. */
static bool parse_u32(span s, uint32_t max, uint32_t *out)
{
    if (s.n == 0 || s.n > 10)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s.p[i] - '0');
    }
    if (v > max)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool is_ice_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

static bool is_ice_chars(span s, size_t min, size_t max)
{
    if (s.n < min || s.n > max)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        if (!is_ice_char(s.p[i]))
            return false;
    }
    return true;
}

/* Visible ASCII without spaces: safe to echo into a line of the answer. */
static bool is_visible(span s, size_t max)
{
    if (s.n == 0 || s.n > max)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        if ((unsigned char)s.p[i] <= 0x20 || (unsigned char)s.p[i] >= 0x7f)
            return false;
    }
    return true;
}

/* RFC 4566 token characters. */
static bool is_token(span s, size_t max)
{
    static const char extra[] = "!#$%&'*+-.^_`{|}~";
    if (s.n == 0 || s.n > max)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c != '\0' && strchr(extra, c) != NULL);
        if (!ok)
            return false;
    }
    return true;
}

/* Copies s into dst (cap bytes, NUL included); false when it does not fit. */
static bool copy_span(char *dst, size_t cap, span s)
{
    if (s.n >= cap)
        return false;
    if (s.n)
        memcpy(dst, s.p, s.n); /* an absent span has p == NULL */
    dst[s.n] = '\0';
    return true;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* ---- fingerprints ---- */

static const struct {
    const char *name;
    size_t len;
} fp_algs[] = {
    {"sha-1", 20}, {"sha-224", 28}, {"sha-256", 32}, {"sha-384", 48}, {"sha-512", 64},
};

/* "sha-256 AB:CD:..." -> lowercase algorithm name and bytes. False when malformed or not supported.
 */
static bool parse_fingerprint(span v, char alg[16], uint8_t fp[64], size_t *fp_len)
{
    span alg_tok, hex, extra;
    if (!next_token(&v, &alg_tok) || !next_token(&v, &hex) || next_token(&v, &extra))
        return false;
    size_t want = 0;
    const char *name = NULL;
    for (size_t i = 0; i < sizeof fp_algs / sizeof fp_algs[0]; i++) {
        if (span_ieq(alg_tok, fp_algs[i].name)) {
            want = fp_algs[i].len;
            name = fp_algs[i].name;
        }
    }
    if (!name || hex.n != want * 3 - 1)
        return false;
    for (size_t i = 0; i < want; i++) {
        int hi = hex_value(hex.p[3 * i]), lo = hex_value(hex.p[3 * i + 1]);
        if (hi < 0 || lo < 0 || (i + 1 < want && hex.p[3 * i + 2] != ':'))
            return false;
        fp[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(alg, name, strlen(name) + 1);
    *fp_len = want;
    return true;
}

int encore_sdp_format_fingerprint(const uint8_t *fp, size_t n, char *buf, size_t cap)
{
    static const char digits[] = "0123456789ABCDEF";
    if (!fp || !buf || n == 0 || n > 64)
        return -EINVAL;
    if (cap < 3 * n)
        return -ENOSPC;
    for (size_t i = 0; i < n; i++) {
        buf[3 * i] = digits[fp[i] >> 4];
        buf[3 * i + 1] = digits[fp[i] & 15];
        buf[3 * i + 2] = (i + 1 < n) ? ':' : '\0';
    }
    return 0;
}

/* ---- lines ---- */

/* Checks the framing once so that later passes cannot fail on it: size, bytes, line endings, line
 * lengths and the "<letter>=" shape of every non-empty line. */
static int check_lines(const char *sdp, size_t len, const char **why)
{
    if (len == 0) {
        *why = "the offer is empty";
        return ENCORE_SDP_ERR_INVALID;
    }
    if (len > ENCORE_SDP_MAX_INPUT) {
        *why = "the offer is over 64 KiB";
        return ENCORE_SDP_ERR_INVALID;
    }
    size_t line_start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)sdp[i];
        if (c == '\n') {
            size_t end = (i > line_start && sdp[i - 1] == '\r') ? i - 1 : i;
            if (end - line_start > ENCORE_SDP_MAX_LINE) {
                *why = "the offer has an overlong line";
                return ENCORE_SDP_ERR_INVALID;
            }
            if (end > line_start && (end - line_start < 2 || sdp[line_start] < 'a' ||
                                     sdp[line_start] > 'z' || sdp[line_start + 1] != '=')) {
                *why = "not SDP: a line does not start with <letter>=";
                return ENCORE_SDP_ERR_INVALID;
            }
            line_start = i + 1;
        } else if (c == '\r') {
            if (i + 1 >= len || sdp[i + 1] != '\n') {
                *why = "not SDP: a carriage return not followed by a line feed";
                return ENCORE_SDP_ERR_INVALID;
            }
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            *why = "not SDP: control characters";
            return ENCORE_SDP_ERR_INVALID;
        } else if (i - line_start >= ENCORE_SDP_MAX_LINE) {
            *why = "the offer has an overlong line";
            return ENCORE_SDP_ERR_INVALID;
        }
    }
    if (line_start != len) {
        *why = "the offer is truncated: its last line has no line ending";
        return ENCORE_SDP_ERR_INVALID;
    }
    return 0;
}

typedef struct {
    const char *s;
    size_t pos, end;
} line_iter;

/* Next non-empty line in [pos, end): its type letter, value (after "x=") and start offset. Only
 * valid on input that check_lines() accepted. */
static bool next_line(line_iter *it, char *type, span *value, size_t *start_out)
{
    while (it->pos < it->end) {
        size_t start = it->pos;
        const char *nl = memchr(it->s + start, '\n', it->end - start);
        size_t stop = nl ? (size_t)(nl - it->s) : it->end;
        it->pos = stop + 1;
        size_t e = (stop > start && it->s[stop - 1] == '\r') ? stop - 1 : stop;
        if (e == start)
            continue;
        *type = it->s[start];
        value->p = it->s + start + 2;
        value->n = e - start - 2;
        if (start_out)
            *start_out = start;
        return true;
    }
    return false;
}

/* ---- attributes ---- */

static void parse_rtpmap(span v, struct attrs *a)
{
    span pt_tok, enc, name, clock, chans = {NULL, 0};
    uint32_t pt, rate, nch = 1;
    if (!next_token(&v, &pt_tok) || !parse_u32(pt_tok, 127, &pt) || !next_token(&v, &enc))
        return;
    if (a->pt_kind[pt] != PT_UNKNOWN)
        return;
    split_at(&enc, '/', &name);
    bool has_ch = split_at(&enc, '/', &clock);
    if (has_ch)
        chans = enc;
    if (!parse_u32(clock, UINT32_MAX, &rate) || (has_ch && !parse_u32(chans, 255, &nch))) {
        a->pt_kind[pt] = PT_OTHER;
        return;
    }
    if (span_ieq(name, "opus") && rate == 48000 && nch == 2)
        a->pt_kind[pt] = PT_OPUS;
    else if (span_ieq(name, "red") && rate == 48000 && nch == 2)
        a->pt_kind[pt] = PT_RED;
    else
        a->pt_kind[pt] = PT_OTHER;
}

static void parse_rtcp_fb(span v, struct attrs *a)
{
    span pt_tok, type, sub;
    uint32_t pt = 0;
    bool all;
    if (!next_token(&v, &pt_tok) || !next_token(&v, &type))
        return;
    all = span_eq(pt_tok, "*");
    if (!all && !parse_u32(pt_tok, 127, &pt))
        return;
    bool has_sub = next_token(&v, &sub);
    if (span_ieq(type, "nack") && !has_sub) {
        if (all)
            a->nack_all = true;
        else
            a->nack[pt] = true;
    } else if (span_ieq(type, "transport-cc")) {
        if (all)
            a->tcc_all = true;
        else
            a->tcc[pt] = true;
    }
}

static void parse_ssrc(span v, struct attrs *a)
{
    span id_tok, attr, name;
    uint32_t id;
    if (!next_token(&v, &id_tok) || !parse_u32(id_tok, UINT32_MAX, &id))
        return;
    if (!a->has_ssrc) {
        a->has_ssrc = true;
        a->ssrc = id;
    }
    attr = trim(v);
    if (id != a->ssrc || a->has_cname || !split_at(&attr, ':', &name) || !span_eq(name, "cname"))
        return;
    a->cname = attr;
    a->has_cname = true;
}

static int parse_setup(span v, struct attrs *a, const char **why)
{
    if (a->setup != ENCORE_SDP_SETUP_NONE)
        return 0;
    v = trim(v);
    if (span_ieq(v, "actpass"))
        a->setup = ENCORE_SDP_SETUP_ACTPASS;
    else if (span_ieq(v, "active"))
        a->setup = ENCORE_SDP_SETUP_ACTIVE;
    else if (span_ieq(v, "passive"))
        a->setup = ENCORE_SDP_SETUP_PASSIVE;
    else if (span_ieq(v, "holdconn"))
        a->setup = SETUP_HOLDCONN;
    else {
        *why = "unknown a=setup value";
        return ENCORE_SDP_ERR_INVALID;
    }
    return 0;
}

static void set_direction(struct attrs *a, int dir)
{
    if (!a->has_direction) {
        a->has_direction = true;
        a->direction = dir;
    }
}

/* One a= line. full=false (first pass over m-sections) looks only at mid and bundle-only. */
static int parse_attr(span line, struct attrs *a, bool full, const char **why)
{
    span name, v = line;
    bool has_value = split_at(&v, ':', &name);

    if (span_eq(name, "mid")) {
        v = trim(v);
        if (a->mid.n) {
            *why = "an m-section has two a=mid lines";
            return ENCORE_SDP_ERR_INVALID;
        }
        if (!is_token(v, 32)) {
            *why = "a=mid is empty, too long (over 32) or has invalid characters";
            return ENCORE_SDP_ERR_INVALID;
        }
        a->mid = v;
        return 0;
    }
    if (span_eq(name, "bundle-only")) {
        a->bundle_only = true;
        return 0;
    }
    if (!full)
        return 0;

    if (span_eq(name, "ice-ufrag") && has_value) {
        if (!a->ufrag.n)
            a->ufrag = trim(v);
    } else if (span_eq(name, "ice-pwd") && has_value) {
        if (!a->pwd.n)
            a->pwd = trim(v);
    } else if (span_eq(name, "ice-options")) {
        span tok;
        while (next_token(&v, &tok)) {
            if (span_eq(tok, "trickle"))
                a->trickle = true;
        }
    } else if (span_eq(name, "ice-lite")) {
        a->ice_lite = true;
    } else if (span_eq(name, "fingerprint") && has_value) {
        if (!a->has_fp)
            a->has_fp = parse_fingerprint(v, a->fp_alg, a->fp, &a->fp_len);
    } else if (span_eq(name, "setup")) {
        return parse_setup(v, a, why);
    } else if (span_eq(name, "rtcp-mux") || span_eq(name, "rtcp-mux-only")) {
        a->rtcp_mux = true;
    } else if (span_eq(name, "rtcp-rsize")) {
        a->rtcp_rsize = true;
    } else if (span_eq(name, "sendrecv")) {
        set_direction(a, ENCORE_SDP_SENDRECV);
    } else if (span_eq(name, "sendonly")) {
        set_direction(a, ENCORE_SDP_SENDONLY);
    } else if (span_eq(name, "recvonly")) {
        set_direction(a, ENCORE_SDP_RECVONLY);
    } else if (span_eq(name, "inactive")) {
        set_direction(a, ENCORE_SDP_INACTIVE);
    } else if (span_eq(name, "rtpmap")) {
        parse_rtpmap(v, a);
    } else if (span_eq(name, "fmtp")) {
        span pt_tok;
        uint32_t pt;
        if (next_token(&v, &pt_tok) && parse_u32(pt_tok, 127, &pt) && !a->has_fmtp[pt]) {
            a->fmtp[pt] = trim(v);
            a->has_fmtp[pt] = true;
        }
    } else if (span_eq(name, "rtcp-fb")) {
        parse_rtcp_fb(v, a);
    } else if (span_eq(name, "ssrc")) {
        parse_ssrc(v, a);
    } else if (span_eq(name, "candidate") && has_value) {
        line = trim(line);
        if (line.n >= ENCORE_SDP_CANDIDATE_LEN) {
            *why = "an a=candidate line is too long";
            return ENCORE_SDP_ERR_INVALID;
        }
        if (a->n_candidates < ENCORE_SDP_MAX_CANDIDATES)
            a->candidates[a->n_candidates++] = line;
        else
            a->candidates_dropped++;
    } else if (span_eq(name, "end-of-candidates")) {
        a->end_of_candidates = true;
    } else if (span_eq(name, "group") && has_value) {
        span sem, rest = v;
        if (next_token(&rest, &sem) && span_ieq(sem, "BUNDLE") &&
            a->n_bundle_groups < MAX_BUNDLE_GROUPS)
            a->bundle_groups[a->n_bundle_groups++] = rest;
    }
    return 0;
}

/* All attribute lines of [start, end) into *a (zeroed first). */
static int parse_level(const char *sdp, size_t start, size_t end, struct attrs *a, const char **why)
{
    line_iter it = {sdp, start, end};
    char type;
    span v;
    memset(a, 0, sizeof *a);
    while (next_line(&it, &type, &v, NULL)) {
        if (type != 'a')
            continue;
        int rc = parse_attr(v, a, true, why);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- first pass: session level and the m-section table ---- */

static int parse_mline(span v, struct sect *s, const char **why)
{
    span port_tok, port_num, rest;
    if (!next_token(&v, &s->kind) || !next_token(&v, &port_tok) || !next_token(&v, &s->proto)) {
        *why = "malformed m= line";
        return ENCORE_SDP_ERR_INVALID;
    }
    rest = port_tok;
    split_at(&rest, '/', &port_num);
    s->fmt = trim(v);
    if (!parse_u32(port_num, 65535, &s->port) || s->fmt.n == 0) {
        *why = "malformed m= line";
        return ENCORE_SDP_ERR_INVALID;
    }
    if (!is_token(s->kind, 15) || !is_visible(s->proto, 39)) {
        *why = "m= line media type or protocol too long or invalid";
        return ENCORE_SDP_ERR_INVALID;
    }
    span tok, f = s->fmt;
    while (next_token(&f, &tok)) {
        if (!is_visible(tok, 63)) {
            *why = "m= line format too long or invalid";
            return ENCORE_SDP_ERR_INVALID;
        }
    }
    return 0;
}

struct scan {
    struct attrs session;
    struct sect sects[ENCORE_SDP_MAX_SECTIONS];
    int n;
    size_t session_end; /* offset of the first m= line */
};

static int scan_offer(const char *sdp, size_t len, struct scan *sc, const char **why)
{
    line_iter it = {sdp, 0, len};
    char type;
    span v;
    size_t start;
    bool first = true, have_origin = false;
    struct attrs tmp;
    int rc;

    memset(&tmp, 0, sizeof tmp);
    sc->n = 0;
    sc->session_end = len;
    while (next_line(&it, &type, &v, &start)) {
        if (first) {
            if (type != 'v' || !span_eq(trim(v), "0")) {
                *why = "not SDP: the first line is not v=0";
                return ENCORE_SDP_ERR_INVALID;
            }
            first = false;
            continue;
        }
        if (type == 'm') {
            if (sc->n == ENCORE_SDP_MAX_SECTIONS) {
                *why = "the offer has more than 16 m-sections";
                return ENCORE_SDP_ERR_INVALID;
            }
            if (sc->n == 0) {
                sc->session_end = start;
            } else {
                sc->sects[sc->n - 1].end = start;
                sc->sects[sc->n - 1].mid = tmp.mid;
                sc->sects[sc->n - 1].bundle_only = tmp.bundle_only;
            }
            memset(&tmp, 0, sizeof tmp);
            struct sect *s = &sc->sects[sc->n++];
            memset(s, 0, sizeof *s);
            s->start = start;
            s->tag = -1;
            rc = parse_mline(v, s, why);
            if (rc)
                return rc;
        } else if (sc->n == 0 && type == 'o') {
            have_origin = true;
        } else if (sc->n > 0 && type == 'a') {
            rc = parse_attr(v, &tmp, false, why);
            if (rc)
                return rc;
        }
    }
    if (first) {
        *why = "not SDP: no lines";
        return ENCORE_SDP_ERR_INVALID;
    }
    if (!have_origin) {
        *why = "the offer has no o= line";
        return ENCORE_SDP_ERR_INVALID;
    }
    if (sc->n == 0) {
        *why = "the offer has no m= line";
        return ENCORE_SDP_ERR_INVALID;
    }
    sc->sects[sc->n - 1].end = len;
    sc->sects[sc->n - 1].mid = tmp.mid;
    sc->sects[sc->n - 1].bundle_only = tmp.bundle_only;

    for (int i = 0; i < sc->n; i++) {
        for (int j = 0; j < i; j++) {
            if (sc->sects[i].mid.n && sc->sects[i].mid.n == sc->sects[j].mid.n &&
                memcmp(sc->sects[i].mid.p, sc->sects[j].mid.p, sc->sects[i].mid.n) == 0) {
                *why = "two m-sections have the same mid";
                return ENCORE_SDP_ERR_INVALID;
            }
        }
    }
    return parse_level(sdp, 0, sc->session_end, &sc->session, why);
}

static int find_mid(const struct scan *sc, span mid)
{
    for (int i = 0; i < sc->n; i++) {
        if (sc->sects[i].mid.n == mid.n && memcmp(sc->sects[i].mid.p, mid.p, mid.n) == 0)
            return i;
    }
    return -1;
}

/* Marks the sections of each BUNDLE group and their tag (the first mid of the group). */
static int resolve_bundles(struct scan *sc, const char **why)
{
    for (int g = 0; g < sc->session.n_bundle_groups; g++) {
        span rest = sc->session.bundle_groups[g], tok;
        int tag = -1;
        while (next_token(&rest, &tok)) {
            int i = find_mid(sc, tok);
            if (i < 0) {
                *why = "a=group:BUNDLE names a mid that no m-section has";
                return ENCORE_SDP_ERR_INVALID;
            }
            if (tag < 0)
                tag = i;
            if (!sc->sects[i].bundled) {
                sc->sects[i].bundled = true;
                sc->sects[i].tag = tag;
            }
        }
    }
    return 0;
}

/* ---- codecs of the audio section ---- */

static bool red_wraps(span fmtp, int opus_pt)
{
    span rest = fmtp, tok;
    int count = 0;
    bool more = true;
    while (more) {
        uint32_t pt;
        more = split_at(&rest, '/', &tok);
        if (!parse_u32(trim(tok), 127, &pt) || (int)pt != opus_pt || ++count > 8)
            return false;
    }
    return count > 0;
}

static void parse_opus_fmtp(span fmtp, encore_sdp_offer *out)
{
    span rest = fmtp, param, key;
    while (rest.n > 0) {
        uint32_t val;
        split_at(&rest, ';', &param);
        param = trim(param);
        if (!split_at(&param, '=', &key))
            continue;
        key = trim(key);
        if (!parse_u32(trim(param), UINT32_MAX, &val))
            continue;
        if (span_ieq(key, "useinbandfec"))
            out->opus_fec = val == 1;
        else if (span_ieq(key, "stereo"))
            out->opus_stereo = val == 1;
        else if (span_ieq(key, "sprop-stereo"))
            out->opus_sprop_stereo = val == 1;
        else if (span_ieq(key, "maxaveragebitrate"))
            out->opus_maxaveragebitrate = val;
        else if (span_ieq(key, "minptime") && val <= 1000)
            out->opus_minptime = (int)val;
    }
}

/* Picks Opus (and RED wrapping it) in m-line order. Returns 0, NO_OPUS or INVALID. */
static int resolve_codecs(const struct sect *s, const struct attrs *m, encore_sdp_offer *out,
                          const char **why)
{
    span rest = s->fmt, tok;
    int pos = 0, opus_pos = -1, red_pos = -1;
    out->opus_pt = -1;
    out->red_pt = -1;
    while (next_token(&rest, &tok)) {
        uint32_t pt;
        if (!parse_u32(tok, 127, &pt)) {
            *why = "the audio m= line has a format that is not an RTP payload type";
            return ENCORE_SDP_ERR_INVALID;
        }
        if (m->pt_kind[pt] == PT_OPUS && opus_pos < 0) {
            out->opus_pt = (int)pt;
            opus_pos = pos;
        }
        pos++;
    }
    if (opus_pos < 0) {
        *why = "the audio m-section does not offer opus/48000/2";
        return ENCORE_SDP_ERR_NO_OPUS;
    }
    rest = s->fmt;
    pos = 0;
    while (next_token(&rest, &tok)) {
        uint32_t pt;
        if (parse_u32(tok, 127, &pt) && m->pt_kind[pt] == PT_RED && m->has_fmtp[pt] &&
            red_wraps(m->fmtp[pt], out->opus_pt)) {
            out->red_pt = (int)pt;
            red_pos = pos;
            break;
        }
        pos++;
    }
    out->red_first = out->red_pt >= 0 && red_pos < opus_pos;
    if (m->has_fmtp[out->opus_pt])
        parse_opus_fmtp(m->fmtp[out->opus_pt], out);
    out->opus_nack = m->nack_all || m->nack[out->opus_pt];
    out->opus_transport_cc = m->tcc_all || m->tcc[out->opus_pt];
    return 0;
}

/* ---- putting it together ---- */

/* Transport attributes: the audio section's, else its BUNDLE tag's, else the session's. */
static const struct attrs *pick(const struct attrs *m, const struct attrs *tag,
                                const struct attrs *sess, bool (*has)(const struct attrs *))
{
    if (has(m))
        return m;
    if (tag && has(tag))
        return tag;
    return sess;
}

static bool has_ufrag(const struct attrs *a)
{
    return a->ufrag.n > 0;
}

static bool has_pwd(const struct attrs *a)
{
    return a->pwd.n > 0;
}

static bool has_fp(const struct attrs *a)
{
    return a->has_fp;
}

static bool has_setup(const struct attrs *a)
{
    return a->setup != ENCORE_SDP_SETUP_NONE;
}

static bool has_candidates(const struct attrs *a)
{
    return a->n_candidates > 0 || a->end_of_candidates;
}

static int fill_transport(const struct attrs *m, const struct attrs *tag, const struct attrs *sess,
                          encore_sdp_offer *out, const char **why)
{
    const struct attrs *a = pick(m, tag, sess, has_ufrag);
    if (!a->ufrag.n) {
        *why = "the offer has no a=ice-ufrag";
        return ENCORE_SDP_ERR_INVALID;
    }
    if (!is_ice_chars(a->ufrag, 4, 256) ||
        !copy_span(out->ice_ufrag, sizeof out->ice_ufrag, a->ufrag)) {
        *why = "malformed a=ice-ufrag (4-256 characters of A-Z a-z 0-9 + /)";
        return ENCORE_SDP_ERR_INVALID;
    }
    a = pick(m, tag, sess, has_pwd);
    if (!a->pwd.n) {
        *why = "the offer has no a=ice-pwd";
        return ENCORE_SDP_ERR_INVALID;
    }
    if (!is_ice_chars(a->pwd, 22, 256) || !copy_span(out->ice_pwd, sizeof out->ice_pwd, a->pwd)) {
        *why = "malformed a=ice-pwd (22-256 characters of A-Z a-z 0-9 + /)";
        return ENCORE_SDP_ERR_INVALID;
    }
    a = pick(m, tag, sess, has_fp);
    if (!a->has_fp) {
        *why = "the offer has no usable a=fingerprint (sha-1/224/256/384/512)";
        return ENCORE_SDP_ERR_INVALID;
    }
    memcpy(out->fp_alg, a->fp_alg, sizeof out->fp_alg);
    memcpy(out->fp, a->fp, a->fp_len);
    out->fp_len = a->fp_len;
    out->setup = pick(m, tag, sess, has_setup)->setup;
    if (out->setup == SETUP_HOLDCONN) {
        *why = "a=setup:holdconn is not supported";
        return ENCORE_SDP_ERR_INVALID;
    }
    out->ice_trickle = m->trickle || (tag && tag->trickle) || sess->trickle;
    out->ice_lite = sess->ice_lite;
    out->rtcp_mux = m->rtcp_mux || (tag && tag->rtcp_mux);
    if (!out->rtcp_mux) {
        *why = "the audio m-section lacks a=rtcp-mux";
        return ENCORE_SDP_ERR_INVALID;
    }
    out->rtcp_rsize = m->rtcp_rsize;

    a = (tag && !has_candidates(m)) ? tag : m;
    out->n_candidates = a->n_candidates;
    out->candidates_dropped = a->candidates_dropped;
    out->end_of_candidates = a->end_of_candidates;
    for (int i = 0; i < a->n_candidates; i++)
        copy_span(out->candidates[i], sizeof out->candidates[i], a->candidates[i]);
    return 0;
}

static void fill_section(const struct sect *s, encore_sdp_section *d)
{
    span rest = s->fmt, tok;
    size_t used = 0;
    copy_span(d->kind, sizeof d->kind, s->kind);
    copy_span(d->proto, sizeof d->proto, s->proto);
    copy_span(d->mid, sizeof d->mid, s->mid);
    /* Whole format tokens while they fit; parse_mline() made sure the first one does. */
    d->fmt[0] = '\0';
    while (next_token(&rest, &tok)) {
        size_t need = tok.n + (used ? 1 : 0);
        if (used + need >= sizeof d->fmt)
            break;
        if (used)
            d->fmt[used++] = ' ';
        memcpy(d->fmt + used, tok.p, tok.n);
        used += tok.n;
        d->fmt[used] = '\0';
    }
    d->port = (uint16_t)s->port;
    d->bundled = s->bundled;
    d->bundle_only = s->bundle_only;
}

/* The offer's working state is large (two attribute levels per candidate section); keep it off the
 * caller's stack frame in one struct. */
struct parse_state {
    struct scan sc;
    struct attrs media, tag;
};

static int parse_offer(const char *sdp, size_t len, encore_sdp_offer *out, struct parse_state *st,
                       const char **why)
{
    struct scan *sc = &st->sc;
    int rc = check_lines(sdp, len, why);
    if (rc)
        return rc;
    rc = scan_offer(sdp, len, sc, why);
    if (rc)
        return rc;
    rc = resolve_bundles(sc, why);
    if (rc)
        return rc;

    /* The first enabled audio section that is SAVPF and offers Opus. */
    int err = ENCORE_SDP_ERR_INVALID, chosen = -1;
    const char *err_why = "the offer has no enabled audio m-section";
    for (int i = 0; i < sc->n && chosen < 0; i++) {
        const struct sect *s = &sc->sects[i];
        if (!span_eq(s->kind, "audio") || (s->port == 0 && !s->bundle_only))
            continue;
        if (!span_eq(s->proto, "UDP/TLS/RTP/SAVPF")) {
            if (err == ENCORE_SDP_ERR_INVALID)
                err_why = "the audio m-section is not UDP/TLS/RTP/SAVPF";
            continue;
        }
        rc = parse_level(sdp, s->start, s->end, &st->media, why);
        if (rc)
            return rc;
        rc = resolve_codecs(s, &st->media, out, &err_why);
        if (rc == ENCORE_SDP_ERR_NO_OPUS) {
            err = rc;
            continue;
        }
        if (rc) {
            *why = err_why;
            return rc;
        }
        chosen = i;
    }
    if (chosen < 0) {
        *why = err_why;
        return err;
    }

    const struct sect *s = &sc->sects[chosen];
    const struct attrs *tag = NULL;
    if (s->bundled && s->tag != chosen) {
        const struct sect *t = &sc->sects[s->tag];
        rc = parse_level(sdp, t->start, t->end, &st->tag, why);
        if (rc)
            return rc;
        tag = &st->tag;
    }
    rc = fill_transport(&st->media, tag, &sc->session, out, why);
    if (rc)
        return rc;

    out->audio_index = chosen;
    copy_span(out->mid, sizeof out->mid, s->mid);
    out->bundled = s->bundled;
    out->direction = st->media.has_direction     ? st->media.direction
                     : sc->session.has_direction ? sc->session.direction
                                                 : ENCORE_SDP_SENDRECV;
    if (st->media.has_ssrc) {
        out->ssrc = st->media.ssrc;
        /* The cname is informational: one we could not echo safely is left out, not fatal. */
        if (st->media.has_cname && is_visible(st->media.cname, sizeof out->cname - 1))
            copy_span(out->cname, sizeof out->cname, st->media.cname);
    }
    out->n_sections = sc->n;
    for (int i = 0; i < sc->n; i++)
        fill_section(&sc->sects[i], &out->sections[i]);
    return 0;
}

int encore_sdp_parse_offer(const char *sdp, size_t len, encore_sdp_offer *out, const char **why)
{
    const char *dummy;
    struct parse_state st;
    if (!why)
        why = &dummy;
    if (!sdp || !out) {
        *why = "no offer";
        return ENCORE_SDP_ERR_INVALID;
    }
    memset(out, 0, sizeof *out);
    return parse_offer(sdp, len, out, &st, why);
}

/* ---- the answer ---- */

int encore_sdp_answer_setup(const encore_sdp_offer *offer)
{
    return offer->setup == ENCORE_SDP_SETUP_PASSIVE ? ENCORE_SDP_SETUP_ACTIVE
                                                    : ENCORE_SDP_SETUP_PASSIVE;
}

int encore_sdp_answer_direction(const encore_sdp_offer *offer, bool send)
{
    if (send) {
        return (offer->direction == ENCORE_SDP_SENDRECV || offer->direction == ENCORE_SDP_RECVONLY)
                   ? ENCORE_SDP_SENDONLY
                   : ENCORE_SDP_INACTIVE;
    }
    return (offer->direction == ENCORE_SDP_SENDRECV || offer->direction == ENCORE_SDP_SENDONLY)
               ? ENCORE_SDP_RECVONLY
               : ENCORE_SDP_INACTIVE;
}

struct wbuf {
    char *buf;
    size_t cap, len;
    bool full;
};

static void wb_add(struct wbuf *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void wb_add(struct wbuf *w, const char *fmt, ...)
{
    va_list ap;
    if (w->full)
        return;
    size_t room = w->cap - w->len;
    va_start(ap, fmt);
    int n = vsnprintf(w->buf + w->len, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room) {
        w->full = true;
        return;
    }
    w->len += (size_t)n;
}

/* NULL, or 1-max visible characters. */
static bool opt_visible(const char *s, size_t max)
{
    return !s || (strnlen(s, max + 1) <= max && is_visible(span_of(s), max));
}

static bool has_nul(const char *field, size_t size)
{
    return memchr(field, '\0', size) != NULL;
}

/* The strings of a caller-supplied offer must at least be terminated before we print them. */
static bool offer_strings_ok(const encore_sdp_offer *o)
{
    if (!has_nul(o->mid, sizeof o->mid))
        return false;
    for (int i = 0; i < o->n_sections; i++) {
        const encore_sdp_section *s = &o->sections[i];
        if (!has_nul(s->kind, sizeof s->kind) || !has_nul(s->proto, sizeof s->proto) ||
            !has_nul(s->fmt, sizeof s->fmt) || !has_nul(s->mid, sizeof s->mid))
            return false;
    }
    return true;
}

static bool valid_candidate_line(const char *c)
{
    size_t n = c ? strnlen(c, MAX_CANDIDATE_INPUT + 1) : 0;
    if (n == 0 || n > MAX_CANDIDATE_INPUT || strncmp(c, "candidate:", 10) != 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)c[i] < 0x20 || (unsigned char)c[i] >= 0x7f)
            return false;
    }
    return true;
}

/* Checks what the caller gave us; fills the normalised fingerprint, setup role and c= address. */
static int check_params(const encore_sdp_offer *o, const encore_sdp_answer_params *p,
                        char fp_text[200], int *setup, const char **c_family)
{
    struct in6_addr addr6;
    struct in_addr addr4;
    char alg[16];
    uint8_t fp[64];
    size_t fp_len;

    if (o->n_sections < 1 || o->n_sections > ENCORE_SDP_MAX_SECTIONS || o->audio_index < 0 ||
        o->audio_index >= o->n_sections || o->opus_pt < 0 || o->opus_pt > 127 || o->red_pt > 127 ||
        !offer_strings_ok(o))
        return -EINVAL;
    if (!p->ice_ufrag || !p->ice_pwd || !p->fingerprint || strnlen(p->ice_ufrag, 257) > 256 ||
        !is_ice_chars(span_of(p->ice_ufrag), 4, 256) || strnlen(p->ice_pwd, 257) > 256 ||
        !is_ice_chars(span_of(p->ice_pwd), 22, 256) || strnlen(p->fingerprint, 300) >= 300 ||
        !parse_fingerprint(span_of(p->fingerprint), alg, fp, &fp_len))
        return -EINVAL;
    size_t alg_len = strlen(alg);
    memcpy(fp_text, alg, alg_len);
    fp_text[alg_len] = ' ';
    if (encore_sdp_format_fingerprint(fp, fp_len, fp_text + alg_len + 1, 200 - alg_len - 1) != 0)
        return -EINVAL;

    int want = encore_sdp_answer_setup(o);
    if (p->setup == ENCORE_SDP_SETUP_NONE)
        *setup = want;
    else if (p->setup == want ||
             (o->setup == ENCORE_SDP_SETUP_ACTPASS && p->setup == ENCORE_SDP_SETUP_ACTIVE))
        *setup = p->setup;
    else
        return -EINVAL;

    uint32_t rate = p->opus_bitrate ? p->opus_bitrate : 128000;
    if (rate < 6000 || rate > 510000)
        return -EINVAL;
    if (p->ip && (strnlen(p->ip, 64) >= 64 || (inet_pton(AF_INET, p->ip, &addr4) != 1 &&
                                               inet_pton(AF_INET6, p->ip, &addr6) != 1)))
        return -EINVAL;
    *c_family = (p->ip && strchr(p->ip, ':')) ? "IP6" : "IP4";
    if (p->send) {
        if (!opt_visible(p->cname, 255) || !opt_visible(p->msid_stream, 64) ||
            !opt_visible(p->msid_track, 64))
            return -EINVAL;
        if (p->ssrc && !p->cname)
            return -EINVAL;
        if (p->msid_track && !p->msid_stream)
            return -EINVAL;
    }
    if (p->n_candidates && !p->candidates)
        return -EINVAL;
    for (size_t i = 0; i < p->n_candidates; i++) {
        if (!valid_candidate_line(p->candidates[i]))
            return -EINVAL;
    }
    return 0;
}

static const char *direction_name(int dir)
{
    switch (dir) {
    case ENCORE_SDP_SENDONLY:
        return "sendonly";
    case ENCORE_SDP_RECVONLY:
        return "recvonly";
    case ENCORE_SDP_INACTIVE:
        return "inactive";
    default:
        return "sendrecv";
    }
}

static void write_audio(struct wbuf *w, const encore_sdp_offer *o,
                        const encore_sdp_answer_params *p, const char *fp_text, int setup,
                        const char *c_family)
{
    const encore_sdp_section *s = &o->sections[o->audio_index];
    bool red = p->allow_red && o->red_pt >= 0;
    int opus = o->opus_pt;

    if (!red)
        wb_add(w, "m=%s 9 %s %d\r\n", s->kind, s->proto, opus);
    else if (o->red_first)
        wb_add(w, "m=%s 9 %s %d %d\r\n", s->kind, s->proto, o->red_pt, opus);
    else
        wb_add(w, "m=%s 9 %s %d %d\r\n", s->kind, s->proto, opus, o->red_pt);
    wb_add(w, "c=IN %s %s\r\n", c_family, p->ip ? p->ip : "0.0.0.0");
    wb_add(w, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=ice-options:trickle\r\n", p->ice_ufrag,
           p->ice_pwd);
    wb_add(w, "a=fingerprint:%s\r\n", fp_text);
    wb_add(w, "a=setup:%s\r\n", setup == ENCORE_SDP_SETUP_ACTIVE ? "active" : "passive");
    if (o->mid[0])
        wb_add(w, "a=mid:%s\r\n", o->mid);
    wb_add(w, "a=%s\r\n", direction_name(encore_sdp_answer_direction(o, p->send)));
    if (p->send && p->msid_stream)
        wb_add(w, "a=msid:%s%s%s\r\n", p->msid_stream, p->msid_track ? " " : "",
               p->msid_track ? p->msid_track : "");
    wb_add(w, "a=rtcp-mux\r\n");
    if (o->rtcp_rsize)
        wb_add(w, "a=rtcp-rsize\r\n");
    wb_add(w, "a=rtpmap:%d opus/48000/2\r\n", opus);
    if (o->opus_nack)
        wb_add(w, "a=rtcp-fb:%d nack\r\n", opus);
    wb_add(w,
           "a=fmtp:%d minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1;maxaveragebitrate=%u;"
           "maxplaybackrate=48000\r\n",
           opus, (unsigned)(p->opus_bitrate ? p->opus_bitrate : 128000));
    if (red)
        wb_add(w, "a=rtpmap:%d red/48000/2\r\na=fmtp:%d %d/%d\r\n", o->red_pt, o->red_pt, opus,
               opus);
    if (p->send && p->ssrc) {
        wb_add(w, "a=ssrc:%u cname:%s\r\n", (unsigned)p->ssrc, p->cname);
        if (p->msid_stream)
            wb_add(w, "a=ssrc:%u msid:%s%s%s\r\n", (unsigned)p->ssrc, p->msid_stream,
                   p->msid_track ? " " : "", p->msid_track ? p->msid_track : "");
    }
    for (size_t i = 0; i < p->n_candidates; i++)
        wb_add(w, "a=%s\r\n", p->candidates[i]);
    if (p->end_of_candidates)
        wb_add(w, "a=end-of-candidates\r\n");
}

int encore_sdp_build_answer(const encore_sdp_offer *offer, const encore_sdp_answer_params *p,
                            char *buf, size_t cap, size_t *out_len)
{
    char fp_text[200];
    int setup;
    const char *c_family;
    struct wbuf w = {buf, cap, 0, false};

    if (!offer || !p || !buf || !out_len)
        return -EINVAL;
    int rc = check_params(offer, p, fp_text, &setup, &c_family);
    if (rc)
        return rc;

    wb_add(&w, "v=0\r\no=encore %llu %llu IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
           (unsigned long long)p->session_id, (unsigned long long)p->session_version);
    if (p->ice_lite)
        wb_add(&w, "a=ice-lite\r\n");
    if (offer->bundled && offer->mid[0])
        wb_add(&w, "a=group:BUNDLE %s\r\n", offer->mid);
    for (int i = 0; i < offer->n_sections; i++) {
        const encore_sdp_section *s = &offer->sections[i];
        if (i == offer->audio_index) {
            write_audio(&w, offer, p, fp_text, setup, c_family);
            continue;
        }
        wb_add(&w, "m=%s 0 %s %s\r\nc=IN IP4 0.0.0.0\r\n", s->kind, s->proto, s->fmt);
        if (s->mid[0])
            wb_add(&w, "a=mid:%s\r\n", s->mid);
    }
    if (w.full)
        return -ENOSPC;
    *out_len = w.len;
    return 0;
}

/* ---- trickled candidates ---- */

/* 0 with *is_name false for an IP literal (copied into dst), 0 with *is_name true for a host name,
 * -EINVAL for anything else. */
static int parse_address(span a, char dst[46], bool *ipv6, bool *is_name)
{
    char tmp[64];
    struct in6_addr a6;
    struct in_addr a4;

    *is_name = false;
    if (a.n == 0 || a.n > 253)
        return -EINVAL;
    if (a.n < sizeof tmp) {
        memcpy(tmp, a.p, a.n);
        tmp[a.n] = '\0';
        if (a.n < 46 && inet_pton(AF_INET, tmp, &a4) == 1) {
            memcpy(dst, tmp, a.n + 1);
            *ipv6 = false;
            return 0;
        }
        if (a.n < 46 && inet_pton(AF_INET6, tmp, &a6) == 1) {
            memcpy(dst, tmp, a.n + 1);
            *ipv6 = true;
            return 0;
        }
    }
    for (size_t i = 0; i < a.n; i++) {
        char c = a.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return -EINVAL;
    }
    *is_name = true;
    return 0;
}

static int parse_cand_type(span t, int *type)
{
    static const char *const names[] = {"host", "srflx", "prflx", "relay"};
    for (int i = 0; i < 4; i++) {
        if (span_ieq(t, names[i])) {
            *type = i;
            return 0;
        }
    }
    return is_token(t, 32) ? -ENOTSUP : -EINVAL;
}

/* Extension name/value pairs after "typ <type>". */
static int parse_cand_extensions(span rest, encore_sdp_candidate *out)
{
    span name, val;
    while (next_token(&rest, &name)) {
        uint32_t num;
        if (!next_token(&rest, &val) || !is_visible(name, 64))
            return -EINVAL;
        if (span_eq(name, "raddr")) {
            bool v6, is_name;
            if (parse_address(val, out->raddr, &v6, &is_name) != 0)
                return -EINVAL;
            out->has_raddr = !is_name;
            if (is_name)
                out->raddr[0] = '\0';
        } else if (span_eq(name, "rport")) {
            if (!parse_u32(val, 65535, &num))
                return -EINVAL;
            out->rport = (uint16_t)num;
        } else if (span_eq(name, "generation")) {
            if (!parse_u32(val, UINT32_MAX, &out->generation))
                return -EINVAL;
        } else if (span_eq(name, "ufrag")) {
            if (!is_ice_chars(val, 1, 256) || !copy_span(out->ufrag, sizeof out->ufrag, val))
                return -EINVAL;
        } else if (!is_visible(val, 256)) {
            return -EINVAL;
        }
    }
    return 0;
}

int encore_sdp_parse_candidate(const char *cand, encore_sdp_candidate *out)
{
    span s, foundation, comp, transport, prio, addr, port, typ, type;
    uint32_t num;
    bool is_name;
    int rc, type_rc;

    if (!cand || !out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    s.p = cand;
    s.n = strnlen(cand, MAX_CANDIDATE_INPUT + 1);
    if (s.n == 0 || s.n > MAX_CANDIDATE_INPUT)
        return -EINVAL;
    if (s.n && s.p[s.n - 1] == '\n')
        s.n--;
    if (s.n && s.p[s.n - 1] == '\r')
        s.n--;
    for (size_t i = 0; i < s.n; i++) {
        if ((unsigned char)s.p[i] < 0x20 && s.p[i] != '\t')
            return -EINVAL;
    }
    if (span_iprefix(s, "a=")) {
        s.p += 2;
        s.n -= 2;
    }
    if (span_iprefix(s, "candidate:")) {
        s.p += 10;
        s.n -= 10;
    }
    if (!next_token(&s, &foundation) || !next_token(&s, &comp) || !next_token(&s, &transport) ||
        !next_token(&s, &prio) || !next_token(&s, &addr) || !next_token(&s, &port) ||
        !next_token(&s, &typ) || !next_token(&s, &type) || !span_eq(typ, "typ"))
        return -EINVAL;
    if (!is_ice_chars(foundation, 1, 32) ||
        !copy_span(out->foundation, sizeof out->foundation, foundation))
        return -EINVAL;
    if (!parse_u32(comp, 256, &out->component) || out->component == 0)
        return -EINVAL;
    if (!is_token(transport, 32))
        return -EINVAL;
    if (!parse_u32(prio, UINT32_MAX, &out->priority) || out->priority == 0)
        return -EINVAL;
    rc = parse_address(addr, out->address, &out->ipv6, &is_name);
    if (rc)
        return rc;
    if (!parse_u32(port, 65535, &num))
        return -EINVAL;
    out->port = (uint16_t)num;
    type_rc = parse_cand_type(type, &out->type);
    if (type_rc == -EINVAL)
        return -EINVAL;
    rc = parse_cand_extensions(s, out);
    if (rc)
        return rc;
    /* Well formed: now refuse what we cannot use. */
    if (!span_ieq(transport, "udp") || is_name || type_rc)
        return -ENOTSUP;
    if (out->port == 0)
        return -EINVAL;
    return 0;
}
