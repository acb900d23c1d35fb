/* The media engine: the worker pool, the DTLS certificate and the media configuration shared by
 * every room. Created and freed on the main thread; read-only afterwards, so any thread may use
 * it. Rooms (media/room.h) are the way in for everything else. */
#ifndef ENCORE_MEDIA_MEDIA_H
#define ENCORE_MEDIA_MEDIA_H

#include <glib.h>
#include <stdint.h>

#include "media/dtls.h"
#include "media/icelite.h"
#include "media/worker.h"

/* Values of encore_media_config.ice_lite. */
enum {
    ENCORE_MEDIA_ICE_LITE_DEFAULT = 0, /* on, unless the environment says ENCORE_ICE_LITE=0 */
    ENCORE_MEDIA_ICE_LITE_ON = 1,
    ENCORE_MEDIA_ICE_LITE_OFF = -1,
};

typedef struct {
    int workers;            /* media worker threads; 0 = one per core */
    const char *const *ips; /* NULL-terminated addresses to gather ICE candidates on */
    uint16_t port_min;      /* UDP port range for media; 0/0 = any */
    uint16_t port_max;
    uint32_t opus_bitrate;  /* maxaveragebitrate asked of singers, bits/s (default 128000) */
    int connect_timeout_s;  /* ICE+DTLS must complete within this (default 30) */
    int max_peers_per_room; /* offers beyond this get room_full (default 10000) */
    int sr_interval_ms;     /* RTCP sender/receiver report interval (default 1000) */
    /* Listeners: ICE-lite on one shared UDP socket per worker and media address (ON, the
     * default), or a libnice agent and socket each (OFF). Singers always use libnice. The
     * configuration key is [media] ice_lite = true|false; ENCORE_MEDIA_ICE_LITE_* values. */
    int ice_lite;
} encore_media_config;

typedef struct encore_media encore_media;

/* Copies `cfg` (strings included), creates the certificate, starts the workers and, with ICE-lite,
 * binds each worker's shared sockets (on the first free ports of the range, so worker i usually
 * gets port_min + i). Callbacks of rooms are delivered on `main_ctx`. Returns NULL with `error`
 * set when the certificate cannot be made or a shared socket cannot be bound. */
encore_media *encore_media_new(const encore_media_config *cfg, GMainContext *main_ctx,
                               GError **error);
/* Stops the workers. Every room must have been freed before. NULL is fine. */
void encore_media_free(encore_media *media);

const encore_media_config *encore_media_get_config(const encore_media *media);
encore_workers *encore_media_workers(encore_media *media);
encore_dtls_cert *encore_media_cert(encore_media *media);
/* The ICE-lite transport of worker `index`, or NULL when listeners use libnice. */
encore_icelite *encore_media_icelite(encore_media *media, int index);
GMainContext *encore_media_main_context(encore_media *media);
/* Sums the counters of every worker. Any thread. */
void encore_media_stats(encore_media *media, encore_worker_stats *out);

#endif
