/* SDP for Encore: parses a client's offer (Chromium, GStreamer webrtcbin) into plain data and
 * builds the server's answer (one audio section with Opus, every other m-section rejected). Pure
 * functions, callable from any thread: no allocation, no logging, no global state; every input is
 * bounds-checked. */
#ifndef ENCORE_MEDIA_SDP_H
#define ENCORE_MEDIA_SDP_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

/* Limits. An offer over ENCORE_SDP_MAX_INPUT bytes, with a line over ENCORE_SDP_MAX_LINE bytes
 * (line ending excluded) or with more than ENCORE_SDP_MAX_SECTIONS m-sections is refused.
 * Candidates beyond ENCORE_SDP_MAX_CANDIDATES in the audio section are dropped (counted in
 * candidates_dropped). */
#define ENCORE_SDP_MAX_INPUT (64 * 1024)
#define ENCORE_SDP_MAX_LINE 2048
#define ENCORE_SDP_MAX_SECTIONS 16
#define ENCORE_SDP_MAX_CANDIDATES 16
#define ENCORE_SDP_CANDIDATE_LEN 256 /* a stored candidate value, NUL included */

/* Errors of encore_sdp_parse_offer(). Negative errno values, so that g_strerror() says something.
 */
#define ENCORE_SDP_ERR_INVALID (-EINVAL)          /* not a usable WebRTC offer; see *why */
#define ENCORE_SDP_ERR_NO_OPUS (-EPROTONOSUPPORT) /* audio section without opus/48000/2 */

/* a=setup roles (RFC 8842). NONE: the attribute is absent (offer) or "derive it" (answer params).
 */
enum {
    ENCORE_SDP_SETUP_NONE = 0,
    ENCORE_SDP_SETUP_ACTPASS,
    ENCORE_SDP_SETUP_ACTIVE,
    ENCORE_SDP_SETUP_PASSIVE,
};

/* Media directions, from the point of view of the side that wrote the SDP. */
enum {
    ENCORE_SDP_SENDRECV = 0,
    ENCORE_SDP_SENDONLY,
    ENCORE_SDP_RECVONLY,
    ENCORE_SDP_INACTIVE,
};

/* One m-section of the offer, kept so that the answer can reject it with the same kind, proto and
 * mid. */
typedef struct {
    char kind[16];  /* media type as written: "audio", "video", "application", ... */
    char mid[33];   /* a=mid value, "" when the section has none */
    char proto[40]; /* e.g. "UDP/TLS/RTP/SAVPF", "UDP/DTLS/SCTP" */
    char fmt[64];   /* the format list: as many whole tokens as fit, at least the first one */
    uint16_t
        port;     /* m-line port; 0 with bundle_only false means the offerer disabled the section */
    bool bundled; /* its mid is in an a=group:BUNDLE line */
    bool bundle_only; /* a=bundle-only */
} encore_sdp_section;

/* A parsed offer. Transport attributes (ICE, fingerprint, setup, rtcp-mux) are taken from the
 * chosen audio section, else from the tag section of its BUNDLE group, else from the session level.
 * All strings are NUL-terminated and contain no whitespace or control characters unless said
 * otherwise. */
