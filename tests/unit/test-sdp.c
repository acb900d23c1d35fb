/* Unit tests for media/sdp.c: real offers from Chromium, Firefox and GStreamer webrtcbin, broken
 * and hostile offers, the exact answer text, and the ICE candidate parser. Single-threaded; frees
 * everything it allocates. */
#include "media/sdp.h"

#include <string.h>

#include <glib.h>

#define FP_CHROME                                                                                  \
    "0B:30:55:7A:9F:C4:E9:0E:33:58:7D:A2:C7:EC:11:36:5B:80:A5:CA:EF:14:39:5E:83:A8:CD:F2:17:3C:"   \
    "61:86"
#define FP_SERVER                                                                                  \
    "07:3C:71:A6:DB:10:45:7A:AF:E4:19:4E:83:B8:ED:22:57:8C:C1:F6:2B:60:95:CA:FF:34:69:9E:D3:08:"   \
    "3D:72"

/* Chromium 120, getUserMedia audio track added with addTrack, sendonly transceiver (a singer). */
static const char chrome_audio[] =
    "v=0\r\n"
    "o=- 4215775240449105457 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0\r\n"
    "a=extmap-allow-mixed\r\n"
    "a=msid-semantic: WMS 5c3fb3a2-6c43-4e47-9f9e-2a1b3c4d5e6f\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:Xk4d\r\n"
    "a=ice-pwd:8kVbq0m3kXcW0PL6Ra9sYtJz\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 " FP_CHROME "\r\n"
    "a=setup:actpass\r\n"
    "a=mid:0\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=sendonly\r\n"
    "a=msid:5c3fb3a2-6c43-4e47-9f9e-2a1b3c4d5e6f 0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6\r\n"
    "a=rtcp-mux\r\n"
    "a=rtcp-rsize\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "a=rtcp-fb:111 transport-cc\r\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "a=rtpmap:63 red/48000/2\r\n"
    "a=fmtp:63 111/111\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:13 CN/8000\r\n"
    "a=rtpmap:110 telephone-event/48000\r\n"
    "a=rtpmap:126 telephone-event/8000\r\n"
    "a=ssrc:2863311530 cname:kQ4dW0xYvZr1fTz8\r\n"
    "a=ssrc:2863311530 msid:5c3fb3a2-6c43-4e47-9f9e-2a1b3c4d5e6f "
    "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6\r\n";

/* Chromium 120 listener page with recvonly audio, a recvonly video transceiver and a data channel.
 */
static const char chrome_av_data[] =
    "v=0\r\n"
    "o=- 8123456789012345678 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0 1 2\r\n"
    "a=extmap-allow-mixed\r\n"
    "a=msid-semantic: WMS\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:pQ7r\r\n"
    "a=ice-pwd:Zt3nV9xK2mLw8sQ4yB6cH1dF\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 " FP_CHROME "\r\n"
    "a=setup:actpass\r\n"
    "a=mid:0\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=recvonly\r\n"
    "a=rtcp-mux\r\n"
    "a=rtcp-rsize\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "a=rtcp-fb:111 transport-cc\r\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "a=rtpmap:63 red/48000/2\r\n"
    "a=fmtp:63 111/111\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:13 CN/8000\r\n"
    "a=rtpmap:110 telephone-event/48000\r\n"
    "a=rtpmap:126 telephone-event/8000\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 106 107 108 109 127 125 39 40 45 46 98 99 "
    "100 "
    "101 112 113 116 117 118\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:pQ7r\r\n"
    "a=ice-pwd:Zt3nV9xK2mLw8sQ4yB6cH1dF\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 " FP_CHROME "\r\n"
    "a=setup:actpass\r\n"
    "a=mid:1\r\n"
    "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\n"
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
    "a=extmap:13 urn:3gpp:video-orientation\r\n"
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n"
    "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n"
    "a=recvonly\r\n"
    "a=rtcp-mux\r\n"
    "a=rtcp-rsize\r\n"
    "a=rtpmap:96 VP8/90000\r\n"
    "a=rtcp-fb:96 goog-remb\r\n"
    "a=rtcp-fb:96 transport-cc\r\n"
    "a=rtcp-fb:96 ccm fir\r\n"
    "a=rtcp-fb:96 nack\r\n"
    "a=rtcp-fb:96 nack pli\r\n"
    "a=rtpmap:97 rtx/90000\r\n"
    "a=fmtp:97 apt=96\r\n"
    "a=rtpmap:102 H264/90000\r\n"
    "a=rtcp-fb:102 nack\r\n"
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n"
    "a=rtpmap:103 rtx/90000\r\n"
    "a=fmtp:103 apt=102\r\n"
    "a=rtpmap:39 AV1/90000\r\n"
    "a=fmtp:39 level-idx=5;profile=0;tier=0\r\n"
    "a=rtpmap:98 VP9/90000\r\n"
    "a=fmtp:98 profile-id=0\r\n"
    "a=rtpmap:116 red/90000\r\n"
    "a=rtpmap:118 ulpfec/90000\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:pQ7r\r\n"
    "a=ice-pwd:Zt3nV9xK2mLw8sQ4yB6cH1dF\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 " FP_CHROME "\r\n"
    "a=setup:actpass\r\n"
    "a=mid:2\r\n"
    "a=sctp-port:5000\r\n"
    "a=max-message-size:262144\r\n";

/* GStreamer 1.22 webrtcbin (bundle-policy=max-bundle) after gathering, with opusenc ! rtpopuspay
 * pt=96. */
static const char webrtcbin_audio[] =
    "v=0\r\n"
    "o=- 1961463431306389736 0 IN IP4 0.0.0.0\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=ice-options:trickle\r\n"
    "a=group:BUNDLE audio0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 96\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=setup:actpass\r\n"
    "a=ice-ufrag:Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z\r\n"
    "a=ice-pwd:Cd5fGh8jKl1mNo4pQr7sTu0vWx3yZa6b\r\n"
    "a=rtcp-mux\r\n"
    "a=rtcp-rsize\r\n"
    "a=sendrecv\r\n"
    "a=rtpmap:96 OPUS/48000/2\r\n"
    "a=rtcp-fb:96 nack\r\n"
    "a=rtcp-fb:96 nack pli\r\n"
    "a=fmtp:96 sprop-maxcapturerate=48000;sprop-stereo=1\r\n"
    "a=ssrc:1569468513 msid:user3211076374@host-68e2e8c0 webrtctransceiver0\r\n"
    "a=ssrc:1569468513 cname:user3211076374@host-68e2e8c0\r\n"
    "a=mid:audio0\r\n"
    "a=fingerprint:sha-256 " FP_CHROME "\r\n"
    "a=candidate:1 1 UDP 2015363327 127.0.0.1 43513 typ host\r\n"
    "a=candidate:2 1 TCP 1015021823 127.0.0.1 9 typ host tcptype active\r\n"
    "a=candidate:3 1 TCP 1010827519 127.0.0.1 50139 typ host tcptype passive\r\n"
    "a=end-of-candidates\r\n";

