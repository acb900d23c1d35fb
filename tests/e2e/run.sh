#!/usr/bin/env bash
# Browser end-to-end test: starts $ENCORED on 127.0.0.1:18080 with a fresh data dir, waits for
# /healthz, runs stage.test.mjs under node's test runner (TAP on stdout), stops the server and exits
# with the test's status. Run it inside a loopback-only network namespace (scripts/test wraps
# `make check` in `unshare -n`): it only ever talks to 127.0.0.1.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir/build}
ENCORED=${ENCORED:-$top_builddir/encored}
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
"$ENCORED" --listen "127.0.0.1:$port" --data-dir "$tmp/data" --media-ip 127.0.0.1 \
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

cd "$here"
# Bounded, so that a hung browser cannot hold up the whole test suite.
ENCORE_URL=$url timeout -k 10 480 node --test --test-reporter=tap stage.test.mjs
status=$?

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