typedef struct {
    char ice_ufrag[257]; /* 4-256 ice-chars */
    char ice_pwd[257];   /* 22-256 ice-chars */
    bool ice_trickle;    /* a=ice-options lists "trickle" */
    bool ice_lite;       /* session-level a=ice-lite */
    char fp_alg[16];     /* "sha-1", "sha-224", "sha-256", "sha-384" or "sha-512", lowercase */
    uint8_t fp[64];      /* the decoded fingerprint of the first a=fingerprint with one of those */
    size_t fp_len;       /* 20, 28, 32, 48 or 64, matching fp_alg */
    int setup;           /* ENCORE_SDP_SETUP_*; NONE when absent */

    int audio_index; /* index in sections[] of the chosen audio m-section */
    char mid[33];    /* its mid ("" if it has none; the answer then has no BUNDLE group) */
    bool bundled;    /* the audio section is in a BUNDLE group */
    int direction;   /* ENCORE_SDP_SENDRECV etc., as the offerer wrote it (default sendrecv) */

    int opus_pt;                     /* payload type of opus/48000/2 (first one in m-line order) */
    bool opus_fec;                   /* fmtp useinbandfec=1 */
    bool opus_stereo;                /* fmtp stereo=1: the offerer wants to receive stereo */
    bool opus_sprop_stereo;          /* fmtp sprop-stereo=1: the offerer may send stereo */
    uint32_t opus_maxaveragebitrate; /* fmtp maxaveragebitrate, 0 when absent */
    int opus_minptime;               /* fmtp minptime in ms, 0 when absent */
    bool opus_nack;                  /* a=rtcp-fb:<opus pt> nack (or a=rtcp-fb:* nack) */
    bool opus_transport_cc; /* a=rtcp-fb:<opus pt> transport-cc (not answered: no extensions) */
    int red_pt;      /* red/48000/2 whose fmtp names only the Opus PT ("111/111"), -1 when absent */
    bool red_first;  /* RED comes before Opus in the m-line (the offerer prefers to send RED) */
    bool rtcp_mux;   /* always true after a successful parse: rtcp-mux is required */
    bool rtcp_rsize; /* a=rtcp-rsize */

    uint32_t ssrc;   /* first a=ssrc of the audio section, 0 if none */
    char cname[256]; /* its cname: 1-255 visible ASCII characters, "" if absent or not like that */

    int n_sections; /* every m-section of the offer, in order */
    encore_sdp_section sections[ENCORE_SDP_MAX_SECTIONS];

    /* a=candidate values of the audio section (else of its BUNDLE tag section), each starting with
     * "candidate:" (they contain spaces), as written: ready for encore_sdp_parse_candidate(). */
    int n_candidates;
    int candidates_dropped; /* candidates beyond ENCORE_SDP_MAX_CANDIDATES */
    char candidates[ENCORE_SDP_MAX_CANDIDATES][ENCORE_SDP_CANDIDATE_LEN];
    bool end_of_candidates;
} encore_sdp_offer;

/* Parses an offer of len bytes (need not be NUL-terminated; lines end in CRLF or LF, the last one
 * too). Chooses the first enabled audio section with proto UDP/TLS/RTP/SAVPF that offers
 * opus/48000/2. Returns 0 and fills *out, or (with *out unspecified and *why set to a static
 * English sentence): ENCORE_SDP_ERR_INVALID  not SDP (bad line syntax, NUL or control bytes, a line
 * without its ending), input over 64 KiB, line over ENCORE_SDP_MAX_LINE, first line not v=0, no o=
 *                           line, no m= line, over 16 m-sections, a field too long for *out,
 * duplicate mid, BUNDLE naming an unknown mid, no enabled audio section, the audio section not
 * UDP/TLS/RTP/SAVPF or with a format that is not a payload type, missing or malformed ICE
 * ufrag/pwd, no usable fingerprint, a=setup:holdconn or an unknown a=setup value, no a=rtcp-mux;
 *   ENCORE_SDP_ERR_NO_OPUS  the audio section(s) do not offer opus/48000/2.
 * why may be NULL. */
int encore_sdp_parse_offer(const char *sdp, size_t len, encore_sdp_offer *out,
                           const char **why) G_GNUC_WARN_UNUSED_RESULT;

/* What the server puts into its answer. Strings are borrowed for the duration of the call. */
typedef struct {
    bool send; /* true: we send the stage track (answer sendonly, or inactive when the offer
                  does not receive); false: we receive a singer (recvonly, or inactive when
                  the offer does not send) */
    const char *ice_ufrag;   /* 4-256 ice-chars */
    const char *ice_pwd;     /* 22-256 ice-chars */
    const char *fingerprint; /* "sha-256 AB:CD:..." as encore_sdp_format_fingerprint() writes it */
    int setup;               /* ENCORE_SDP_SETUP_ACTIVE or _PASSIVE, or _NONE to derive it with
                                encore_sdp_answer_setup() */
    uint64_t session_id;     /* o= line; keep it below 2^63 (JSEP) */
    uint64_t session_version;
    /* Only when send is true: */
    uint32_t ssrc;           /* 0: no a=ssrc lines */
    const char *cname;       /* required with ssrc */
    const char *msid_stream; /* NULL: no a=msid */
    const char *msid_track;  /* NULL: a=msid with the stream id only */
    /* Always: */
    uint32_t opus_bitrate; /* fmtp maxaveragebitrate, 6000-510000; 0 means 128000 */
    bool allow_red;        /* answer red/48000/2 when the offer has it */
    const char *const
        *candidates; /* n_candidates "candidate:..." values (no "a=", no line ending) */
    size_t n_candidates;
    bool end_of_candidates; /* write a=end-of-candidates */
    const char *ip;         /* c= address, IPv4 or IPv6 literal; NULL means 0.0.0.0 (JSEP) */
    bool ice_lite;          /* session-level a=ice-lite: we only answer checks (RFC 8445 2.5) */
} encore_sdp_answer_params;