/* Firefox 120: fingerprint at session level, fmtp before rtpmap, hex ICE credentials. */
static const char firefox_audio[] =
    "v=0\r\n"
    "o=mozilla...THIS_IS_SDPARTA-99.0 4294967296000000000 0 IN IP4 0.0.0.0\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=fingerprint:sha-256 " FP_CHROME "\r\n"
    "a=group:BUNDLE 0\r\n"
    "a=ice-options:trickle\r\n"
    "a=msid-semantic:WMS *\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 109 9 0 8 101\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=sendrecv\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    "a=extmap:2/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level\r\n"
    "a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=ice-pwd:b0f2e1c2d3a4958677c8a9b0c1d2e3f4\r\n"
    "a=ice-ufrag:a1b2c3d4\r\n"
    "a=mid:0\r\n"
    "a=msid:{7c1a0a52-52e3-4f4b-9d7c-0a1b2c3d4e5f} {e2d1c0b9-a8f7-4e6d-b5c4-a3b2c1d0e9f8}\r\n"
    "a=rtcp-mux\r\n"
    "a=rtpmap:109 opus/48000/2\r\n"
    "a=rtpmap:9 G722/8000/1\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=setup:actpass\r\n"
    "a=ssrc:3154231219 cname:{0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d}\r\n";

/* Video first (mid v), audio second and bundled onto it without its own transport attributes. */
static const char video_first[] =
    "v=0\r\n"
    "o=- 1 1 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE v a\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:TaGu\r\n"
    "a=ice-pwd:TagPasswordTagPassword\r\n"
    "a=fingerprint:sha-1 00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33\r\n"
    "a=setup:passive\r\n"
    "a=mid:v\r\n"
    "a=rtcp-mux\r\n"
    "a=rtpmap:96 VP8/90000\r\n"
    "a=candidate:7 1 udp 2122260223 127.0.0.1 40000 typ host\r\n"
    "m=audio 0 UDP/TLS/RTP/SAVPF 111\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=bundle-only\r\n"
    "a=mid:a\r\n"
    "a=rtpmap:111 opus/48000/2\r\n";

static const char *const server_candidates[] = {
    "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
};

static char *replace(const char *s, const char *from, const char *to)
{
    GString *g = g_string_new(s);
    g_string_replace(g, from, to, 0);
    return g_string_free(g, FALSE);
}

static encore_sdp_offer *parse_ok(const char *sdp)
{
    encore_sdp_offer *o = g_new0(encore_sdp_offer, 1);
    const char *why = NULL;
    int rc = encore_sdp_parse_offer(sdp, strlen(sdp), o, &why);
    if (rc != 0)
        g_error("parse failed (%d): %s", rc, why);
    return o;
}

static int parse_rc(const char *sdp, size_t len, const char **why)
{
    encore_sdp_offer *o = g_new0(encore_sdp_offer, 1);
    *why = NULL;
    int rc = encore_sdp_parse_offer(sdp, len, o, why);
    g_free(o);
    return rc;
}

static void expect_invalid(const char *sdp, const char *why_part)
{
    const char *why = NULL;
    g_assert_cmpint(parse_rc(sdp, strlen(sdp), &why), ==, ENCORE_SDP_ERR_INVALID);
    g_assert_nonnull(why);
    if (why_part && !strstr(why, why_part))
        g_error("expected a reason containing \"%s\", got \"%s\"", why_part, why);
}

static encore_sdp_answer_params default_params(void)
{
    encore_sdp_answer_params p = {0};
    p.ice_ufrag = "sErV";
    p.ice_pwd = "0123456789abcdefABCDEF+/";
    p.fingerprint = "sha-256 " FP_SERVER;
    p.session_id = 1;
    p.session_version = 1;
    p.allow_red = true;
    p.candidates = server_candidates;
    p.n_candidates = 1;
    p.end_of_candidates = true;
    return p;
}

static char *answer_ok(const encore_sdp_offer *o, const encore_sdp_answer_params *p)
{
    char *buf = g_malloc(16384);
    size_t len = 0;
    int rc = encore_sdp_build_answer(o, p, buf, 16384, &len);
    g_assert_cmpint(rc, ==, 0);
    g_assert_cmpuint(len, ==, strlen(buf));
    return buf;
}

static void assert_has_line(const char *sdp, const char *line)
{
    g_autofree char *needle = g_strdup_printf("\r\n%s\r\n", line);
    if (!strstr(sdp, needle))
        g_error("answer lacks line \"%s\":\n%s", line, sdp);
}

static void assert_no_line_prefix(const char *sdp, const char *prefix)
{
    g_autofree char *needle = g_strdup_printf("\r\n%s", prefix);
    if (strstr(sdp, needle))
        g_error("answer has a line starting \"%s\":\n%s", prefix, sdp);
}

/* ---- offers ---- */

static void test_chrome_audio(void)
{
    g_autofree encore_sdp_offer *o = parse_ok(chrome_audio);
    g_assert_cmpstr(o->ice_ufrag, ==, "Xk4d");
    g_assert_cmpstr(o->ice_pwd, ==, "8kVbq0m3kXcW0PL6Ra9sYtJz");
    g_assert_true(o->ice_trickle);
    g_assert_false(o->ice_lite);
    g_assert_cmpstr(o->fp_alg, ==, "sha-256");
    g_assert_cmpuint(o->fp_len, ==, 32);
    g_assert_cmpuint(o->fp[0], ==, 0x0B);
    g_assert_cmpuint(o->fp[1], ==, 0x30);
    g_assert_cmpuint(o->fp[31], ==, 0x86);
    g_assert_cmpint(o->setup, ==, ENCORE_SDP_SETUP_ACTPASS);
    g_assert_cmpint(o->audio_index, ==, 0);
    g_assert_cmpstr(o->mid, ==, "0");
    g_assert_true(o->bundled);
    g_assert_cmpint(o->direction, ==, ENCORE_SDP_SENDONLY);
    g_assert_cmpint(o->opus_pt, ==, 111);
    g_assert_true(o->opus_fec);
    g_assert_false(o->opus_stereo);
    g_assert_false(o->opus_sprop_stereo);
    g_assert_cmpint(o->opus_minptime, ==, 10);
    g_assert_cmpuint(o->opus_maxaveragebitrate, ==, 0);
    g_assert_false(o->opus_nack);
    g_assert_true(o->opus_transport_cc);
    g_assert_cmpint(o->red_pt, ==, 63);
    g_assert_false(o->red_first);
    g_assert_true(o->rtcp_mux);
    g_assert_true(o->rtcp_rsize);
    g_assert_cmpuint(o->ssrc, ==, 2863311530u);
    g_assert_cmpstr(o->cname, ==, "kQ4dW0xYvZr1fTz8");
    g_assert_cmpint(o->n_sections, ==, 1);
    g_assert_cmpstr(o->sections[0].kind, ==, "audio");
    g_assert_cmpstr(o->sections[0].proto, ==, "UDP/TLS/RTP/SAVPF");
    g_assert_cmpstr(o->sections[0].fmt, ==, "111 63 9 0 8 13 110 126");
    g_assert_cmpuint(o->sections[0].port, ==, 9);
    g_assert_cmpint(o->n_candidates, ==, 0);
    g_assert_false(o->end_of_candidates);
}

