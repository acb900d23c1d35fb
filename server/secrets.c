/* Secret files (see secrets.h): parsing, creating with safe permissions, wiping. Main thread. */
#include "config.h"

#include "server/secrets.h"

#include <stdbool.h>

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/accounts/b64.h"

#define SECRETS_ERROR g_quark_from_static_string("encore-secrets")

static gboolean create_file(const char *path, GError **error)
{
    uint8_t key[32], digest[32];
    unsigned dlen = 0;
    if (RAND_bytes(key, sizeof key) != 1 ||
        EVP_Digest(key, sizeof key, digest, &dlen, EVP_sha256(), NULL) != 1) {
        g_set_error(error, SECRETS_ERROR, 1, "%s: no random bytes for a new key", path);
        return FALSE;
    }
    GString *line = g_string_new("# made by encored; one key per line: <kid> <hex>\nk");
    for (int i = 0; i < 4; i++)
        g_string_append_printf(line, "%02x", digest[i]);
    g_string_append_c(line, ' ');
    char hex[2 * sizeof key + 1];
    (void)encore_hex_encode(key, sizeof key, hex, sizeof hex);
    g_string_append(line, hex);
    OPENSSL_cleanse(hex, sizeof hex);
    g_string_append_c(line, '\n');
    OPENSSL_cleanse(key, sizeof key);
    gboolean ok = FALSE;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "cannot create %s: %s",
                    path, g_strerror(errno));
    } else {
        ssize_t n = write(fd, line->str, line->len);
        ok = n == (ssize_t)line->len && fsync(fd) == 0;
        if (!ok)
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_IO, "cannot write %s", path);
        close(fd);
    }
    OPENSSL_cleanse(line->str, line->len);
    g_string_free(line, TRUE);
    return ok;
}

static gboolean parse_line(const char *line, encore_secret *out)
{
    const char *sp = strchr(line, ' ');
    if (!sp || sp == line || sp - line > 32)
        return FALSE;
    for (const char *p = line; p < sp; p++)
        if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-')
            return FALSE;
    memcpy(out->kid, line, (size_t)(sp - line));
    out->kid[sp - line] = '\0';
    char *hex = g_ascii_strdown(sp + 1, -1); /* either case in the file */
    size_t n = strlen(hex);
    bool ok = n / 2 >= 32 && encore_hex_decode(hex, n, out->key, sizeof out->key, &out->len) == 0;
    OPENSSL_cleanse(hex, n);
    g_free(hex);
    return ok;
}

GArray *encore_secrets_load(const char *path, gboolean create, GError **error)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT || !create) {
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", path,
                        g_strerror(errno));
            return NULL;
        }
        if (!create_file(path, error))
            return NULL;
        if (stat(path, &st) != 0) {
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", path,
                        g_strerror(errno));
            return NULL;
        }
    }
    if (st.st_mode & 077) {
        g_set_error(error, SECRETS_ERROR, 1, "%s is readable by others: chmod 600 it", path);
        return NULL;
    }
    char *text = NULL;
    gsize len = 0;
    if (!g_file_get_contents(path, &text, &len, error))
        return NULL;
    GArray *out = g_array_new(FALSE, TRUE, sizeof(encore_secret));
    char **lines = g_strsplit(text, "\n", -1);
    gboolean ok = TRUE;
    for (int i = 0; ok && lines[i]; i++) {
        char *l = g_strstrip(lines[i]);
        if (!*l || *l == '#')
            continue;
        encore_secret s = {0};
        if (!parse_line(l, &s)) {
            g_set_error(error, SECRETS_ERROR, 1, "%s line %d is not '<kid> <hex of 32-256 bytes>'",
                        path, i + 1);
            ok = FALSE;
        }
        for (guint j = 0; ok && j < out->len; j++)
            if (strcmp(g_array_index(out, encore_secret, j).kid, s.kid) == 0) {
                g_set_error(error, SECRETS_ERROR, 1, "%s line %d repeats key id %s", path, i + 1,
                            s.kid);
                ok = FALSE;
            }
        if (ok)
            g_array_append_val(out, s);
        OPENSSL_cleanse(&s, sizeof s);
    }
    for (int i = 0; lines[i]; i++)
        OPENSSL_cleanse(lines[i], strlen(lines[i]));
    g_strfreev(lines);
    OPENSSL_cleanse(text, len);
    g_free(text);
    if (ok && out->len == 0) {
        g_set_error(error, SECRETS_ERROR, 1, "%s holds no key", path);
        ok = FALSE;
    }
    if (!ok) {
        encore_secrets_free(out);
        return NULL;
    }
    return out;
}

void encore_secrets_free(GArray *secrets)
{
    if (!secrets)
        return;
    OPENSSL_cleanse(secrets->data, secrets->len * sizeof(encore_secret));
    g_array_free(secrets, TRUE);
}