/* The DTLS role the answer takes for this offer: ACTIVE when the offer says passive, else PASSIVE.
 */
int encore_sdp_answer_setup(const encore_sdp_offer *offer);

/* The answer's direction for this offer: for send, SENDONLY (INACTIVE if the offer is sendonly or
 * inactive); for receive, RECVONLY (INACTIVE if the offer is recvonly or inactive). */
int encore_sdp_answer_direction(const encore_sdp_offer *offer, bool send);

/* Writes the answer to offer (which encore_sdp_parse_offer() filled) into buf, NUL-terminated, CRLF
 * line endings, and its length without the NUL into *out_len. The audio section answers Opus at the
 * offer's PT with fmtp "minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1;maxaveragebitrate=N;
 * maxplaybackrate=48000", RED when offered and allowed, rtcp-fb nack when offered, rtcp-mux,
 * rtcp-rsize when offered, no header extensions; every other m-section is rejected (port 0, same
 * mid). Returns 0, or -EINVAL  a NULL argument, an offer that is not a parsed one, or a malformed
 * parameter (ICE credentials, fingerprint, setup incompatible with the offer, bitrate, ip, a string
 * with whitespace or control characters, a candidate not starting with "candidate:"); -ENOSPC  buf
 * (cap bytes) is too small; its content is then unspecified. 8 KiB always suffices for 16 sections
 * without candidates; add strlen + 4 bytes per candidate. */
int encore_sdp_build_answer(const encore_sdp_offer *offer, const encore_sdp_answer_params *p,
                            char *buf, size_t cap, size_t *out_len) G_GNUC_WARN_UNUSED_RESULT;

/* ICE candidate types. */
enum {
    ENCORE_SDP_CAND_HOST = 0,
    ENCORE_SDP_CAND_SRFLX,
    ENCORE_SDP_CAND_PRFLX,
    ENCORE_SDP_CAND_RELAY,
};

/* A parsed ICE candidate (RFC 8839). Only UDP candidates with literal addresses are returned. */
typedef struct {
    char foundation[33]; /* 1-32 ice-chars */
    uint32_t component;  /* 1-256 */
    uint32_t priority;
    char address[46]; /* IPv4 or IPv6 literal as written (no zone id) */
    bool ipv6;
    uint16_t port;
    int type;       /* ENCORE_SDP_CAND_* */
    bool has_raddr; /* raddr was given as an IP literal (the value is informational only) */
    char raddr[46];
    uint16_t rport;
    uint32_t generation; /* 0 when absent */
    char ufrag[257];     /* the "ufrag" extension, "" when absent */
} encore_sdp_candidate;

/* Parses a candidate attribute value such as a trickled one: "candidate:1 1 udp 2122260223
 * 127.0.0.1 50000 typ host [raddr A rport P] [generation G] [ufrag U] [other-name value]...". The
 * "candidate:" prefix and an "a=" before it are optional, as is one trailing line ending. cand is
 * NUL-terminated. Returns 0 and fills *out, or -EINVAL   NULL, empty, over 1024 bytes, or not a
 * candidate (missing or malformed fields); -ENOTSUP  well formed but not usable by us: a transport
 * other than UDP (e.g. tcp), or an address that is a name (mDNS "*.local" or any other host name)
 * rather than an IP literal. */
int encore_sdp_parse_candidate(const char *cand,
                               encore_sdp_candidate *out) G_GNUC_WARN_UNUSED_RESULT;

/* Formats n fingerprint bytes as uppercase hex pairs joined by ':' ("AB:CD:...") into buf (NUL
 * included). Returns 0, -EINVAL when n is 0 or over 64 or a pointer is NULL, -ENOSPC when cap < 3 *
 * n. */
int encore_sdp_format_fingerprint(const uint8_t *fp, size_t n, char *buf,
                                  size_t cap) G_GNUC_WARN_UNUSED_RESULT;

#endif
