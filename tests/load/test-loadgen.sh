#!/usr/bin/env bash
# Self-check of the load generator: starts $ENCORED on a free loopback port (cheap Argon2
# parameters), runs encore-loadgen (it signs up a singer and a listener account) with 20
# listeners for a 3 s window and checks the JSON it writes (everyone joined, audio decoded,
# packets delivered, loss under 1%). Prints TAP; asserts no times. Run it inside a loopback-only
# network namespace (scripts/test wraps `make check` in `unshare -n`): it only talks to 127.0.0.1.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir/build}
ENCORED=${ENCORED:-$top_builddir/encored}
LOADGEN=${LOADGEN:-$top_builddir/tests/load/encore-loadgen}

echo "1..6"
n=0
ok() { # status description [diagnostic]
  n=$((n + 1))
  if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; [ -n "${3:-}" ] && echo "$3" | sed 's/^/# /'; fi
}
bail() {
  echo "Bail out! $*"
  exit 1
}

[ -x "$ENCORED" ] || bail "server binary $ENCORED not found (set ENCORED)"
[ -x "$LOADGEN" ] || bail "load generator $LOADGEN not found"
command -v python3 >/dev/null || bail "python3 is needed to read the JSON"
command -v curl >/dev/null || bail "curl is needed to wait for the server"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/encore-loadgen.XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free port: try a few random ones until nothing answers there.
port=
for _ in 1 2 3 4 5 6 7 8; do
  p=$((20000 + RANDOM % 20000))
  if ! curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p/" 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || bail "no free port found"
lo=$((41000 + RANDOM % 8000))

mkdir -p "$tmp/data"
# Cheap Argon2 (tests only): the load generator signs up two accounts per run.
printf '[accounts]\npassword_memory = 256\npassword_passes = 1\n' > "$tmp/encored.ini"
"$ENCORED" --config "$tmp/encored.ini" --listen "127.0.0.1:$port" --data-dir "$tmp/data" \
  --media-ip 127.0.0.1 --rtp-ports "$lo-$((lo + 199))" --web-root "$top_srcdir/web" \
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

timeout -k 5 120 "$LOADGEN" --server encore --url "ws://127.0.0.1:$port/ws" --room loadgen-check \
  --listeners 20 --threads 2 --join-rate 50 --warmup 1 --duration 3 --server-pid "$server_pid" \
  --json "$tmp/result.json" 2>"$tmp/loadgen.err"
rc=$?
ok $rc "encore-loadgen exits 0" "$(tail -n 20 "$tmp/loadgen.err")"
sed 's/^/# /' "$tmp/loadgen.err" | tail -n 3

check() { # python expression over r (the JSON) and a description
  if python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" \
    "$tmp/result.json" 2>/dev/null; then
    ok 0 "$2"
  else
    ok 1 "$2" "$(cat "$tmp/result.json" 2>/dev/null || echo 'no JSON written')"
  fi
}
check "r['joined'] == 20 and r['join_failed'] == 0" "all 20 listeners joined"
check "r['decoded_ok'] > 0 and r['decoded_failed'] == 0" "sampled packets decode as Opus"
check "r['packets_delivered'] > 0 and r['packets_delivered'] <= r['packets_expected']" \
  "packets were delivered in the window"
check "r['loss_ratio'] < 0.01" "loss under 1%"

if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "# encored died during the run"
  tail -n 20 "$tmp/encored.log" | sed 's/^/# /'
  exit 1
fi
