#!/usr/bin/env bash
# ISO speed and memory bench (not a test): kiln vs sha256sum and curl on a
# 2 GiB file, with peak RSS from /usr/bin/time -v. Targets: verify and
# download within 10% of the reference tools, peak RSS under 64 MiB.
#
#   bench/iso.sh            (builds the iso_bench example in release mode)
#   SIZE_MIB=512 bench/iso.sh   for a quicker run
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MIB=${SIZE_MIB:-2048}
WORK=$(mktemp -d /tmp/kiln-iso-bench.XXXXXX)
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release --example iso_bench >&2
TARGET=${CARGO_TARGET_DIR:-target}
BENCH="$TARGET/release/examples/iso_bench"

# run LABEL CMD...: prints wall seconds and peak RSS; keeps seconds in $SECS
run() {
    local label=$1
    shift
    /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err" || {
        cat "$WORK/err" >&2
        exit 1
    }
    read -r SECS KB <"$WORK/time"
    local rate=0
    [ "$(echo "$SECS > 0" | bc)" = 1 ] && rate=$(echo "$SIZE_MIB / $SECS" | bc -l)
    printf '%-40s %8.2f s  %8.1f MiB/s  peak RSS %6.1f MiB\n' \
        "$label" "$SECS" "$rate" "$(echo "$KB / 1024" | bc -l)"
}
ratio() { printf '  -> kiln / %s = %.3f\n' "$1" "$(echo "$2 / $3" | bc -l)"; }

echo "creating a ${SIZE_MIB} MiB file in $WORK" >&2
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$WORK/big.iso"
cat "$WORK/big.iso" >/dev/null # warm the page cache for both sides
HEX=$(sha256sum "$WORK/big.iso" | cut -d' ' -f1)

echo "== verify a cached file (page cache warm)"
"$BENCH" add "$WORK/cache" "$WORK/big.iso" >/dev/null
run "sha256sum" sha256sum "$WORK/big.iso"
REF=$SECS
run "kiln cache verify (full re-hash)" "$BENCH" verify "$WORK/cache"
ratio sha256sum "$SECS" "$REF"
run "kiln cache hit (stamp, no re-hash)" "$BENCH" hit "$WORK/cache" "sha256:$HEX"
rm -rf "$WORK/cache"

echo "== download over loopback from python3 -m http.server"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$WORK" "$PORT" >/dev/null 2>&1 &
SERVER_PID=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
URL="http://127.0.0.1:$PORT/big.iso"
run "curl -o" curl -s -o "$WORK/curl.iso" "$URL"
REF=$SECS
rm -f "$WORK/curl.iso"
run "kiln fetch (hash while writing)" "$BENCH" fetch "$WORK/cache" "$URL" "sha256:$HEX"
ratio "curl -o" "$SECS" "$REF"
rm -rf "$WORK/cache"
run "curl -o, then sha256sum (two passes)" sh -c "curl -s -o '$WORK/curl.iso' '$URL' && sha256sum '$WORK/curl.iso'"
