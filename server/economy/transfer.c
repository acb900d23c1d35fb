/* Transfer requests: the account naming rules, request validation (pure, allocation-free), the
 * canonical form with its hash that idempotency compares, the stored legs text and the records
 * read back. Runs on any thread; keeps no state. It must not touch the database: stores get
 * requests only in the canonical form built here. */
#include "config.h"

#include <jansson.h>
#include <stdarg.h>
#include <string.h>

#include "server/economy/ledger.h"
#include "server/economy/store.h"

#define ACCOUNT_ID_MAX 64
#define METADATA_INPUT_MAX (4 * ENCORE_LEDGER_METADATA_MAX)
#define AUDIT_LINES_MAX 50

G_DEFINE_QUARK(encore - ledger - error - quark, encore_ledger_error)
G_DEFINE_QUARK(encore - store - error - quark, encore_store_error)

static bool is_id_char(char c)
{
    return g_ascii_isalnum(c) || c == '.' || c == '_' || c == '@' || c == '-';
}

/* True when s[0..] is 1..max bytes all accepted by the id alphabet (plus ':' when colon). */
static bool valid_token(const char *s, size_t max, bool colon)
{
    size_t n = 0;
    for (; s[n]; n++) {
        if (n >= max)
            return false;
        if (!is_id_char(s[n]) && !(colon && s[n] == ':'))
            return false;
    }
    return n > 0;
}

static const struct {
    const char *prefix; /* with the colon */
    encore_account_kind kind;
} prefixed[] = {
    {"wallet:", ENCORE_ACCOUNT_WALLET},
    {"earnings:", ENCORE_ACCOUNT_EARNINGS},
    {"escrow:", ENCORE_ACCOUNT_ESCROW},
};

static const struct {
    const char *name;
    encore_account_kind kind;
} fixed[] = {
    {"platform:revenue", ENCORE_ACCOUNT_PLATFORM},
    {"external:topups", ENCORE_ACCOUNT_EXTERNAL_IN},
    {"external:payouts", ENCORE_ACCOUNT_EXTERNAL_OUT},
};

encore_account_kind encore_ledger_account_kind(const char *name)
{
    if (!name)
        return ENCORE_ACCOUNT_INVALID;
    for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++)
        if (strcmp(name, fixed[i].name) == 0)
            return fixed[i].kind;
    for (size_t i = 0; i < G_N_ELEMENTS(prefixed); i++) {
        size_t plen = strlen(prefixed[i].prefix);
        if (strncmp(name, prefixed[i].prefix, plen) == 0)
            return valid_token(name + plen, ACCOUNT_ID_MAX, false) ? prefixed[i].kind
                                                                   : ENCORE_ACCOUNT_INVALID;
    }
    return ENCORE_ACCOUNT_INVALID;
}

bool encore_ledger_account_may_go_negative(const char *name)
{
    return encore_ledger_account_kind(name) == ENCORE_ACCOUNT_EXTERNAL_IN;
}

bool encore_ledger_account_has_statement(const char *name)
{
    switch (encore_ledger_account_kind(name)) {
    case ENCORE_ACCOUNT_EARNINGS:
    case ENCORE_ACCOUNT_ESCROW:
    case ENCORE_ACCOUNT_EXTERNAL_IN:
    case ENCORE_ACCOUNT_EXTERNAL_OUT:
        return true;
    case ENCORE_ACCOUNT_INVALID:
    case ENCORE_ACCOUNT_WALLET:
    case ENCORE_ACCOUNT_PLATFORM:
        break;
    }
    return false;
}

void encore_store_statement_line_free(gpointer data)
{
    encore_statement_line *line = data;
    if (!line)
        return;
    g_free(line->request_id);
    g_free(line->kind);
    g_free(line->metadata);
    g_free(line);
}

