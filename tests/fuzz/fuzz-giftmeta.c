/* libFuzzer target for the readers of stored economy metadata (server/economy/gifts.c and
 * vip.c), which rebuild rankings and VIP status from the ledger. Every input goes through both
 * readers. What a reader accepts must be valid JSON that jansson reads to the same values, must
 * satisfy the documented ranges, and must read back identically from its canonical form. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/economy/gifts.h"
#include "server/economy/vip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *load(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)data, size, 0, &jerr);
    if (!root || !json_is_object(root))
        abort(); /* the reader accepted something jansson refuses */
    return root;
}

/* The value of `key` in root must be the integer v or the string s. */
static void same_int(json_t *root, const char *key, int64_t v)
{
    json_t *x = json_object_get(root, key);
    if (!json_is_integer(x) || json_integer_value(x) != v)
        abort();
}

static void same_str(json_t *root, const char *key, const char *s)
{
    json_t *x = json_object_get(root, key);
    if (!json_is_string(x) || strcmp(json_string_value(x), s) != 0)
        abort();
}

static void check_gift(const uint8_t *data, size_t size, const encore_gift_record *g)
{
    if (g->from <= 0 || g->to <= 0 || g->from == g->to || g->agent < 0 || g->agent == g->to ||
        g->count < 1 || g->count > ENCORE_CATALOG_MAX_COUNT || g->price < 1 ||
        g->price > ENCORE_LEDGER_MAX_AMOUNT / g->count || g->gift[0] == '\0' || g->room[0] == '\0')
        abort();
    json_t *root = load(data, size);
    /* Duplicate members: jansson keeps the last one, the reader refuses duplicates of the members
     * it knows, so the values agree. */
    same_int(root, "from", g->from);
    same_int(root, "to", g->to);
    same_int(root, "agent", g->agent);
    same_int(root, "count", g->count);
    same_int(root, "price", g->price);
    same_str(root, "gift", g->gift);
    same_str(root, "room", g->room);
    same_str(root, "show", g->show);
    json_decref(root);
    /* The canonical form (what encore_gifts_plan writes) reads back to the same record. */
    char canon[ENCORE_GIFTS_METADATA_MAX];
    int n = snprintf(canon, sizeof canon,
                     "{\"agent\":%lld,\"count\":%lld,\"from\":%lld,\"gift\":\"%s\",\"price\":%lld,"
                     "\"room\":\"%s\",\"show\":\"%s\",\"to\":%lld}",
                     (long long)g->agent, (long long)g->count, (long long)g->from, g->gift,
                     (long long)g->price, g->room, g->show, (long long)g->to);
    if (n <= 0 || (size_t)n >= sizeof canon)
        abort();
    encore_gift_record again;
    if (encore_gift_record_from_metadata((const uint8_t *)canon, (size_t)n, &again) != 0 ||
        memcmp(&again, g, sizeof again) != 0)
        abort();
}

static void check_vip(const uint8_t *data, size_t size, const encore_vip_record *v)
{
    if (v->user <= 0 || v->rank < 1 || v->rank > ENCORE_CATALOG_RANK_MAX || v->months < 1 ||
        v->months > ENCORE_VIP_MAX_MONTHS || v->price < 1 ||
        v->price > ENCORE_LEDGER_MAX_AMOUNT / v->months || v->tier[0] == '\0')
        abort();
    json_t *root = load(data, size);
    same_int(root, "user", v->user);
    same_int(root, "rank", v->rank);
    same_int(root, "months", v->months);
    same_int(root, "price", v->price);
    same_str(root, "tier", v->tier);
    json_decref(root);
    char canon[ENCORE_VIP_METADATA_MAX];
    int n =
        snprintf(canon, sizeof canon,
                 "{\"months\":%lld,\"price\":%lld,\"rank\":%d,\"tier\":\"%s\",\"user\":%lld}",
                 (long long)v->months, (long long)v->price, v->rank, v->tier, (long long)v->user);
    if (n <= 0 || (size_t)n >= sizeof canon)
        abort();
    encore_vip_record again;
    if (encore_vip_record_from_metadata((const uint8_t *)canon, (size_t)n, &again) != 0 ||
        memcmp(&again, v, sizeof again) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    encore_gift_record g;
    int rc = encore_gift_record_from_metadata(data, size, &g);
    if (rc == 0)
        check_gift(data, size, &g);
    else if (rc != ENCORE_GIFTS_EMETADATA || g.from != 0 || g.gift[0] != '\0')
        abort();

    encore_vip_record v;
    rc = encore_vip_record_from_metadata(data, size, &v);
    if (rc == 0)
        check_vip(data, size, &v);
    else if (rc != ENCORE_VIP_EMETADATA || v.user != 0 || v.tier[0] != '\0')
        abort();
    return 0;
}