/* The whole answer for a singer's offer, byte for byte. */
static void test_chrome_audio_answer_exact(void)
{
    g_autofree encore_sdp_offer *o = parse_ok(chrome_audio);
    encore_sdp_answer_params p = default_params();
    g_autofree char *ans = answer_ok(o, &p);
    static const char want[] =
        "v=0\r\n"
        "o=encore 1 1 IN IP4 127.0.0.1\r\n"
        "s=-\r\n"
        "t=0 0\r\n"
        "a=group:BUNDLE 0\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\n"
        "c=IN IP4 0.0.0.0\r\n"
        "a=ice-ufrag:sErV\r\n"
        "a=ice-pwd:0123456789abcdefABCDEF+/\r\n"
        "a=ice-options:trickle\r\n"
        "a=fingerprint:sha-256 " FP_SERVER "\r\n"
        "a=setup:passive\r\n"
        "a=mid:0\r\n"
        "a=recvonly\r\n"
        "a=rtcp-mux\r\n"
        "a=rtcp-rsize\r\n"
        "a=rtpmap:111 opus/48000/2\r\n"
        "a=fmtp:111 minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1;maxaveragebitrate=128000;"
        "maxplaybackrate=48000\r\n"
        "a=rtpmap:63 red/48000/2\r\n"
        "a=fmtp:63 111/111\r\n"
        "a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host\r\n"
        "a=end-of-candidates\r\n";
    g_assert_cmpstr(ans, ==, want);

    /* Our own parser reads the answer back. */
    g_autofree encore_sdp_offer *back = parse_ok(ans);
    g_assert_cmpstr(back->ice_ufrag, ==, "sErV");
    g_assert_cmpint(back->direction, ==, ENCORE_SDP_RECVONLY);
    g_assert_cmpint(back->setup, ==, ENCORE_SDP_SETUP_PASSIVE);
    g_assert_cmpint(back->opus_pt, ==, 111);
    g_assert_true(back->opus_stereo);
    g_assert_cmpuint(back->opus_maxaveragebitrate, ==, 128000);
    g_assert_cmpint(back->red_pt, ==, 63);
    g_assert_cmpint(back->n_candidates, ==, 1);
    g_assert_cmpstr(back->candidates[0], ==, server_candidates[0]);
    g_assert_true(back->end_of_candidates);
    g_assert_cmpuint(back->fp[0], ==, 0x07);
}

