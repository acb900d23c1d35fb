/* Shared state of encore-loadgen: the options, the worker threads (one GMainContext each), the
 * singer and the listeners. The main thread owns the run (phases, join pacing, report); a listener
 * or the singer lives on one worker thread for its whole life and only that thread touches it,
 * except for the atomics named below. */
#ifndef ENCORE_LOADGEN_LOADGEN_H
#define ENCORE_LOADGEN_LOADGEN_H

#include <opus.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <glib.h>

#include "media/dtls.h"
#include "tests/load/metrics.h"
#include "tests/load/rtc.h"
#include "tests/load/signal.h"

/* A listener that has no audio this long after it started counts as failed. */
#define LG_JOIN_TIMEOUT_NS (10 * G_GINT64_CONSTANT(1000000000))
/* Listeners send an RTCP receiver report this often (like a browser's audio receiver). */
#define LG_RR_INTERVAL_NS (5 * G_GINT64_CONSTANT(1000000000))
/* Every LG_DECODE_EVERY_LISTENER-th listener decodes every LG_DECODE_EVERY_PACKET-th packet. */
#define LG_DECODE_EVERY_LISTENER 10
#define LG_DECODE_EVERY_PACKET 50

typedef struct {
    const lg_sig_ops *ops;
    unsigned listeners;
    unsigned threads;
    double join_rate;
    double warmup_s;
    double duration_s;
    pid_t server_pid;      /* 0: not measured */
    const char *json_path; /* NULL: stdout */
    const char *media_ip;
    bool verbose;
} lg_options;

typedef enum {
    LST_IDLE,         /* not started */
    LST_JOINING,      /* signaling, ICE, DTLS: no audio yet */
    LST_JOINED,       /* audio decrypted at least once */
    LST_FAILED,       /* never got audio (counted in join_failed) */
    LST_DISCONNECTED, /* got audio, then its peer or signaling failed */
} lg_listener_state;

typedef struct lg_thread lg_thread;

typedef struct {
    lg_thread *thr;
    unsigned index;
    lg_listener_state state;
    lg_sig_peer *sig;
    lg_rtc *rtc;
    bool cleanup;      /* free sig and rtc at the next tick (never inside their callbacks) */
    char why[96];      /* first failure reason */
    const char *stage; /* how far joining got (static string), for failure reports */

    int64_t t_start_ns;   /* the listener was started (websocket connect) */
    int64_t t_request_ns; /* subscribe (or Janus subscriber join) sent */
    double join_ms;       /* t_request -> first packet decrypted */

    /* Sequence numbers, extended to 64 bits (the stage track never changes SSRC). */
    bool have_seq;
    int64_t ext_hi;
    uint64_t received;
    uint32_t media_ssrc;
    /* The steady window: packets whose send time (singer's clock) lies in it. */
    bool win_any;
    int64_t win_first, win_hi;
    uint64_t win_received;

    /* RTCP receiver reports. */
    uint32_t own_ssrc;
    int64_t next_rr_ns;
    int64_t rr_expected_prior;
    uint64_t rr_received_prior;
    int64_t rr_base;

    OpusDecoder *dec; /* only on every LG_DECODE_EVERY_LISTENER-th listener */
    uint32_t decode_count;
} lg_listener;

struct lg_thread {
    unsigned id;
    GThread *thread;
    GMainContext *ctx;
    GMainLoop *loop;
    lg_sig_thread *sig;
    GPtrArray *listeners; /* lg_listener * started on this thread (not owned) */
    bool is_singer;       /* the singer's own thread (no listeners) */
    GSource *tick;

    /* Counters of this thread, read by the main thread only after the thread has stopped. */
    uint64_t delivered;      /* window packets received */
    uint64_t unmatched;      /* packets whose payload was not in the send table */
    uint64_t rtp_total;      /* every RTP packet received */
    uint64_t decoded_ok;     /* decoded to one 20 ms stereo frame */
    uint64_t decoded_failed; /* the decoder refused the payload */
    uint64_t tone_ok;        /* decoded frames where 440 Hz dominates */
    uint64_t rr_sent;
    int16_t pcm[5760 * 2]; /* decode buffer (120 ms stereo) */
    lg_hist hist;          /* latency of window packets, us */
};

/* The singer: encodes and sends one Opus frame every 20 ms once connected. */
typedef enum {
    SINGER_CONNECTING,
    SINGER_SENDING,
    SINGER_FAILED,
} lg_singer_state;

typedef struct {
    lg_thread *thr;
    lg_sig_peer *sig;
    lg_rtc *rtc;
    OpusEncoder *enc;
    GSource *timer;
    int64_t next_us; /* when the next frame is due (g_get_monotonic_time) */
    double phase;
    uint32_t noise;
    uint16_t seq;
    uint32_t ts;
    uint32_t ssrc;
    uint32_t index;
    bool cleanup;
    char why[128];                    /* written before state becomes SINGER_FAILED */
    _Atomic int state;                /* lg_singer_state; read by the main thread */
    atomic_uint_fast64_t sent;        /* packets sent */
    atomic_uint_fast64_t sent_window; /* packets sent with a send time inside the window */
    atomic_uint_fast64_t send_errors;
} lg_singer;

/* The run: created by main, shared by every thread. */
typedef struct {
    lg_options opt;
    lg_sig_config sigcfg;
    encore_dtls_cert *cert;
    lg_sendtab sendtab; /* written by the singer thread only */
    /* The steady window in CLOCK_MONOTONIC ns: INT64_MAX until the main thread sets them. */
    _Atomic int64_t win_start_ns;
    _Atomic int64_t win_end_ns;
    atomic_uint joined;
    atomic_uint failed;
    atomic_uint disconnected;
    lg_singer singer;
} lg_run;

extern lg_run *lg;

/* Logs to stderr when --verbose. */
void lg_debug(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/* Worker-thread entry points, each run on the thread through g_main_context_invoke. */
/* Starts the singer on thr (its own thread). data: the lg_thread. */
gboolean lg_singer_start_cb(gpointer data);
/* Starts one listener on its thread. data: the lg_listener (thr set). */
gboolean lg_listener_start_cb(gpointer data);
/* Frees every peer of the thread (listeners or singer), the signaling state, and quits its loop.
 * data: the lg_thread. */
gboolean lg_thread_stop_cb(gpointer data);
/* Creates the thread's tick (join timeouts, receiver reports, deferred frees) and signaling
 * state; called on the thread before anything else. data: the lg_thread. */
gboolean lg_thread_init_cb(gpointer data);

#endif
