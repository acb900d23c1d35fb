/* Standalone driver for the libFuzzer targets when the build is not a fuzzing build: replays every
 * file of the target's corpus (tests/fuzz/corpus/<name>/, crash inputs included) through
 * LLVMFuzzerTestOneInput and prints TAP, so each `make check` re-runs what fuzzing once found. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        if (n == 0)
            break;
        len += n;
    }
    fclose(f);
    /* Copy into an exact-size allocation so ASan sees reads past the end. */
    uint8_t *exact = malloc(len ? len : 1);
    if (len)
        memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

int main(int argc, char **argv)
{
    const char *prog = strrchr(argv[0], '/');
    prog = prog ? prog + 1 : argv[0];
    if (strncmp(prog, "lt-", 3) == 0)
        prog += 3;
    const char *name = strncmp(prog, "fuzz-", 5) == 0 ? prog + 5 : prog;
    const char *top = getenv("top_srcdir");
    char dir[4096];
    const char *dirarg = NULL;
    for (int i = 1; i < argc; i++)
        if (argv[i][0] != '-')
            dirarg = argv[i];
    if (dirarg)
        snprintf(dir, sizeof dir, "%s", dirarg);
    else
        snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", top ? top : ".", name);
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);

    /* An empty input first: every parser must survive it. */
    LLVMFuzzerTestOneInput((const uint8_t *)"", 0);

    DIR *d = opendir(dir);
    if (!d) {
        printf("1..1\nnot ok 1 - corpus %s missing\n", dir);
        return 1;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (replay_file(path) == 0)
            n++;
    }
    closedir(d);
    /* Reaching here means no input crashed (sanitizers abort on error). */
    printf("1..1\nok 1 - %s: replayed %d corpus inputs\n", name, n);
    return 0;
}