static void test_chrome_av_data(void)
{
    g_autofree encore_sdp_offer *o = parse_ok(chrome_av_data);
    g_assert_cmpint(o->n_sections, ==, 3);
    g_assert_cmpint(o->audio_index, ==, 0);
    g_assert_cmpint(o->direction, ==, ENCORE_SDP_RECVONLY);
    g_assert_cmpstr(o->sections[1].kind, ==, "video");
    g_assert_cmpstr(o->sections[1].mid, ==, "1");
    /* 25 video payload types do not fit in 63 characters: whole tokens only. */
    g_assert_cmpstr(o->sections[1].fmt, ==,
                    "96 97 102 103 104 105 106 107 108 109 127 125 39 40 45 46 98 99");
    g_assert_true(o->sections[1].bundled);
    g_assert_cmpstr(o->sections[2].kind, ==, "application");
    g_assert_cmpstr(o->sections[2].proto, ==, "UDP/DTLS/SCTP");
    g_assert_cmpstr(o->sections[2].fmt, ==, "webrtc-datachannel");
    g_assert_cmpstr(o->sections[2].mid, ==, "2");

    encore_sdp_answer_params p = default_params();
    p.send = true;
    p.ssrc = 1234567;
    p.cname = "encore";
    p.msid_stream = "stage";
    p.msid_track = "stage-audio";
    p.opus_bitrate = 96000;
    p.n_candidates = 0;
    p.end_of_candidates = false;
    g_autofree char *ans = answer_ok(o, &p);
    g_assert_true(g_str_has_prefix(ans, "v=0\r\no=encore 1 1 IN IP4 127.0.0.1\r\n"));
    assert_has_line(ans, "a=group:BUNDLE 0");
    assert_has_line(ans, "m=audio 9 UDP/TLS/RTP/SAVPF 111 63");
    assert_has_line(ans, "a=sendonly");
    assert_has_line(ans, "a=msid:stage stage-audio");
    assert_has_line(ans, "a=fmtp:111 minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1;"
                         "maxaveragebitrate=96000;maxplaybackrate=48000");
    assert_has_line(ans, "a=ssrc:1234567 cname:encore");
    assert_has_line(ans, "a=ssrc:1234567 msid:stage stage-audio");
    g_assert_nonnull(strstr(ans,
                            "\r\nm=video 0 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 106 107 108 109 "
                            "127 125 39 40 45 46 98 99\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n"
                            "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                            "c=IN IP4 0.0.0.0\r\na=mid:2\r\n"));
    g_assert_true(g_str_has_suffix(ans, "a=mid:2\r\n"));
    assert_no_line_prefix(ans, "a=extmap");
    assert_no_line_prefix(ans, "a=candidate");
    assert_no_line_prefix(ans, "a=end-of-candidates");
    assert_no_line_prefix(ans, "a=rtcp-fb");

    g_autofree encore_sdp_offer *back = parse_ok(ans);
    g_assert_cmpint(back->n_sections, ==, 3);
    g_assert_cmpint(back->audio_index, ==, 0);
    g_assert_cmpuint(back->sections[1].port, ==, 0);
    g_assert_cmpuint(back->sections[2].port, ==, 0);
    g_assert_cmpint(back->direction, ==, ENCORE_SDP_SENDONLY);
    g_assert_cmpuint(back->ssrc, ==, 1234567);
    g_assert_cmpstr(back->cname, ==, "encore");
    g_assert_false(back->sections[1].bundled);
}

static void test_webrtcbin(void)
{
    g_autofree encore_sdp_offer *o = parse_ok(webrtcbin_audio);
    g_assert_cmpint(o->opus_pt, ==, 96);
    g_assert_cmpint(o->red_pt, ==, -1);
    g_assert_true(o->opus_nack);
    g_assert_true(o->opus_sprop_stereo);
    g_assert_false(o->opus_fec);
    g_assert_true(o->ice_trickle); /* session level */
    g_assert_cmpstr(o->ice_ufrag, ==, "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z");
    g_assert_cmpstr(o->mid, ==, "audio0");
    g_assert_cmpint(o->direction, ==, ENCORE_SDP_SENDRECV);
    g_assert_cmpuint(o->ssrc, ==, 1569468513u);
    g_assert_cmpstr(o->cname, ==, "user3211076374@host-68e2e8c0");
    g_assert_cmpint(o->n_candidates, ==, 3);
    g_assert_cmpstr(o->candidates[0], ==, "candidate:1 1 UDP 2015363327 127.0.0.1 43513 typ host");
    g_assert_true(o->end_of_candidates);

    encore_sdp_candidate c;
    g_assert_cmpint(encore_sdp_parse_candidate(o->candidates[0], &c), ==, 0);
    g_assert_cmpstr(c.address, ==, "127.0.0.1");
    g_assert_cmpuint(c.port, ==, 43513);
    g_assert_cmpuint(c.priority, ==, 2015363327u);
    g_assert_cmpint(encore_sdp_parse_candidate(o->candidates[1], &c), ==, -ENOTSUP);
    g_assert_cmpint(encore_sdp_parse_candidate(o->candidates[2], &c), ==, -ENOTSUP);

    encore_sdp_answer_params p = default_params();
    g_autofree char *ans = answer_ok(o, &p);
    assert_has_line(ans, "a=group:BUNDLE audio0");
    assert_has_line(ans, "m=audio 9 UDP/TLS/RTP/SAVPF 96");
    assert_has_line(ans, "a=mid:audio0");
    assert_has_line(ans, "a=recvonly");
    assert_has_line(ans, "a=rtpmap:96 opus/48000/2");
    assert_has_line(ans, "a=rtcp-fb:96 nack");
    assert_has_line(ans, "a=fmtp:96 minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1;"
                         "maxaveragebitrate=128000;maxplaybackrate=48000");
    assert_no_line_prefix(ans, "a=rtpmap:63");
    assert_no_line_prefix(ans, "a=ssrc");
}

static void test_firefox(void)
{
    g_autofree encore_sdp_offer *o = parse_ok(firefox_audio);
    g_assert_cmpint(o->opus_pt, ==, 109);
    g_assert_true(o->opus_stereo);
    g_assert_true(o->opus_fec);
    g_assert_cmpstr(o->fp_alg, ==, "sha-256"); /* from the session level */
    g_assert_cmpuint(o->fp[31], ==, 0x86);
    g_assert_cmpstr(o->ice_ufrag, ==, "a1b2c3d4");
    g_assert_true(o->ice_trickle);
    g_assert_false(o->rtcp_rsize);
    g_assert_cmpstr(o->cname, ==, "{0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d}");

    /* A cname we could not echo is dropped, the offer still stands. */
    g_autofree char *odd = replace(firefox_audio, "cname:{0a1b", "cname:\xc3\xa9{0a1b");
    g_autofree encore_sdp_offer *oo = parse_ok(odd);
    g_assert_cmpuint(oo->ssrc, ==, 3154231219u);
    g_assert_cmpstr(oo->cname, ==, "");

    encore_sdp_answer_params p = default_params();
    g_autofree char *ans = answer_ok(o, &p);
    assert_no_line_prefix(ans, "a=rtcp-rsize");
    assert_has_line(ans, "m=audio 9 UDP/TLS/RTP/SAVPF 109");
}

/* Audio bundled onto a video tag section: transport attributes come from the tag. */
static void test_bundle_tag_fallback(void)
{
    g_autofree encore_sdp_offer *o = parse_ok(video_first);
    g_assert_cmpint(o->audio_index, ==, 1);
    g_assert_cmpstr(o->mid, ==, "a");
    g_assert_cmpstr(o->ice_ufrag, ==, "TaGu");
    g_assert_cmpstr(o->fp_alg, ==, "sha-1");
    g_assert_cmpuint(o->fp_len, ==, 20);
    g_assert_cmpuint(o->fp[10], ==, 0xaa);
    g_assert_cmpint(o->setup, ==, ENCORE_SDP_SETUP_PASSIVE);
    g_assert_true(o->rtcp_mux);
    g_assert_cmpint(o->n_candidates, ==, 1);
    g_assert_true(o->sections[1].bundle_only);

    /* setup passive: we take the active role. */
    g_assert_cmpint(encore_sdp_answer_setup(o), ==, ENCORE_SDP_SETUP_ACTIVE);
    encore_sdp_answer_params p = default_params();
    g_autofree char *ans = answer_ok(o, &p);
    assert_has_line(ans, "a=setup:active");
    assert_has_line(ans, "a=group:BUNDLE a");
    g_assert_nonnull(strstr(ans,
                            "\r\nt=0 0\r\na=group:BUNDLE a\r\nm=video 0 UDP/TLS/RTP/SAVPF 96\r\n"
                            "c=IN IP4 0.0.0.0\r\na=mid:v\r\nm=audio 9 "));
    /* Passive is not a role we may take against a passive offerer. */
    p.setup = ENCORE_SDP_SETUP_PASSIVE;
    char buf[4096];
    size_t len;
    g_assert_cmpint(encore_sdp_build_answer(o, &p, buf, sizeof buf, &len), ==, -EINVAL);
}

static void test_setup_roles(void)
{
    g_autofree encore_sdp_offer *o = parse_ok(chrome_audio);
    encore_sdp_answer_params p = default_params();
    char buf[4096];
    size_t len;

    g_assert_cmpint(encore_sdp_answer_setup(o), ==, ENCORE_SDP_SETUP_PASSIVE);
    p.setup = ENCORE_SDP_SETUP_ACTIVE; /* allowed against actpass */
    g_assert_cmpint(encore_sdp_build_answer(o, &p, buf, sizeof buf, &len), ==, 0);
    assert_has_line(buf, "a=setup:active");

    g_autofree char *active = replace(chrome_audio, "a=setup:actpass", "a=setup:active");
    g_autofree encore_sdp_offer *oa = parse_ok(active);
    g_assert_cmpint(oa->setup, ==, ENCORE_SDP_SETUP_ACTIVE);
    g_assert_cmpint(encore_sdp_build_answer(oa, &p, buf, sizeof buf, &len), ==, -EINVAL);
    p.setup = ENCORE_SDP_SETUP_NONE;
    g_assert_cmpint(encore_sdp_build_answer(oa, &p, buf, sizeof buf, &len), ==, 0);
    assert_has_line(buf, "a=setup:passive");

    g_autofree char *none = replace(chrome_audio, "a=setup:actpass\r\n", "");
    g_autofree encore_sdp_offer *on = parse_ok(none);
    g_assert_cmpint(on->setup, ==, ENCORE_SDP_SETUP_NONE);
    g_assert_cmpint(encore_sdp_answer_setup(on), ==, ENCORE_SDP_SETUP_PASSIVE);

    g_autofree char *hold = replace(chrome_audio, "a=setup:actpass", "a=setup:holdconn");
    expect_invalid(hold, "holdconn");
    g_autofree char *bogus = replace(chrome_audio, "a=setup:actpass", "a=setup:both");
    expect_invalid(bogus, "setup");
}

static void test_directions(void)
{
    static const struct {
        const char *attr;
        int send_dir, recv_dir;
    } cases[] = {
        {"a=sendonly", ENCORE_SDP_INACTIVE, ENCORE_SDP_RECVONLY},
        {"a=recvonly", ENCORE_SDP_SENDONLY, ENCORE_SDP_INACTIVE},
        {"a=sendrecv", ENCORE_SDP_SENDONLY, ENCORE_SDP_RECVONLY},
        {"a=inactive", ENCORE_SDP_INACTIVE, ENCORE_SDP_INACTIVE},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *sdp = replace(chrome_audio, "a=sendonly", cases[i].attr);
        g_autofree encore_sdp_offer *o = parse_ok(sdp);
        g_assert_cmpint(encore_sdp_answer_direction(o, true), ==, cases[i].send_dir);
        g_assert_cmpint(encore_sdp_answer_direction(o, false), ==, cases[i].recv_dir);
    }
    /* A send answer to a sendonly offer is inactive in the text too. */
    g_autofree encore_sdp_offer *o = parse_ok(chrome_audio);
    encore_sdp_answer_params p = default_params();
    p.send = true;
    g_autofree char *ans = answer_ok(o, &p);
    assert_has_line(ans, "a=inactive");
}

static void test_red(void)
{
    encore_sdp_answer_params p = default_params();

    /* Offered but not allowed. */
    g_autofree encore_sdp_offer *o = parse_ok(chrome_audio);
    p.allow_red = false;
    g_autofree char *ans = answer_ok(o, &p);
    assert_has_line(ans, "m=audio 9 UDP/TLS/RTP/SAVPF 111");
    assert_no_line_prefix(ans, "a=rtpmap:63");
    assert_no_line_prefix(ans, "a=fmtp:63");
    p.allow_red = true;

    /* Absent. */
    g_autofree char *nored =
        replace(chrome_audio, "a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n", "");
    g_autofree encore_sdp_offer *on = parse_ok(nored);
    g_assert_cmpint(on->red_pt, ==, -1);
    g_autofree char *ans2 = answer_ok(on, &p);
    assert_has_line(ans2, "m=audio 9 UDP/TLS/RTP/SAVPF 111");
    assert_no_line_prefix(ans2, "a=rtpmap:63");

    /* RED that wraps something else, or has no fmtp, is not RED for Opus. */
    g_autofree char *other = replace(chrome_audio, "a=fmtp:63 111/111", "a=fmtp:63 111/0");
    g_autofree encore_sdp_offer *oo = parse_ok(other);
    g_assert_cmpint(oo->red_pt, ==, -1);
    g_autofree char *trail = replace(chrome_audio, "a=fmtp:63 111/111", "a=fmtp:63 111/");
    g_autofree encore_sdp_offer *ot = parse_ok(trail);
    g_assert_cmpint(ot->red_pt, ==, -1);
    g_autofree char *nofmtp = replace(chrome_audio, "a=fmtp:63 111/111\r\n", "");
    g_autofree encore_sdp_offer *onf = parse_ok(nofmtp);
    g_assert_cmpint(onf->red_pt, ==, -1);

    /* RED preferred by the offerer keeps its place. */
    g_autofree char *first = replace(chrome_audio, "SAVPF 111 63 9", "SAVPF 63 111 9");
    g_autofree encore_sdp_offer *of = parse_ok(first);
    g_assert_cmpint(of->red_pt, ==, 63);
    g_assert_true(of->red_first);
    g_autofree char *ans3 = answer_ok(of, &p);
    assert_has_line(ans3, "m=audio 9 UDP/TLS/RTP/SAVPF 63 111");
    assert_has_line(ans3, "a=fmtp:63 111/111");
}

static void test_no_opus(void)
{
    const char *why;
    g_autofree char *pcmu =
        replace(chrome_audio, "a=rtpmap:111 opus/48000/2", "a=rtpmap:111 ISAC/16000");
    g_assert_cmpint(parse_rc(pcmu, strlen(pcmu), &why), ==, ENCORE_SDP_ERR_NO_OPUS);
    g_assert_nonnull(strstr(why, "opus"));
    g_autofree char *mono = replace(webrtcbin_audio, "OPUS/48000/2", "OPUS/48000");
    g_assert_cmpint(parse_rc(mono, strlen(mono), &why), ==, ENCORE_SDP_ERR_NO_OPUS);
    /* rtpmap present but the PT is not in the m= line. */
    g_autofree char *unlisted = replace(webrtcbin_audio, "SAVPF 96\r\n", "SAVPF 0\r\n");
    g_assert_cmpint(parse_rc(unlisted, strlen(unlisted), &why), ==, ENCORE_SDP_ERR_NO_OPUS);
}

static void test_missing_required(void)
{
    g_autofree char *nofp = replace(chrome_audio, "a=fingerprint:", "a=x-fingerprint:");
    expect_invalid(nofp, "fingerprint");
    g_autofree char *md5 = replace(chrome_audio, "a=fingerprint:sha-256", "a=fingerprint:md5");
    expect_invalid(md5, "fingerprint");
    g_autofree char *shortfp = replace(chrome_audio, ":61:86\r\n", ":61\r\n");
    expect_invalid(shortfp, "fingerprint");
    g_autofree char *noufrag = replace(chrome_audio, "a=ice-ufrag:Xk4d\r\n", "");
    expect_invalid(noufrag, "ice-ufrag");
    g_autofree char *nopwd = replace(chrome_audio, "a=ice-pwd:8kVbq0m3kXcW0PL6Ra9sYtJz\r\n", "");
    expect_invalid(nopwd, "ice-pwd");
    g_autofree char *shortufrag = replace(chrome_audio, "a=ice-ufrag:Xk4d", "a=ice-ufrag:Xk4");
    expect_invalid(shortufrag, "ice-ufrag");
    g_autofree char *badpwd =
        replace(chrome_audio, "8kVbq0m3kXcW0PL6Ra9sYtJz", "8kVbq0m3kXcW0PL6Ra9sYt=z");
    expect_invalid(badpwd, "ice-pwd");
    g_autofree char *nomux = replace(chrome_audio, "a=rtcp-mux\r\n", "");
    expect_invalid(nomux, "rtcp-mux");
    g_autofree char *avp = replace(chrome_audio, "UDP/TLS/RTP/SAVPF", "RTP/AVP");
    expect_invalid(avp, "SAVPF");
    g_autofree char *noaudio = replace(chrome_audio, "m=audio", "m=video");
    expect_invalid(noaudio, "audio");
    g_autofree char *disabled = replace(chrome_audio, "m=audio 9", "m=audio 0");
    expect_invalid(disabled, "audio");
    g_autofree char *noorigin =
        replace(chrome_audio, "o=- 4215775240449105457 2 IN IP4 127.0.0.1\r\n", "");
    expect_invalid(noorigin, "o=");
    g_autofree char *nov = replace(chrome_audio, "v=0\r\n", "");
    expect_invalid(nov, "v=0");
    expect_invalid("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "m=");
    g_autofree char *dupmid = replace(chrome_av_data, "a=mid:1", "a=mid:0");
    expect_invalid(dupmid, "mid");
    g_autofree char *twomid = replace(chrome_audio, "a=mid:0\r\n", "a=mid:0\r\na=mid:x\r\n");
    expect_invalid(twomid, "mid");
    g_autofree char *longmid =
        replace(chrome_audio, "a=mid:0", "a=mid:0123456789012345678901234567890123");
    expect_invalid(longmid, "mid");
    g_autofree char *badbundle = replace(chrome_audio, "a=group:BUNDLE 0", "a=group:BUNDLE 0 7");
    expect_invalid(badbundle, "BUNDLE");
}

/* Every strict prefix either fails, or ends at a line boundary: truncation is never silently taken
 * for a complete line. */
static void test_truncated(void)
{
    size_t n = strlen(chrome_audio);
    int ok = 0;
    for (size_t len = 0; len < n; len++) {
        const char *why;
        char *copy = g_memdup2(chrome_audio, len); /* exact size, so ASan sees overreads */
        int rc = parse_rc(copy, len, &why);
        g_free(copy);
        if (len > 0 && chrome_audio[len - 1] == '\n') {
            if (rc == 0)
                ok++;
            continue;
        }
        g_assert_cmpint(rc, ==, ENCORE_SDP_ERR_INVALID);
    }
    /* The strict prefixes ending after a=rtpmap:111 or one of the 11 lines after it (not the last)
     * are complete offers; every earlier one lacks something required. */
    g_assert_cmpint(ok, ==, 12);
}

static void test_garbage(void)
{
    const char *why;
    static const char *const bad[] = {
        "",
        "hello",
        "hello\r\n",
        "v=0",
        "v=0\r\n",
        "{\"type\":\"offer\",\"sdp\":\"v=0\"}\n",
        "v=1\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=audio\r\n",
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=audio x UDP/TLS/RTP/SAVPF 111\r\n",
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=audio 70000 UDP/TLS/RTP/SAVPF 111\r\n",
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=audio 9 UDP/TLS/RTP/SAVPF\r\n",
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=audio 9 UDP/TLS/RTP/SAVPF opus\r\n",
        "v=0\ro=- 1 1 IN IP4 0.0.0.0\r\n",
        "V=0\r\n",
        "v=0\r\n=x\r\n",
        "v=0\r\nab\r\n",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
        g_assert_cmpint(parse_rc(bad[i], strlen(bad[i]), &why), ==, ENCORE_SDP_ERR_INVALID);

    /* A NUL inside the given length. */
    g_autofree char *nul = g_strdup(chrome_audio);
    nul[100] = '\0';
    g_assert_cmpint(parse_rc(nul, strlen(chrome_audio), &why), ==, ENCORE_SDP_ERR_INVALID);

    /* Random bytes. */
    GRand *r = g_rand_new_with_seed(42);
    for (int round = 0; round < 200; round++) {
        size_t len = (size_t)g_rand_int_range(r, 1, 512);
        char *buf = g_malloc(len);
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)g_rand_int_range(r, 0, 256);
        g_assert_cmpint(parse_rc(buf, len, &why), ==, ENCORE_SDP_ERR_INVALID);
        g_free(buf);
    }
    g_rand_free(r);

    /* An overlong line, an oversized offer, too many sections. */
    GString *g = g_string_new(chrome_audio);
    g_string_append(g, "a=x-long:");
    for (int i = 0; i < ENCORE_SDP_MAX_LINE; i++)
        g_string_append_c(g, 'a');
    g_string_append(g, "\r\n");
    g_assert_cmpint(parse_rc(g->str, g->len, &why), ==, ENCORE_SDP_ERR_INVALID);
    g_assert_nonnull(strstr(why, "overlong"));
    g_string_assign(g, chrome_audio);
    while (g->len <= ENCORE_SDP_MAX_INPUT)
        g_string_append(g, "a=x-filler:0123456789012345678901234567890123456789\r\n");
    g_assert_cmpint(parse_rc(g->str, g->len, &why), ==, ENCORE_SDP_ERR_INVALID);
    g_assert_nonnull(strstr(why, "64 KiB"));
    g_string_assign(g, chrome_audio);
    for (int i = 0; i < ENCORE_SDP_MAX_SECTIONS; i++)
        g_string_append_printf(g, "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:v%d\r\n", i);
    g_assert_cmpint(parse_rc(g->str, g->len, &why), ==, ENCORE_SDP_ERR_INVALID);
    g_assert_nonnull(strstr(why, "16"));
    g_string_free(g, TRUE);

    g_assert_cmpint(encore_sdp_parse_offer(NULL, 0, NULL, NULL), ==, ENCORE_SDP_ERR_INVALID);
}

static void test_lf_only(void)
{
    g_autofree char *lf = replace(chrome_av_data, "\r\n", "\n");
    g_autofree encore_sdp_offer *o = parse_ok(lf);
    g_autofree encore_sdp_offer *crlf = parse_ok(chrome_av_data);
    g_assert_cmpint(memcmp(o, crlf, sizeof *o), ==, 0);
    encore_sdp_answer_params p = default_params();
    g_autofree char *a1 = answer_ok(o, &p);
    g_autofree char *a2 = answer_ok(crlf, &p);
    g_assert_cmpstr(a1, ==, a2);
}

static void test_candidates_cap_and_second_audio(void)
{
    GString *g = g_string_new(webrtcbin_audio);
    for (int i = 0; i < 15; i++)
        g_string_append_printf(g, "a=candidate:%d 1 udp 100 127.0.0.1 %d typ host\r\n", 10 + i,
                               41000 + i);
    g_autofree encore_sdp_offer *o = parse_ok(g->str);
    g_assert_cmpint(o->n_candidates, ==, ENCORE_SDP_MAX_CANDIDATES);
    g_assert_cmpint(o->candidates_dropped, ==, 2);
    g_assert_cmpstr(o->candidates[15], ==, "candidate:22 1 udp 100 127.0.0.1 41012 typ host");
    g_string_free(g, TRUE);

    /* A disabled audio section first: the enabled one after it is chosen, the first rejected. */
    g_autofree char *two =
        g_strconcat("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
                    "m=audio 0 UDP/TLS/RTP/SAVPF 0\r\na=mid:old\r\n",
                    webrtcbin_audio +
                        strlen("v=0\r\no=- 1961463431306389736 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
                               "a=ice-options:trickle\r\na=group:BUNDLE audio0\r\n"),
                    NULL);
    g_autofree encore_sdp_offer *o2 = parse_ok(two);
    g_assert_cmpint(o2->audio_index, ==, 1);
    g_assert_false(o2->bundled);
    encore_sdp_answer_params p = default_params();
    g_autofree char *ans = answer_ok(o2, &p);
    g_assert_true(g_str_has_prefix(ans, "v=0\r\no=encore 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
                                        "m=audio 0 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\n"
                                        "a=mid:old\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\n"));
    assert_no_line_prefix(ans, "a=group");
}

static void test_answer_params(void)
{
    g_autofree encore_sdp_offer *o = parse_ok(chrome_audio);
    char buf[8192];
    size_t len;
    encore_sdp_answer_params p;

#define EXPECT_EINVAL(stmt)                                                                        \
    do {                                                                                           \
        p = default_params();                                                                      \
        stmt;                                                                                      \
        g_assert_cmpint(encore_sdp_build_answer(o, &p, buf, sizeof buf, &len), ==, -EINVAL);       \
    } while (0)
    EXPECT_EINVAL(p.ice_ufrag = "abc");
    EXPECT_EINVAL(p.ice_ufrag = NULL);
    EXPECT_EINVAL(p.ice_pwd = "short");
    EXPECT_EINVAL(p.ice_pwd = "0123456789abcdefABCDEF\r\na=x");
    EXPECT_EINVAL(p.fingerprint = "sha-256 AB:CD");
    EXPECT_EINVAL(p.fingerprint = FP_SERVER);
    EXPECT_EINVAL(p.opus_bitrate = 5999);
    EXPECT_EINVAL(p.opus_bitrate = 510001);
    EXPECT_EINVAL(p.ip = "localhost");
    EXPECT_EINVAL((p.send = true, p.ssrc = 5, p.cname = NULL));
    EXPECT_EINVAL((p.send = true, p.ssrc = 5, p.cname = "two words"));
    EXPECT_EINVAL((p.send = true, p.msid_track = "t"));
    static const char *const bad_cand[] = {"candidate:1 1 udp 1 1.2.3.4 5 typ host\r\na=x"};
    EXPECT_EINVAL((p.candidates = bad_cand, p.n_candidates = 1));
    static const char *const no_prefix[] = {"1 1 udp 1 1.2.3.4 5 typ host"};
    EXPECT_EINVAL((p.candidates = no_prefix, p.n_candidates = 1));
    EXPECT_EINVAL((p.candidates = NULL, p.n_candidates = 1));
#undef EXPECT_EINVAL

    /* A parameter struct with lowercase hex and IPv6: normalised / IP6. */
    p = default_params();
    p.fingerprint =
        "SHA-256 07:3c:71:a6:db:10:45:7a:af:e4:19:4e:83:b8:ed:22:57:8c:c1:f6:2b:60:95:ca:ff:34:"
        "69:9e:d3:08:3d:72";
    p.ip = "::1";
    p.session_id = 9223372036854775807ull;
    p.session_version = 3;
    g_assert_cmpint(encore_sdp_build_answer(o, &p, buf, sizeof buf, &len), ==, 0);
    assert_has_line(buf, "a=fingerprint:sha-256 " FP_SERVER);
    assert_has_line(buf, "c=IN IP6 ::1");
    assert_has_line(buf, "o=encore 9223372036854775807 3 IN IP4 127.0.0.1");

    /* An offer struct that was never parsed. */
    encore_sdp_offer *blank = g_new0(encore_sdp_offer, 1);
    p = default_params();
    g_assert_cmpint(encore_sdp_build_answer(blank, &p, buf, sizeof buf, &len), ==, -EINVAL);
    g_free(blank);
    g_assert_cmpint(encore_sdp_build_answer(NULL, &p, buf, sizeof buf, &len), ==, -EINVAL);
}

static void test_answer_enospc(void)
{
    g_autofree encore_sdp_offer *o = parse_ok(chrome_av_data);
    encore_sdp_answer_params p = default_params();
    g_autofree char *full = answer_ok(o, &p);
    size_t need = strlen(full);
    char *buf = g_malloc(need + 1);
    for (size_t cap = 0; cap <= need; cap++) {
        size_t len = 777;
        g_assert_cmpint(encore_sdp_build_answer(o, &p, buf, cap, &len), ==, -ENOSPC);
        g_assert_cmpuint(len, ==, 777);
    }
    size_t len = 0;
    g_assert_cmpint(encore_sdp_build_answer(o, &p, buf, need + 1, &len), ==, 0);
    g_assert_cmpuint(len, ==, need);
    g_assert_cmpstr(buf, ==, full);
    g_free(buf);
}

/* The header promises 8 KiB for 16 sections without candidates. */
static void test_answer_worst_case_size(void)
{
    GString *g = g_string_new(chrome_audio);
    for (int i = 1; i < ENCORE_SDP_MAX_SECTIONS; i++)
        g_string_append_printf(g,
                               "m=x-longest-kind 9 UDP/TLS/RTP/SAVPF/padding/to/39-chars "
                               "96 97 98 99 100 101 102 103 104 105 106 107 108 109 110 111 112 "
                               "113\r\na=mid:%032d\r\n",
                               i);
    g_autofree encore_sdp_offer *o = parse_ok(g->str);
    g_string_free(g, TRUE);
    encore_sdp_answer_params p = default_params();
    static char ufrag[257], pwd[257];
    memset(ufrag, 'u', 256);
    memset(pwd, 'p', 256);
    p.ice_ufrag = ufrag;
    p.ice_pwd = pwd;
    p.fingerprint =
        "sha-512 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:"
        "99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:"
        "44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";
    p.n_candidates = 0;
    p.send = true;
    p.ssrc = 4294967295u;
    static char cname[256], stream[65], track[65];
    memset(cname, 'c', 255);
    memset(stream, 's', 64);
    memset(track, 't', 64);
    p.cname = cname;
    p.msid_stream = stream;
    p.msid_track = track;
    p.session_id = UINT64_MAX;
    p.session_version = UINT64_MAX;
    p.ip = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
    char *buf = g_malloc(8192);
    size_t len;
    g_assert_cmpint(encore_sdp_build_answer(o, &p, buf, 8192, &len), ==, 0);
    g_assert_cmpuint(len, <, 8192);
    g_free(buf);
}

static void test_format_fingerprint(void)
{
    const uint8_t fp[3] = {0x00, 0xab, 0xff};
    char buf[16];
    g_assert_cmpint(encore_sdp_format_fingerprint(fp, 3, buf, sizeof buf), ==, 0);
    g_assert_cmpstr(buf, ==, "00:AB:FF");
    g_assert_cmpint(encore_sdp_format_fingerprint(fp, 3, buf, 9), ==, 0);
    g_assert_cmpint(encore_sdp_format_fingerprint(fp, 3, buf, 8), ==, -ENOSPC);
    g_assert_cmpint(encore_sdp_format_fingerprint(fp, 0, buf, sizeof buf), ==, -EINVAL);
    g_assert_cmpint(encore_sdp_format_fingerprint(NULL, 3, buf, sizeof buf), ==, -EINVAL);
}

/* ---- candidates ---- */

static void test_candidate_valid(void)
{
    encore_sdp_candidate c;
    g_assert_cmpint(encore_sdp_parse_candidate(
                        "candidate:842163049 1 udp 2122260223 192.168.1.20 54321 typ host "
                        "generation 0 ufrag Xk4d network-id 1 network-cost 10",
                        &c),
                    ==, 0);
    g_assert_cmpstr(c.foundation, ==, "842163049");
    g_assert_cmpuint(c.component, ==, 1);
    g_assert_cmpuint(c.priority, ==, 2122260223u);
    g_assert_cmpstr(c.address, ==, "192.168.1.20");
    g_assert_false(c.ipv6);
    g_assert_cmpuint(c.port, ==, 54321);
    g_assert_cmpint(c.type, ==, ENCORE_SDP_CAND_HOST);
    g_assert_false(c.has_raddr);
    g_assert_cmpuint(c.generation, ==, 0);
    g_assert_cmpstr(c.ufrag, ==, "Xk4d");

    g_assert_cmpint(
        encore_sdp_parse_candidate("a=candidate:1467250027 1 udp 1686052607 203.0.113.7 61000 typ "
                                   "srflx raddr 192.168.1.20 rport 54321 generation 2\r\n",
                                   &c),
        ==, 0);
    g_assert_cmpint(c.type, ==, ENCORE_SDP_CAND_SRFLX);
    g_assert_true(c.has_raddr);
    g_assert_cmpstr(c.raddr, ==, "192.168.1.20");
    g_assert_cmpuint(c.rport, ==, 54321);
    g_assert_cmpuint(c.generation, ==, 2);

    g_assert_cmpint(
        encore_sdp_parse_candidate("2 1 UDP 2122194687 2001:db8::1:2 50000 typ host", &c), ==, 0);
    g_assert_true(c.ipv6);
    g_assert_cmpstr(c.address, ==, "2001:db8::1:2");
    g_assert_cmpuint(c.port, ==, 50000);

    g_assert_cmpint(
        encore_sdp_parse_candidate("candidate:3 1 udp 41885439 198.51.100.9 3478 typ relay "
                                   "raddr 0.0.0.0 rport 0",
                                   &c),
        ==, 0);
    g_assert_cmpint(c.type, ==, ENCORE_SDP_CAND_RELAY);
    g_assert_cmpint(
        encore_sdp_parse_candidate("candidate:4 1 udp 1845501695 198.51.100.9 3478 typ prflx", &c),
        ==, 0);
    g_assert_cmpint(c.type, ==, ENCORE_SDP_CAND_PRFLX);
}

static void test_candidate_unsupported(void)
{
    encore_sdp_candidate c;
    g_assert_cmpint(
        encore_sdp_parse_candidate("candidate:1 1 udp 2122260223 "
                                   "4f2a1b9c-8d3e-4c5f-a6b7-c8d9e0f1a2b3.local 54321 typ host "
                                   "generation 0",
                                   &c),
        ==, -ENOTSUP);
    g_assert_cmpint(
        encore_sdp_parse_candidate("candidate:2 1 tcp 1518280447 192.168.1.20 9 typ host tcptype "
                                   "active generation 0",
                                   &c),
        ==, -ENOTSUP);
    g_assert_cmpint(encore_sdp_parse_candidate("candidate:2 1 udp 1 192.168.1.20 9 typ x-new", &c),
                    ==, -ENOTSUP);
}

static void test_candidate_garbage(void)
{
    static const char *const bad[] = {
        "",
        "candidate:",
        "a=",
        "candidate:1 1 udp 2122260223 127.0.0.1 50000",
        "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ",
        "candidate:1 1 udp 2122260223 127.0.0.1 50000 type host",
        "candidate:1 1 udp 2122260223 127.0.0.1 70000 typ host",
        "candidate:1 1 udp 2122260223 127.0.0.1 0 typ host",
        "candidate:1 1 udp 2122260223 127.0.0.1 -1 typ host",
        "candidate:1 0 udp 2122260223 127.0.0.1 50000 typ host",
        "candidate:1 257 udp 2122260223 127.0.0.1 50000 typ host",
        "candidate:1 1 udp 99999999999 127.0.0.1 50000 typ host",
        "candidate:1 1 udp 0 127.0.0.1 50000 typ host",
        "candidate:1 1 udp abc 127.0.0.1 50000 typ host",
        "candidate:123456789012345678901234567890123 1 udp 1 127.0.0.1 50000 typ host",
        "candidate:1=2 1 udp 1 127.0.0.1 50000 typ host",
        "candidate:1 1 udp 1 127.0.0.1! 50000 typ host",
        "candidate:1 1 udp 1 127.0.0.1 50000 typ host generation",
        "candidate:1 1 udp 1 127.0.0.1 50000 typ host rport 99999",
        "candidate:1 1 udp 1 127.0.0.1 50000 typ host raddr not@addr rport 1",
        "candidate:1 1 udp 1 127.0.0.1 50000 typ host\r\nx",
        "candidate:1 1 u/dp 1 127.0.0.1 50000 typ host",
        "candidate:1 1 udp 1 127.0.0.1 50000 typ ho/st",
        "\x01\x02\x03",
    };
    encore_sdp_candidate c;
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        int rc = encore_sdp_parse_candidate(bad[i], &c);
        if (rc != -EINVAL)
            g_error("candidate \"%s\": expected -EINVAL, got %d", bad[i], rc);
    }
    g_assert_cmpint(encore_sdp_parse_candidate(NULL, &c), ==, -EINVAL);
    char *huge = g_malloc(2000);
    memset(huge, '1', 1999);
    huge[1999] = '\0';
    g_assert_cmpint(encore_sdp_parse_candidate(huge, &c), ==, -EINVAL);
    g_free(huge);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/sdp/offer/chrome-audio", test_chrome_audio);
    g_test_add_func("/sdp/offer/chrome-audio-answer-exact", test_chrome_audio_answer_exact);
    g_test_add_func("/sdp/offer/chrome-av-data", test_chrome_av_data);
    g_test_add_func("/sdp/offer/webrtcbin", test_webrtcbin);
    g_test_add_func("/sdp/offer/firefox", test_firefox);
    g_test_add_func("/sdp/offer/bundle-tag-fallback", test_bundle_tag_fallback);
    g_test_add_func("/sdp/offer/setup-roles", test_setup_roles);
    g_test_add_func("/sdp/offer/directions", test_directions);
    g_test_add_func("/sdp/offer/red", test_red);
    g_test_add_func("/sdp/offer/no-opus", test_no_opus);
    g_test_add_func("/sdp/offer/missing-required", test_missing_required);
    g_test_add_func("/sdp/offer/truncated", test_truncated);
    g_test_add_func("/sdp/offer/garbage", test_garbage);
    g_test_add_func("/sdp/offer/lf-only", test_lf_only);
    g_test_add_func("/sdp/offer/candidates-cap-second-audio", test_candidates_cap_and_second_audio);
    g_test_add_func("/sdp/answer/params", test_answer_params);
    g_test_add_func("/sdp/answer/enospc", test_answer_enospc);
    g_test_add_func("/sdp/answer/worst-case-size", test_answer_worst_case_size);
    g_test_add_func("/sdp/fingerprint/format", test_format_fingerprint);
    g_test_add_func("/sdp/candidate/valid", test_candidate_valid);
    g_test_add_func("/sdp/candidate/unsupported", test_candidate_unsupported);
    g_test_add_func("/sdp/candidate/garbage", test_candidate_garbage);
    return g_test_run();
}
