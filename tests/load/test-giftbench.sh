#!/usr/bin/env bash
# Self-check of the gift benchmark: starts $ENCORED on a free loopback port with a benchmark
# provider whose webhook secret this script writes (and cheap Argon2, raised connection and
# message limits, no daily cap), runs encore-giftbench with 10 senders for 2 s, then stops the
# server and runs encore-audit on its ledger. Checks that gifts were acknowledged with zero
# errors, that the room saw them, and that the ledger is sound; asserts no speed. Prints TAP.
# Run it inside a loopback-only network namespace (make check is, under scripts/test).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir/build}
ENCORED=${ENCORED:-$top_builddir/encored}
GIFTBENCH=${GIFTBENCH:-$top_builddir/tests/load/encore-giftbench}
AUDIT=${ENCORE_AUDIT:-$top_builddir/encore-audit}

echo "1..7"
n=0
ok() { # status description [diagnostic]
  n=$((n + 1))
  if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; [ -n "${3:-}" ] && echo "$3" | sed 's/^/# /'; fi
}
bail() {
  echo "Bail out! $*"
  exit 1
}

for b in "$ENCORED" "$GIFTBENCH" "$AUDIT"; do
  [ -x "$b" ] || bail "$b not found (build it, or set ENCORED, GIFTBENCH, ENCORE_AUDIT)"
done
command -v python3 >/dev/null || bail "python3 is needed to read the JSON"
command -v curl >/dev/null || bail "curl is needed to wait for the server"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/encore-giftbench.XXXXXX")
server_pid=
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 1 100); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null
  fi
  [ -n "$server_pid" ] && wait "$server_pid" 2>/dev/null
  server_pid=
}
cleanup() {
  stop_server
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=
for _ in 1 2 3 4 5 6 7 8; do
  p=$((20000 + RANDOM % 20000))
  if ! curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p/" 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || bail "no free port found"
lo=$((41000 + RANDOM % 8000))

mkdir -p "$tmp/data"
(umask 077 && printf 'gb1 %s\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" > "$tmp/bench.key")
cat > "$tmp/encored.ini" <<EOF
# Tests only: cheap Argon2, one address may hold every sender, no message rate limit to speak of.
[accounts]
password_memory = 256
password_passes = 1
users = sqlite:$tmp/data/users.db
[ledger]
backend = sqlite:$tmp/data/ledger.db
[limits]
conns_per_addr = 1000000
max_conns = 1000000
rate = 1000000
burst = 1000000
[economy]
daily_cap = 0
[payments]
sandbox = false
[provider.bench]
secret_file = $tmp/bench.key
EOF
"$ENCORED" --config "$tmp/encored.ini" --listen "127.0.0.1:$port" --data-dir "$tmp/data" \
  --media-ip 127.0.0.1 --rtp-ports "$lo-$((lo + 19))" --web-root "$top_srcdir/web" \
  >"$tmp/encored.log" 2>&1 &
server_pid=$!
up=1
for _ in $(seq 1 100); do
  if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
  if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$port/healthz")" = 200 ]; then
    up=0
    break
  fi
  sleep 0.2
done
ok $up "encored answers /healthz" "$(tail -n 20 "$tmp/encored.log")"
[ $up -eq 0 ] || exit 1

timeout -k 5 120 "$GIFTBENCH" --url "ws://127.0.0.1:$port/ws" --secret-file "$tmp/bench.key" \
  --provider bench --senders 10 --seconds 2 --warmup 0.5 --server-pid "$server_pid" \
  --json "$tmp/result.json" >/dev/null 2>"$tmp/giftbench.err"
rc=$?
ok $rc "encore-giftbench exits 0" "$(tail -n 20 "$tmp/giftbench.err")"
sed 's/^/# /' "$tmp/giftbench.err" | tail -n 3

check() { # python expression over r (the JSON) and a description
  if python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" \
    "$tmp/result.json" 2>/dev/null; then
    ok 0 "$2"
  else
    ok 1 "$2" "$(cat "$tmp/result.json" 2>/dev/null || echo 'no JSON written')"
  fi
}
check "r['senders'] == 10 and r['gifts'] > 0 and r['acked'] >= r['gifts']" \
  "gifts were acknowledged"
check "r['errors'] == {} and r['acked'] == r['sent']" "no errors, every gift answered"
# Every member of the room (10 senders and the singer) gets a gift event per committed gift.
check "r['gift_events'] >= r['gifts']" "the room received gift events"

alive=0
kill -0 "$server_pid" 2>/dev/null || alive=1
ok $alive "encored survived the run" "$(tail -n 20 "$tmp/encored.log")"
stop_server

"$AUDIT" --store "sqlite:$tmp/data/ledger.db" >"$tmp/audit.out" 2>&1
ok $? "encore-audit passes on the ledger afterwards" "$(tail -n 20 "$tmp/audit.out")"
