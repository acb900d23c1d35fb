/* libFuzzer target for media/sdp.c: parses the input as an offer and, when that succeeds, builds
 * both kinds of answer into fixed buffers (checking the NUL and length); also parses the input as a
 * trickled ICE candidate. Single-threaded; allocates nothing itself. */
#include "media/sdp.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const local_candidates[] = {
    "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
    "candidate:2 1 udp 1686052607 203.0.113.7 61000 typ srflx raddr 127.0.0.1 rport 50000",
};

static void answer(const encore_sdp_offer *offer, bool send)
{
    static char buf[8192 + 2 * 128];
    encore_sdp_answer_params p = {0};
    size_t len = 0;

    p.send = send;
    p.ice_ufrag = "fUzZ";
    p.ice_pwd = "0123456789abcdefABCDEF+/";
    p.fingerprint =
        "sha-256 07:3C:71:A6:DB:10:45:7A:AF:E4:19:4E:83:B8:ED:22:57:8C:C1:F6:2B:60:95:CA:FF:"
        "34:69:9E:D3:08:3D:72";
    p.session_id = 1;
    p.session_version = 2;
    p.ssrc = 1234567;
    p.cname = "encore";
    p.msid_stream = "stage";
    p.msid_track = "audio";
    p.allow_red = true;
    p.candidates = local_candidates;
    p.n_candidates = 2;
    p.end_of_candidates = true;
    int rc = encore_sdp_build_answer(offer, &p, buf, sizeof buf, &len);
    /* A parsed offer always gets an answer, and it fits the documented bound. */
    if (rc != 0 || len >= sizeof buf || buf[len] != '\0' || strlen(buf) != len)
        abort();
    /* Our answer is itself a valid SDP that our parser accepts. */
    static encore_sdp_offer back;
    if (encore_sdp_parse_offer(buf, len, &back, NULL) != 0)
        abort();
    /* A buffer one byte short must be refused, not overrun. */
    if (encore_sdp_build_answer(offer, &p, buf, len, &len) != -ENOSPC)
        abort();
}

static void check_candidate(const char *s)
{
    encore_sdp_candidate c;
    int rc = encore_sdp_parse_candidate(s, &c);
    if (rc != 0 && rc != -EINVAL && rc != -ENOTSUP)
        abort();
    if (rc == 0 && (c.port == 0 || c.component == 0 || c.priority == 0 || c.address[0] == '\0' ||
                    c.foundation[0] == '\0' || c.type > ENCORE_SDP_CAND_RELAY))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static encore_sdp_offer offer;
    const char *why = NULL;

    int rc = encore_sdp_parse_offer((const char *)data, size, &offer, &why);
    if (rc == 0) {
        answer(&offer, true);
        answer(&offer, false);
        for (int i = 0; i < offer.n_candidates; i++)
            check_candidate(offer.candidates[i]);
    } else if (!why) {
        abort();
    }

    char cand[1100];
    size_t n = size < sizeof cand - 1 ? size : sizeof cand - 1;
    memcpy(cand, data, n);
    cand[n] = '\0';
    check_candidate(cand);
    return 0;
}
