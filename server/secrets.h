/* Secret files: the token signing keys, the sandbox provider's webhook secret and each payment
 * provider's. A file holds one key per line, "<kid> <hex>" (the first line is the current key;
 * the others still verify during a rotation); blank lines and lines starting with '#' are skipped.
 * Main thread, at start only. Never logs a secret. */
#ifndef ENCORE_SERVER_SECRETS_H
#define ENCORE_SERVER_SECRETS_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char kid[33];     /* 1-32 of [A-Za-z0-9_-] */
    uint8_t key[256]; /* key[0..len) */
    size_t len;       /* 32-256 */
} encore_secret;

/* Reads `path` into a new array of encore_secret (free with encore_secrets_free(), which wipes
 * them). With `create` and no file, makes one with a fresh random 32-byte key (mode 0600, kid
 * "k" + 8 hex digits of its SHA-256) first. Errors (G_FILE_ERROR domain for I/O): unreadable
 * file, a malformed line (its number is in the message, never its content), no key, a key
 * outside 32-256 bytes, a duplicate kid, a file readable by group or others. */
GArray *encore_secrets_load(const char *path, gboolean create, GError **error);
void encore_secrets_free(GArray *secrets);

#endif
