#!/bin/sh
# Crash test of the ledger (TAP): on SQLite, and on PostgreSQL when ENCORE_TEST_PG is set, a
# driver storms the ledger with gifts from 50 senders that sometimes send an id twice or retry it,
# logging each acknowledged id; it is killed with SIGKILL mid-storm, twice, and after each kill
# the store is reopened and checked: every acknowledged answer present exactly once and as
# answered, retries change nothing, balances and transfer counts as the model says, audit clean.
# Then encore-audit must pass on the store, and fail once a balance is broken behind its back.
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
driver="$top_builddir/tests/ledger/ledger-crash"
audit="$top_builddir/encore-audit"
work=$(mktemp -d /tmp/encore-crash.XXXXXX)
trap 'rm -rf "$work"' EXIT
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); fail=1; echo "not ok $n - $*"; }
skip() { n=$((n + 1)); echo "ok $n # SKIP $*"; }

# Waits until the log has $2 lines (at most 60 s); 0 when it does.
wait_lines() {
  i=0
  while [ "$i" -lt 600 ]; do
    [ -f "$1" ] && [ "$(wc -l < "$1")" -ge "$2" ] && return 0
    sleep 0.1
    i=$((i + 1))
  done
  return 1
}

storm() { # name store epoch
  log="$work/$1-$3.log"
  "$driver" run --store "$2" --log "$log" --epoch "$3" --senders 50 2> "$work/$1-$3.err" &
  pid=$!
  if ! wait_lines "$log" 200; then
    kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    not_ok "$1 storm $3 did not get going"; sed 's/^/# /' "$work/$1-$3.err"; return
  fi
  # Somewhere in the middle of the storm.
  sleep "0.$(( $(od -An -N1 -tu1 /dev/urandom) % 8 + 2 ))"
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid"
    not_ok "$1 storm $3 died by itself (exit $?)"; sed 's/^/# /' "$work/$1-$3.err"; return
  fi
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  acked=$(wc -l < "$log")
  if out=$("$driver" verify --store "$2" --log "$log" --epoch "$3" --senders 50 2>&1); then
    ok "$1: killed with $acked answers acknowledged; after restart every one present exactly once, audit clean"
    echo "$out" | grep '^#'
  else
    not_ok "$1 storm $3: verification after kill -9"
    echo "$out" | sed 's/^/# /' | head -n 40
  fi
}

check_tool() { # name store
  if "$audit" --store "$2" > "$work/audit.out" 2>&1; then
    ok "$1: encore-audit passes"
  else
    not_ok "$1: encore-audit fails on a sound store"; sed 's/^/# /' "$work/audit.out"
  fi
  "$driver" corrupt --store "$2" || { not_ok "$1: could not corrupt the store"; return; }
  "$audit" --store "$2" > "$work/audit.out" 2>&1
  rc=$?
  if [ "$rc" -eq 1 ] && grep -q 'VIOLATION: account platform:revenue has balance' "$work/audit.out"; then
    ok "$1: encore-audit exits 1 and names the broken balance"
  else
    not_ok "$1: encore-audit on a corrupted store exited $rc"; sed 's/^/# /' "$work/audit.out"
  fi
}

echo "1..8"
store="sqlite:$work/ledger.db"
storm sqlite "$store" a
storm sqlite "$store" b
check_tool sqlite "$store"

if [ -n "${ENCORE_TEST_PG:-}" ]; then
  schema="crash_$$_$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
  psql "$ENCORE_TEST_PG" -qc "CREATE SCHEMA $schema" >/dev/null
  store="postgresql:$ENCORE_TEST_PG options='-csearch_path=$schema'"
  storm postgresql "$store" a
  storm postgresql "$store" b
  check_tool postgresql "$store"
  psql "$ENCORE_TEST_PG" -qc "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1
else
  for i in 1 2 3 4; do skip "PostgreSQL: ENCORE_TEST_PG is not set (eval \"\$(scripts/pg start)\")"; done
fi
exit $fail
