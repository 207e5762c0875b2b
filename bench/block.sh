#!/usr/bin/env bash
# keepstore vs nginx on a 64 MiB block, on loopback, same client, alternating servers:
# PUT MB/s, whole GET MB/s (keepstore verifies every byte; nginx uses sendfile), and
# 4 KiB Range GET latency. Also curl's own whole-GET speed for both, as a cross-check.
#   usage: bench/block.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup --bench
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keep-target}"
cargo build --release -q --bin keep --example bench_block
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d)
cleanup() { kill "${keep_pid:-}" "$(cat "$work/nginx.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# nginx: static files + dav PUT, sendfile on, one worker per core
mkdir -p "$work/www" "$work/ngtmp"
# nginx workers run as an unprivileged user: let them write the PUT targets
chmod 755 "$work"; chmod 777 "$work/www" "$work/ngtmp"
cat >"$work/nginx.conf" <<NGX
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on; tcp_nopush on;
  client_max_body_size 0;
  client_body_temp_path $work/ngtmp;
  proxy_temp_path $work/ngtmp; fastcgi_temp_path $work/ngtmp; uwsgi_temp_path $work/ngtmp; scgi_temp_path $work/ngtmp;
  server {
    listen 127.0.0.1:18081;
    root $work/www;
    location / { dav_methods PUT; create_full_put_path on; }
  }
}
NGX
nginx -c "$work/nginx.conf"

printf '[keepstore]\nlisten = "127.0.0.1:0"\n' >"$work/keep.toml"
"$bin/keep" serve --only keepstore --data "$work/keep" --config "$work/keep.toml" >"$work/serve.out" 2>"$work/serve.log" &
keep_pid=$!
for _ in $(seq 100); do grep -q ready "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
ks=$(awk '$1=="keepstore"{print $2}' "$work/serve.out")

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem/{print $2}') GiB"
BENCH_LOC_FILE="$work/loc" "$bin/examples/bench_block" "$ks" "http://127.0.0.1:18081" "${1:-5}"

# curl cross-check: whole GET of the last block each server stored
read -r url token <"$work/loc"
last=$(( ${1:-5} - 1 ))
echo
echo "curl whole GET MB/s, 3 runs each:"
for i in 1 2 3; do
  k=$(curl -s -o /dev/null -H "Authorization: Bearer $token" -w '%{speed_download}' "$url")
  n=$(curl -s -o /dev/null -w '%{speed_download}' "http://127.0.0.1:18081/block$last")
  awk -v k="$k" -v n="$n" 'BEGIN{printf "keepstore %6.0f   nginx %6.0f   ratio %.2fx\n", k/1e6, n/1e6, k/n}'
done
