/* encore-audit: opens an existing ledger store and checks every invariant (docs/ledger.md).
 * Prints the report; exits 0 when the ledger is sound, 1 when an invariant fails, 2 when the
 * audit could not run. Single-threaded apart from the ledger's own thread; changes nothing. */
#include "config.h"

#include <stdio.h>

#include "server/economy/ledger.h"

int main(int argc, char **argv)
{
    char *store = NULL;
    GOptionEntry entries[] = {
        {"store", 's', 0, G_OPTION_ARG_STRING, &store,
         "the ledger store: sqlite:PATH or postgresql:CONNINFO", "BACKEND"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionContext *opt = g_option_context_new("- check the ledger's invariants");
    g_option_context_add_main_entries(opt, entries, NULL);
    GError *err = NULL;
    int rc = 2;
    encore_ledger *ledger = NULL;
    GString *report = g_string_new(NULL);
    if (!g_option_context_parse(opt, &argc, &argv, &err))
        goto out;
    if (!store) {
        g_set_error(&err, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--store is required");
        goto out;
    }
    encore_ledger_config cfg = {.backend = store, .open_existing = true};
    ledger = encore_ledger_open(&cfg, &err);
    if (!ledger)
        goto out;
    gboolean sound = encore_ledger_audit(ledger, report, &err);
    fputs(report->str, stdout);
    if (!err)
        rc = sound ? 0 : 1;
out:
    if (err) {
        fprintf(stderr, "encore-audit: %s\n", err->message);
        g_error_free(err);
    }
    encore_ledger_close(ledger);
    g_string_free(report, TRUE);
    g_option_context_free(opt);
    g_free(store);
    return rc;
}
