/* Fuzz target for media/dtls: the SDP fingerprint parser over the whole input, then the input cut
 * into datagrams and fed to a fresh DTLS server (or a started client) through encore_dtls_handle,
 * which must never crash, leak, connect or export keys (the fuzzer cannot know the peer's key).
 * Input: byte 0 picks the role (even: server, odd: client); then frames of a 2-byte big-endian
 * length and that many bytes (a short last frame takes what is left). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "media/dtls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static encore_dtls_cert *fuzz_cert;
static size_t sent_bytes;

static void count_send(const uint8_t *data, size_t len, void *user_data)
{
    /* Touch every byte so that ASan checks what OpenSSL hands us. */
    for (size_t i = 0; i < len; i++)
        sent_bytes += data[i];
}

static void fuzz_fingerprint(const uint8_t *data, size_t size)
{
    const char *alg = NULL;
    uint8_t out[ENCORE_DTLS_FP_MAX];
    size_t out_len = 0;
    if (encore_dtls_fingerprint_parse((const char *)data, size, &alg, out, sizeof(out), &out_len) ==
        0) {
        if (!alg || out_len == 0 || out_len > sizeof(out))
            abort();
        /* Whatever parses must be accepted by encore_dtls_new. */
        encore_dtls *d =
            encore_dtls_new(fuzz_cert, ENCORE_DTLS_SERVER, alg, out, out_len, count_send, NULL);
        if (!d)
            abort();
        encore_dtls_free(d);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_cert) {
        fuzz_cert = encore_dtls_cert_new(NULL);
        if (!fuzz_cert)
            abort();
    }
    fuzz_fingerprint(data, size);
    if (size == 0)
        return 0;

    static const uint8_t fp[32] = {0x42};
    encore_dtls_role role = data[0] & 1 ? ENCORE_DTLS_CLIENT : ENCORE_DTLS_SERVER;
    encore_dtls *d = encore_dtls_new(fuzz_cert, role, "sha-256", fp, sizeof(fp), count_send, NULL);
    if (!d)
        abort();
    if (encore_dtls_start(d) < 0)
        goto out;
    size_t i = 1;
    while (i < size) {
        size_t len = size - i >= 2 ? ((size_t)data[i] << 8 | data[i + 1]) : 0;
        i += size - i >= 2 ? 2 : 1;
        if (len > size - i)
            len = size - i;
        /* Copy into an exact-size buffer so reads past the datagram are caught. */
        uint8_t *dgram = malloc(len ? len : 1);
        if (len)
            memcpy(dgram, data + i, len);
        int r = encore_dtls_handle(d, dgram, len);
        free(dgram);
        i += len;
        /* Random input cannot prove the peer's certificate. */
        if (r == ENCORE_DTLS_CONNECTED)
            abort();
        if (encore_dtls_timeout_ms(d) == 0 && encore_dtls_handle_timeout(d) < 0)
            break;
        if (r < 0)
            break;
    }
    encore_srtp_keys keys;
    if (encore_dtls_srtp_keys(d, &keys) == 0)
        abort();
out:
    encore_dtls_close(d);
    encore_dtls_free(d);
    return 0;
}
