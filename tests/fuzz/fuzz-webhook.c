/* libFuzzer target for server/accounts/webhook.c: the Encore-Signature header and the event
 * body. The first byte picks the mode: '0' header LF body verified at a fixed clock, '1' a body
 * that is signed first (it must then verify) and parsed, '2' a header alone. Invariants on every
 * accepted header and event are checked. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/accounts/webhook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "whsec_0123456789abcdef0123456789abcdef"
#define T0 1700000000

static const encore_webhook_secret secret = {(const uint8_t *)SECRET, sizeof SECRET - 1};

static void check_header(const char *h, size_t len)
{
    encore_webhook_sig sig;
    if (encore_webhook_parse_header(h, len, &sig) == 0 &&
        (sig.t < 1 || sig.t >= 1000000000000 || sig.n_v1 < 1 || sig.n_v1 > ENCORE_WEBHOOK_MAX_SIGS))
        abort();
}

static void check_event(const uint8_t *body, size_t len)
{
    encore_webhook_event ev;
    const char *bad = NULL;
    int rc = encore_webhook_parse_event(body, len, 0, &ev, &bad);
    if (rc == 0) {
        if (ev.amount < 1 || ev.amount > ENCORE_WEBHOOK_DEFAULT_MAX_AMOUNT || ev.user_id < 1 ||
            ev.id[0] == '\0' || strcmp(ev.type, ENCORE_WEBHOOK_TYPE_PAYMENT_SUCCEEDED) != 0 ||
            ev.minor_digits != encore_webhook_currency_digits(ev.currency, 3) || ev.created < 0 ||
            bad != NULL)
            abort();
    } else if (rc == ENCORE_WEBHOOK_EUNSUPPORTED) {
        if (ev.id[0] == '\0' || ev.type[0] == '\0' || ev.amount != 0 ||
            strcmp(ev.type, ENCORE_WEBHOOK_TYPE_PAYMENT_SUCCEEDED) == 0)
            abort();
    } else if (rc != ENCORE_WEBHOOK_EBADEVENT || ev.id[0] != '\0') {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        check_header("", 0);
        check_event(data, 0);
        return 0;
    }
    uint8_t mode = data[0] % 3;
    data++;
    size--;
    if (mode == 0) {
        const uint8_t *lf = memchr(data, '\n', size);
        size_t hl = lf ? (size_t)(lf - data) : size;
        const uint8_t *body = lf ? lf + 1 : data + size;
        size_t bl = size - hl - (lf ? 1 : 0);
        int rc = encore_webhook_verify((const char *)data, hl, body, bl, &secret, 1, T0, 0);
        if (rc > 0 || rc < ENCORE_WEBHOOK_ECRYPTO || rc == ENCORE_WEBHOOK_EINVAL)
            abort();
        check_header((const char *)data, hl);
        check_event(body, bl);
    } else if (mode == 1) {
        char h[ENCORE_WEBHOOK_MAX_HEADER];
        size_t hl = 0;
        if (encore_webhook_sign(&secret, 1, T0, data, size, h, sizeof h, &hl) != 0)
            abort();
        if (encore_webhook_verify(h, hl, data, size, &secret, 1, T0 + 300, 0) != 0)
            abort();
        if (encore_webhook_verify(h, hl, data, size, &secret, 1, T0 + 301, 0) !=
            ENCORE_WEBHOOK_ESTALE)
            abort();
        check_event(data, size);
    } else {
        check_header((const char *)data, size);
    }
    return 0;
}
