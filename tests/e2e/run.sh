#!/usr/bin/env bash
# Browser end-to-end tests: starts $ENCORED on 127.0.0.1:18080 with a fresh data dir, waits for
# /healthz, makes an agent and an admin account with $ENCORE_USERS (the operator's tool), runs
# stage.test.mjs then economy.test.mjs under node's test runner (one TAP stream on stdout), stops
# the server and exits with the tests' status. Run it inside a loopback-only network namespace
# (scripts/test wraps `make check` in `unshare -n`): it only ever talks to 127.0.0.1.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir/build}
ENCORED=${ENCORED:-$top_builddir/encored}
ENCORE_USERS=${ENCORE_USERS:-$top_builddir/encore-users}
# The test files, run one after the other in this order (they share the server and the two cores).
tests=${ENCORE_E2E_TESTS:-stage.test.mjs economy.test.mjs}
port=${ENCORE_E2E_PORT:-18080}
url=http://127.0.0.1:$port

# Reports a failure before any test ran, as TAP, and exits.
bail() {
  echo "1..1"
  echo "not ok 1 - e2e setup: $*"
  exit 1
}

health() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url/healthz" 2>/dev/null
}

[ -x "$ENCORED" ] || bail "server binary $ENCORED not found (set ENCORED)"
[ -d "$here/node_modules/playwright-core" ] ||
  bail "playwright-core is not installed: run scripts/deps --test (npm ci in tests/e2e)"
for tool in node sox curl "${CHROMIUM:-/usr/bin/chromium}"; do
  command -v "$tool" >/dev/null || bail "$tool is not installed: run scripts/deps --test"
done
[ "$(health)" = "000" ] || bail "something already answers on $url"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/encore-e2e.XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$tmp/data"
"$ENCORED" --config "$top_srcdir/docs/encored.dev.ini" --listen "127.0.0.1:$port" \
  --data-dir "$tmp/data" --media-ip 127.0.0.1 \
  --web-root "$top_srcdir/web" >"$tmp/encored.log" 2>&1 &
server_pid=$!

server_log_tail() {
  echo "# ---- encored log (last 60 lines)"
  tail -n 60 "$tmp/encored.log" | sed 's/^/# /'
}

deadline=$((SECONDS + 20))
until [ "$(health)" = "200" ]; do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    wait "$server_pid"
    rc=$?
    server_log_tail
    bail "encored exited with status $rc before /healthz answered"
  fi
  if [ $SECONDS -ge $deadline ]; then
    server_log_tail
    bail "encored did not answer $url/healthz with 200 within 20 s"
  fi
  sleep 0.2
done

# Staff accounts cannot be made over HTTP: the operator's tool writes them into the server's users
# store (SQLite in the data dir), as an operator would. Without the tool the economy test skips the
# agent and admin steps.
if [ -x "$ENCORE_USERS" ]; then
  staff_pw="e2e-staff-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  for role in agent admin; do
    if ! printf '%s\n' "$staff_pw" | "$ENCORE_USERS" --store "sqlite:$tmp/data/users.db" \
      add "e2e-$role" --birth-year 1980 --role "$role" >>"$tmp/encore-users.log" 2>&1; then
      sed 's/^/# /' "$tmp/encore-users.log"
      bail "encore-users could not add the $role account"
    fi
  done
  export ENCORE_E2E_AGENT=e2e-agent ENCORE_E2E_ADMIN=e2e-admin ENCORE_E2E_STAFF_PASSWORD=$staff_pw
else
  echo "# $ENCORE_USERS not found: the agent and admin steps will be skipped"
fi

cd "$here"
# Runs the test files in the given order (node's runner would sort them), each bounded so that a hung
# browser cannot hold up the whole suite, and joins their TAP into one stream: test points numbered
# on, one plan at the end. A file that fails without reporting a failing test point gets one.
status=0
count=0
echo "TAP version 13"
for t in $tests; do
  ENCORE_URL=$url timeout -k 10 600 node --test --test-reporter=tap "$t" |
    awk -v off="$count" -v out="$tmp/tap.count" '
      /^TAP version/ || /^1\.\.[0-9]+/ { next }
      $1 == "ok" && $2 ~ /^[0-9]+$/ { n++; print "ok " off + $2 substr($0, length("ok " $2) + 1); next }
      $1 == "not" && $2 == "ok" && $3 ~ /^[0-9]+$/ {
        n++; bad++; print "not ok " off + $3 substr($0, length("not ok " $3) + 1); next }
      { print }
      END { print n + 0, bad + 0 > out }'
  rc=${PIPESTATUS[0]}
  read -r n bad <"$tmp/tap.count"
  count=$((count + n))
  if [ "$rc" -ne 0 ]; then
    status=1
    if [ "$bad" -eq 0 ]; then
      count=$((count + 1))
      echo "not ok $count - $t exited with status $rc"
    fi
  fi
done
echo "1..$count"

# The server must have survived the test, and must stop cleanly (sanitizer builds report leaks and
# errors at exit through the exit status).
if ! kill -0 "$server_pid" 2>/dev/null; then
  wait "$server_pid"
  echo "# encored died during the test (status $?)"
  server_log_tail
  status=1
else
  kill -TERM "$server_pid"
  for _ in $(seq 1 50); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "# encored did not stop within 5 s of SIGTERM"
    kill -KILL "$server_pid" 2>/dev/null
    status=1
  fi
  wait "$server_pid"
  rc=$?
  echo "# encored stopped with status $rc"
  if [ $rc -ne 0 ] && [ $rc -ne 143 ]; then
    echo "# encored exited with status $rc after SIGTERM"
    status=1
  fi
fi
server_pid=
if [ $status -ne 0 ]; then
  server_log_tail
fi
exit $status
