/* Secret files (server/secrets.c): creation with a fresh key and mode 0600, reading back,
 * rotation lines, and every refusal (permissions, malformed lines, short keys, duplicate ids). */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "server/secrets.h"

static char *tmpdir(void)
{
    return g_dir_make_tmp("encore-secrets-XXXXXX", NULL);
}

static void write_file(const char *path, const char *text, int mode)
{
    g_assert_true(g_file_set_contents(path, text, -1, NULL));
    g_assert_cmpint(g_chmod(path, mode), ==, 0);
}

static void cleanup(char *dir, char *path)
{
    g_unlink(path);
    g_rmdir(dir);
    g_free(path);
    g_free(dir);
}

static void test_create_and_reload(void)
{
    char *dir = tmpdir();
    char *path = g_build_filename(dir, "token.key", NULL);
    GError *error = NULL;
    g_assert_null(encore_secrets_load(path, FALSE, &error)); /* missing, not created */
    g_assert_nonnull(error);
    g_clear_error(&error);
    GArray *a = encore_secrets_load(path, TRUE, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(a->len, ==, 1);
    const encore_secret *s = &g_array_index(a, encore_secret, 0);
    g_assert_cmpuint(s->len, ==, 32);
    g_assert_cmpuint(strlen(s->kid), ==, 9);
    g_assert_true(s->kid[0] == 'k');
    struct stat st;
    g_assert_cmpint(g_stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);
    GArray *b = encore_secrets_load(path, TRUE, &error); /* exists: read, not replaced */
    g_assert_no_error(error);
    g_assert_cmpstr(g_array_index(b, encore_secret, 0).kid, ==, s->kid);
    g_assert_cmpmem(g_array_index(b, encore_secret, 0).key, 32, s->key, 32);
    encore_secrets_free(a);
    encore_secrets_free(b);
    cleanup(dir, path);
}

static void test_rotation_lines(void)
{
    char *dir = tmpdir();
    char *path = g_build_filename(dir, "k", NULL);
    GString *text = g_string_new("# comment\n\nnew ");
    for (int i = 0; i < 48; i++)
        g_string_append(text, "ab");
    g_string_append(text, "\nold ");
    for (int i = 0; i < 32; i++)
        g_string_append(text, "0F");
    g_string_append(text, "\n");
    write_file(path, text->str, 0600);
    g_string_free(text, TRUE);
    GError *error = NULL;
    GArray *a = encore_secrets_load(path, FALSE, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(a->len, ==, 2);
    g_assert_cmpstr(g_array_index(a, encore_secret, 0).kid, ==, "new");
    g_assert_cmpuint(g_array_index(a, encore_secret, 0).len, ==, 48);
    g_assert_cmpuint(g_array_index(a, encore_secret, 0).key[47], ==, 0xab);
    g_assert_cmpstr(g_array_index(a, encore_secret, 1).kid, ==, "old");
    g_assert_cmpuint(g_array_index(a, encore_secret, 1).key[0], ==, 0x0f);
    encore_secrets_free(a);
    cleanup(dir, path);
}

static void refused(const char *text, int mode, const char *needle)
{
    char *dir = tmpdir();
    char *path = g_build_filename(dir, "k", NULL);
    write_file(path, text, mode);
    GError *error = NULL;
    g_assert_null(encore_secrets_load(path, FALSE, &error));
    g_assert_nonnull(error);
    g_assert_nonnull(strstr(error->message, needle));
    g_assert_null(strstr(error->message, "abab")); /* never the key itself */
    g_clear_error(&error);
    cleanup(dir, path);
}

static void test_refusals(void)
{
    const char *good = "k1 abababababababababababababababababababababababababababababababab\n";
    refused(good, 0644, "readable by others");
    refused("k1 abab\n", 0600, "line 1"); /* too short */
    refused("k1\n", 0600, "line 1");      /* no key */
    refused("bad/kid abababababababababababababababababababababababababababababababab\n", 0600,
            "line 1");
    refused("k1 zzababababababababababababababababababababababababababababababab\n", 0600,
            "line 1");
    refused("# only a comment\n", 0600, "holds no key");
    char *dup = g_strconcat(good, good, NULL);
    refused(dup, 0600, "repeats key id k1");
    g_free(dup);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/secrets/create-and-reload", test_create_and_reload);
    g_test_add_func("/secrets/rotation-lines", test_rotation_lines);
    g_test_add_func("/secrets/refusals", test_refusals);
    return g_test_run();
}