static bool valid_kind(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        if (n >= ENCORE_LEDGER_KIND_MAX)
            return false;
        char c = s[n];
        if (!(g_ascii_islower(c) || g_ascii_isdigit(c) || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return n > 0;
}

static encore_ledger_status fail(const char **detail, encore_ledger_status status, const char *why)
{
    if (detail)
        *detail = why;
    return status;
}

encore_ledger_status encore_transfer_check(const encore_transfer_req *req, const char **detail)
{
    if (!req)
        return fail(detail, ENCORE_LEDGER_INVALID, "no request");
    if (!req->id || !valid_token(req->id, ENCORE_LEDGER_ID_MAX, true))
        return fail(detail, ENCORE_LEDGER_INVALID,
                    "id must be 1-128 characters of A-Z a-z 0-9 . _ : @ -");
    if (!req->kind || !valid_kind(req->kind))
        return fail(detail, ENCORE_LEDGER_INVALID, "kind must be 1-32 characters of a-z 0-9 . _ -");
    if (req->metadata && strnlen(req->metadata, METADATA_INPUT_MAX + 1) > METADATA_INPUT_MAX)
        return fail(detail, ENCORE_LEDGER_INVALID, "metadata too long");
    if (req->n_legs < 2 || req->n_legs > ENCORE_LEDGER_MAX_LEGS || !req->legs)
        return fail(detail, ENCORE_LEDGER_INVALID, "a transfer has 2 to 16 legs");
    int64_t sum = 0;
    for (size_t i = 0; i < req->n_legs; i++) {
        const encore_leg *leg = &req->legs[i];
        if (encore_ledger_account_kind(leg->account) == ENCORE_ACCOUNT_INVALID)
            return fail(detail, ENCORE_LEDGER_UNKNOWN_ACCOUNT, "unknown account");
        if (leg->amount == 0)
            return fail(detail, ENCORE_LEDGER_INVALID, "zero amount");
        if (leg->amount > ENCORE_LEDGER_MAX_AMOUNT || leg->amount < -ENCORE_LEDGER_MAX_AMOUNT)
            return fail(detail, ENCORE_LEDGER_INVALID, "amount too large");
        for (size_t j = 0; j < i; j++)
            if (strcmp(req->legs[j].account, leg->account) == 0)
                return fail(detail, ENCORE_LEDGER_INVALID, "an account appears in two legs");
        sum += leg->amount; /* bounded: 16 * 10^15 */
    }
    if (sum != 0)
        return fail(detail, ENCORE_LEDGER_INVALID, "legs do not sum to zero");
    return fail(detail, ENCORE_LEDGER_OK, "ok");
}

encore_ledger_status encore_transfer_move(encore_transfer_req *req, encore_leg *legs,
                                          const char *id, const char *kind, const char *from,
                                          const char *to, int64_t amount)
{
    memset(req, 0, sizeof(*req));
    if (amount <= 0 || amount > ENCORE_LEDGER_MAX_AMOUNT)
        return ENCORE_LEDGER_INVALID;
    legs[0] = (encore_leg){from, -amount};
    legs[1] = (encore_leg){to, amount};
    *req = (encore_transfer_req){.id = id, .kind = kind, .legs = legs, .n_legs = 2};
    return ENCORE_LEDGER_OK;
}

const char *encore_ledger_status_name(encore_ledger_status status)
{
    switch (status) {
    case ENCORE_LEDGER_OK:
        return "ok";
    case ENCORE_LEDGER_INSUFFICIENT_FUNDS:
        return "insufficient_funds";
    case ENCORE_LEDGER_IDEMPOTENCY_CONFLICT:
        return "idempotency_conflict";
    case ENCORE_LEDGER_INVALID:
        return "invalid_request";
    case ENCORE_LEDGER_UNKNOWN_ACCOUNT:
        return "unknown_account";
    case ENCORE_LEDGER_STORE_ERROR:
        return "store_error";
    case ENCORE_LEDGER_CLOSED:
        return "closed";
    case ENCORE_LEDGER_OVERLOADED:
        return "overloaded";
    }
    return "unknown";
}

void encore_store_hex(const uint8_t *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * len] = '\0';
}

static void hash_bytes(GChecksum *h, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    uint8_t len[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    g_checksum_update(h, len, sizeof(len));
    if (n)
        g_checksum_update(h, (const guchar *)s, n);
}

/* Canonical encoding: a version tag, then length-prefixed kind, a metadata presence byte and
 * length-prefixed canonical metadata, the leg count, and each leg (sorted by account) as a
 * length-prefixed account and its amount as 8 big-endian bytes. */
static void compute_hash(encore_store_item *item)
{
    GChecksum *h = g_checksum_new(G_CHECKSUM_SHA256);
    static const char tag[] = "encore-ledger-request-v1";
    g_checksum_update(h, (const guchar *)tag, sizeof(tag));
    hash_bytes(h, item->kind);
    uint8_t has_meta = item->metadata != NULL;
    g_checksum_update(h, &has_meta, 1);
    hash_bytes(h, item->metadata);
    uint8_t n = (uint8_t)item->n_legs;
    g_checksum_update(h, &n, 1);
    for (size_t i = 0; i < item->n_legs; i++) {
        hash_bytes(h, item->legs[i].account);
        uint64_t v = (uint64_t)item->legs[i].amount;
        uint8_t be[8];
        for (int b = 0; b < 8; b++)
            be[b] = (uint8_t)(v >> (56 - 8 * b));
        g_checksum_update(h, be, sizeof(be));
    }
    gsize len = sizeof(item->hash);
    g_checksum_get_digest(h, item->hash, &len);
    g_checksum_free(h);
    encore_store_hex(item->hash, sizeof(item->hash), item->hash_hex);
}

static encore_ledger_status canonical_metadata(const char *text, char **out, const char **detail)
{
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return fail(detail, ENCORE_LEDGER_INVALID, "metadata is not valid JSON");
    encore_ledger_status st = ENCORE_LEDGER_OK;
    char *dumped = NULL;
    if (!json_is_object(root)) {
        st = fail(detail, ENCORE_LEDGER_INVALID, "metadata is not a JSON object");
        goto out_decref;
    }
    dumped = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    if (!dumped || strlen(dumped) > ENCORE_LEDGER_METADATA_MAX) {
        st = fail(detail, ENCORE_LEDGER_INVALID, "metadata too long");
        goto out_decref;
    }
    *out = g_strdup(dumped);
out_decref:
    free(dumped);
    json_decref(root);
    return st;
}

encore_ledger_status encore_store_item_init(encore_store_item *item, const encore_transfer_req *req,
                                            const char **detail)
{
    memset(item, 0, sizeof(*item));
    encore_ledger_status st = encore_transfer_check(req, detail);
    if (st != ENCORE_LEDGER_OK)
        return st;
    if (req->metadata) {
        st = canonical_metadata(req->metadata, &item->metadata, detail);
        if (st != ENCORE_LEDGER_OK)
            return st;
    }
    item->id = g_strdup(req->id);
    item->kind = g_strdup(req->kind);
    item->n_legs = req->n_legs;
    /* Insertion sort by account name: at most 16 legs. */
    for (size_t i = 0; i < req->n_legs; i++) {
        size_t j = i;
        while (j > 0 && strcmp(item->legs[j - 1].account, req->legs[i].account) > 0) {
            item->legs[j] = item->legs[j - 1];
            j--;
        }
        item->legs[j].account = g_strdup(req->legs[i].account);
        item->legs[j].amount = req->legs[i].amount;
        item->legs[j].allow_negative = encore_ledger_account_may_go_negative(req->legs[i].account);
        item->legs[j].statement = encore_ledger_account_has_statement(req->legs[i].account);
    }
    compute_hash(item);
    item->legs_json = encore_store_legs_json(item->legs, item->n_legs);
    item->request_key = encore_store_request_key(item->id);
    return ENCORE_LEDGER_OK;
}

int64_t encore_store_request_key(const char *request_id)
{
    GChecksum *h = g_checksum_new(G_CHECKSUM_SHA256);
    static const char tag[] = "encore-ledger-request-key-v1";
    g_checksum_update(h, (const guchar *)tag, sizeof(tag));
    g_checksum_update(h, (const guchar *)request_id, (gssize)strlen(request_id));
    uint8_t digest[32];
    gsize len = sizeof(digest);
    g_checksum_get_digest(h, digest, &len);
    g_checksum_free(h);
    uint64_t key = 0;
    for (int i = 0; i < 8; i++)
        key = key << 8 | digest[i];
    return (int64_t)key;
}

void encore_store_item_clear(encore_store_item *item)
{
    if (!item)
        return;
    g_free(item->id);
    g_free(item->kind);
    g_free(item->metadata);
    g_free(item->legs_json);
    for (size_t i = 0; i < item->n_legs; i++)
        g_free(item->legs[i].account);
    memset(item, 0, sizeof(*item));
}

char *encore_store_legs_json(const encore_store_leg *legs, size_t n_legs)
{
    /* Built by hand (no printf): it runs for every request. */
    GString *out = g_string_sized_new(48 * n_legs + 2);
    g_string_append_c(out, '[');
    for (size_t i = 0; i < n_legs; i++) {
        g_string_append(out, i ? ",[\"" : "[\"");
        g_string_append(out, legs[i].account);
        g_string_append(out, "\",");
        char digits[24];
        size_t n = 0;
        uint64_t v = legs[i].amount < 0 ? 0 - (uint64_t)legs[i].amount : (uint64_t)legs[i].amount;
        do {
            digits[n++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        if (legs[i].amount < 0)
            g_string_append_c(out, '-');
        while (n)
            g_string_append_c(out, digits[--n]);
        g_string_append_c(out, ']');
    }
    g_string_append_c(out, ']');
    return g_string_free(out, FALSE);
}

/* One canonical integer at text[*pos..len): optional '-', no leading zero, not zero, within
 * +-ENCORE_LEDGER_MAX_AMOUNT. */
static bool parse_amount(const char *text, size_t len, size_t *pos, int64_t *out)
{
    size_t i = *pos;
    bool neg = i < len && text[i] == '-';
    i += neg;
    size_t start = i;
    int64_t v = 0;
    while (i < len && g_ascii_isdigit(text[i])) {
        if (i - start >= 16) /* 10^15 has 16 digits */
            return false;
        v = v * 10 + (text[i] - '0');
        i++;
    }
    if (i == start || text[start] == '0' || v > ENCORE_LEDGER_MAX_AMOUNT)
        return false;
    *out = neg ? -v : v;
    *pos = i;
    return true;
}

gboolean encore_store_legs_parse(const char *text, size_t len, encore_ledger_record *rec)
{
    encore_leg legs[ENCORE_LEDGER_MAX_LEGS];
    char names[ENCORE_LEDGER_MAX_LEGS][ENCORE_LEDGER_ACCOUNT_MAX + 1];
    size_t n = 0, i = 0;
    if (!text || len < 2 || text[i++] != '[')
        return FALSE;
    for (;;) {
        if (n == ENCORE_LEDGER_MAX_LEGS || len - i < 2 || text[i] != '[' || text[i + 1] != '"')
            return FALSE;
        i += 2;
        size_t start = i;
        while (i < len && text[i] != '"')
            i++;
        size_t name_len = i - start;
        if (i == len || name_len == 0 || name_len > ENCORE_LEDGER_ACCOUNT_MAX)
            return FALSE;
        memcpy(names[n], text + start, name_len);
        names[n][name_len] = '\0';
        if (strlen(names[n]) != name_len ||
            encore_ledger_account_kind(names[n]) == ENCORE_ACCOUNT_INVALID ||
            (n > 0 && strcmp(names[n - 1], names[n]) >= 0))
            return FALSE;
        i++;
        if (i == len || text[i++] != ',')
            return FALSE;
        legs[n].account = names[n];
        if (!parse_amount(text, len, &i, &legs[n].amount))
            return FALSE;
        n++;
        if (i == len || text[i++] != ']' || i == len)
            return FALSE;
        if (text[i] == ']')
            break;
        if (text[i++] != ',')
            return FALSE;
    }
    if (i + 1 != len)
        return FALSE;
    rec->legs = g_new(encore_leg, n);
    for (size_t k = 0; k < n; k++) {
        rec->legs[k].account = g_strdup(legs[k].account);
        rec->legs[k].amount = legs[k].amount;
    }
    rec->n_legs = n;
    return TRUE;
}

encore_ledger_record *encore_store_record_new(int64_t transfer_id, encore_ledger_status status,
                                              int64_t created_us, const char *request_id,
                                              const char *kind, const char *metadata)
{
    encore_ledger_record *r = g_new0(encore_ledger_record, 1);
    r->transfer_id = transfer_id;
    r->status = status;
    r->created_us = created_us;
    r->request_id = g_strdup(request_id);
    r->kind = g_strdup(kind);
    r->metadata = g_strdup(metadata);
    return r;
}

void encore_ledger_record_free(encore_ledger_record *record)
{
    if (!record)
        return;
    for (size_t i = 0; i < record->n_legs; i++)
        g_free((char *)record->legs[i].account);
    g_free(record->legs);
    g_free(record->request_id);
    g_free(record->kind);
    g_free(record->metadata);
    g_free(record);
}

void encore_store_record_free(gpointer record)
{
    encore_ledger_record_free(record);
}

void encore_store_audit_violation(GString *report, unsigned *count, const char *fmt, ...)
{
    if (*count < AUDIT_LINES_MAX) {
        va_list ap;
        va_start(ap, fmt);
        g_string_append(report, "  VIOLATION: ");
        g_string_append_vprintf(report, fmt, ap);
        g_string_append_c(report, '\n');
        va_end(ap);
    } else if (*count == AUDIT_LINES_MAX) {
        g_string_append(report, "  (more violations of this kind not shown)\n");
    }
    (*count)++;
}
