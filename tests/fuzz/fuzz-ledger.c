/* libFuzzer target for server/economy/transfer.c and split.c: arbitrary bytes become a transfer
 * request (lines: id, kind, metadata or "-", then "account amount" legs) checked by
 * encore_transfer_check() and canonicalized by encore_store_item_init(); what passes must really
 * satisfy every rule, and its hash must not depend on the order of the legs. The first leg's
 * amount and two shares also go through encore_split(). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "server/economy/ledger.h"
#include "server/economy/split.h"
#include "server/economy/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINES (3 + ENCORE_LEDGER_MAX_LEGS + 2)

static void check_split(int64_t price, uint32_t s, uint32_t a)
{
    int64_t ps, pa, pp;
    if (encore_split(price, s, a, &ps, &pa, &pp) != 0) {
        if (price >= 0 && s + (uint64_t)a <= 10000)
            abort();
        return;
    }
    if (ps < 0 || pa < 0 || pp < 0 || ps + pa + pp != price)
        abort();
    __int128 P = price;
    if ((__int128)ps * 10000 > P * s || ((__int128)ps + 1) * 10000 <= P * s)
        abort();
    if ((__int128)pa * 10000 > P * a || ((__int128)pa + 1) * 10000 <= P * a)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *text = g_strndup((const char *)data, size); /* stops at an embedded NUL */
    char **lines = g_strsplit(text, "\n", MAX_LINES);
    size_t n = g_strv_length(lines);
    encore_leg legs[ENCORE_LEDGER_MAX_LEGS + 2];
    char *accounts[ENCORE_LEDGER_MAX_LEGS + 2] = {0};
    size_t n_legs = 0;
    for (size_t i = 3; i < n && n_legs < G_N_ELEMENTS(legs); i++) {
        char *sp = strrchr(lines[i], ' ');
        accounts[n_legs] = sp ? g_strndup(lines[i], (gsize)(sp - lines[i])) : g_strdup(lines[i]);
        legs[n_legs].account = accounts[n_legs];
        legs[n_legs].amount = sp ? g_ascii_strtoll(sp + 1, NULL, 10) : 0;
        n_legs++;
    }
    encore_transfer_req req = {
        .id = n > 0 ? lines[0] : NULL,
        .kind = n > 1 ? lines[1] : NULL,
        .metadata = n > 2 && strcmp(lines[2], "-") != 0 ? lines[2] : NULL,
        .legs = legs,
        .n_legs = n_legs,
    };
    const char *detail = NULL;
    encore_ledger_status st = encore_transfer_check(&req, &detail);
    if (!detail)
        abort();
    if (st == ENCORE_LEDGER_OK) {
        /* The rules really hold. */
        __int128 sum = 0;
        if (n_legs < 2 || n_legs > ENCORE_LEDGER_MAX_LEGS)
            abort();
        for (size_t i = 0; i < n_legs; i++) {
            if (legs[i].amount == 0 || legs[i].amount > ENCORE_LEDGER_MAX_AMOUNT ||
                legs[i].amount < -ENCORE_LEDGER_MAX_AMOUNT)
                abort();
            if (encore_ledger_account_kind(legs[i].account) == ENCORE_ACCOUNT_INVALID)
                abort();
            sum += legs[i].amount;
        }
        if (sum != 0 || strlen(req.id) > ENCORE_LEDGER_ID_MAX)
            abort();
        encore_store_item a, b;
        encore_ledger_status sa = encore_store_item_init(&a, &req, &detail);
        /* The same request with its legs reversed: same canonical form, same hash. */
        for (size_t i = 0; i < n_legs / 2; i++) {
            encore_leg t = legs[i];
            legs[i] = legs[n_legs - 1 - i];
            legs[n_legs - 1 - i] = t;
        }
        encore_ledger_status sb = encore_store_item_init(&b, &req, &detail);
        if (sa != sb)
            abort();
        if (sa == ENCORE_LEDGER_OK) {
            if (memcmp(a.hash, b.hash, sizeof(a.hash)) != 0 || strlen(a.hash_hex) != 64)
                abort();
            for (size_t i = 1; i < a.n_legs; i++)
                if (strcmp(a.legs[i - 1].account, a.legs[i].account) >= 0)
                    abort();
            if (a.metadata && strlen(a.metadata) > ENCORE_LEDGER_METADATA_MAX)
                abort();
        }
        encore_store_item_clear(&a);
        encore_store_item_clear(&b);
    }
    if (n_legs > 0)
        check_split(legs[0].amount, (uint32_t)(size % 10007), (uint32_t)(n * 997 % 10007));
    for (size_t i = 0; i < n_legs; i++)
        g_free(accounts[i]);
    g_strfreev(lines);
    g_free(text);
    return 0;
}
