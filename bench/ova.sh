#!/usr/bin/env bash
# OVA export bench (not a test): kiln's export_ova of a 2 GiB qcow2 with
# ~1 GiB of data against the bare `qemu-img convert -O vmdk -o
# subformat=streamOptimized` it wraps. Target: within 10%.
#
#   bench/ova.sh                 (builds the ova_bench example in release mode)
#   SIZE_MIB=512 bench/ova.sh    for a quicker run (data = half the size)
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MIB=${SIZE_MIB:-2048}
DATA_MIB=$((SIZE_MIB / 2))
WORK=$(mktemp -d /tmp/kiln-ova-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

cargo build --release --example ova_bench >&2
TARGET=${CARGO_TARGET_DIR:-target}
BENCH="$TARGET/release/examples/ova_bench"

# Real-looking data: half random (incompressible, like already-compressed
# files), half system files (compressible like binaries and text), spread
# over the disk with holes between, so the qcow2 is sparse as a fresh
# install is.
echo "creating a ${SIZE_MIB} MiB qcow2 with ~${DATA_MIB} MiB of data in $WORK" >&2
truncate -s "${SIZE_MIB}M" "$WORK/src.raw"
QUARTER=$((DATA_MIB / 4))
dd if=/dev/urandom of="$WORK/src.raw" bs=1M count="$QUARTER" seek=1 conv=notrunc status=none
dd if=/dev/urandom of="$WORK/src.raw" bs=1M count="$QUARTER" seek=$((SIZE_MIB / 2)) conv=notrunc status=none
find /usr/lib /usr/share -type f -size +16k 2>/dev/null | head -n 20000 | xargs cat 2>/dev/null |
    head -c $((2 * QUARTER * 1024 * 1024)) >"$WORK/files.bin" || true
dd if="$WORK/files.bin" of="$WORK/src.raw" bs=1M seek=$((SIZE_MIB / 4)) conv=notrunc status=none
rm -f "$WORK/files.bin"
qemu-img convert -f raw -O qcow2 "$WORK/src.raw" "$WORK/src.qcow2"
rm -f "$WORK/src.raw"
sync
qemu-img info "$WORK/src.qcow2" | grep -E 'virtual size|disk size' >&2

# run LABEL CMD...: prints wall seconds; keeps them in $SECS
run() {
    local label=$1
    shift
    /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err" || {
        cat "$WORK/err" >&2
        exit 1
    }
    read -r SECS KB <"$WORK/time"
    printf '%-44s %8.2f s  peak RSS %6.1f MiB\n' "$label" "$SECS" "$(echo "$KB / 1024" | bc -l)"
}

# Alternate the two, twice, so page-cache warmth and drift hit both alike.
for round in 1 2; do
    rm -f "$WORK/bare.vmdk" "$WORK/out.ova"
    run "qemu-img convert streamOptimized (#$round)" \
        qemu-img convert -O vmdk -o subformat=streamOptimized "$WORK/src.qcow2" "$WORK/bare.vmdk"
    BARE=$SECS
    run "kiln export_ova (#$round)" "$BENCH" "$WORK/src.qcow2" "$WORK/out.ova"
    KILN=$SECS
    sed 's/^/  /' "$WORK/err"
    printf '  -> kiln / qemu-img = %.3f\n' "$(echo "$KILN / $BARE" | bc -l)"
done
printf 'sizes: vmdk %s bytes, ova %s bytes\n' \
    "$(stat -c %s "$WORK/bare.vmdk")" "$(stat -c %s "$WORK/out.ova")"
