#!/usr/bin/env bash
# Vagrant box packing bench (not a test): kiln's parallel gzip against
# `tar -czf` (one gzip process) and `tar -I pigz -cf`, at the same level,
# on a 2 GiB qcow2 filled with real-looking data (the machine's own /usr,
# which compresses about as well as an installed system disk, plus some
# zeroed space). Peak RSS from /usr/bin/time. Targets: >= 1.8x faster than
# tar -czf, at least as fast as pigz, output <= 2% larger, peak RSS < 256 MiB.
#
#   bench/box.sh               (builds the box_bench example in release mode)
#   SIZE_MIB=512 bench/box.sh  for a quicker run;  LEVEL=6 is the default
#   DISK=some.qcow2 bench/box.sh  to pack an existing image
#   PACKER=0 bench/box.sh      skips the Packer comparison below
#
# Packer: Debian's `packer` (1.6.6, installed if missing) and `kiln build`
# run the same template on the same disk: the qemu builder boots a copy of
# it (disk_image; the tiny installer's kernel boots, waits 15 s for
# Packer's VNC connection, panics and the VM stops, so nothing in the disk
# changes), then the vagrant post-processor packs the libvirt box at each
# tool's default level (Packer 6, kiln 5: see BOX_DEFAULT_LEVEL). Each tool's output lines are
# timestamped; the post-processor's time is from its first line to the
# end of the build. Packer copies the disk into a scratch folder before
# packing it and kiln does not: that copy is part of Packer's time, as it
# is of every Packer build.
#
# Last run (2 shared cores, load average ~2.5 from other jobs, release,
# 2 GiB qcow2 = 1.79 GiB of /usr data, level 6):
#   kiln 28.6 s wall / 29.2 s CPU, 722.5 MiB, peak RSS 14.7 MiB
#   tar -czf 70.3 s / 69.7 s CPU, 717.4 MiB; pigz 40.9 s / 59.6 s CPU, 716.7 MiB
#   -> 2.46x tar -czf, 1.43x pigz, +0.7% / +0.8% size
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

SIZE_MIB=${SIZE_MIB:-2048}
LEVEL=${LEVEL:-6}
WORK=$(mktemp -d /tmp/kiln-box-bench.XXXXXX)
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

cargo build --release --example box_bench >&2
TARGET=${CARGO_TARGET_DIR:-target}
BENCH=$(realpath "$TARGET/release/examples/box_bench")

if [ -n "${DISK:-}" ]; then
    # DISK=path reuses an image (hard-linked, so the original stays).
    ln "$DISK" "$WORK/box.img" 2>/dev/null || cp "$DISK" "$WORK/box.img"
else
    echo "creating a ${SIZE_MIB} MiB qcow2 in $WORK" >&2
    # 7/8 data from /usr (binaries, libraries, text), 1/8 zeros, as a disk
    # with some free space; qcow2 without compression, as builders leave it.
    DATA_MIB=$((SIZE_MIB * 7 / 8))
    {
        tar -cf - -C / usr 2>/dev/null | head -c $((DATA_MIB << 20)) || true
    } >"$WORK/raw"
    truncate -s "${SIZE_MIB}M" "$WORK/raw"
    qemu-img convert -f raw -O qcow2 "$WORK/raw" "$WORK/box.img"
    rm "$WORK/raw"
fi
echo '{"provider":"libvirt","format":"qcow2","virtual_size":2}' >"$WORK/metadata.json"
printf 'Vagrant.configure("2") do |config|\nend\n' >"$WORK/Vagrantfile"
INPUT=$(stat -c %s "$WORK/box.img")
# Warm the page cache so every contender reads from memory.
cat "$WORK/box.img" >/dev/null

# run LABEL OUT CMD...: wall seconds, MiB/s of input, peak RSS, output size
run() {
    local label=$1 out=$2
    shift 2
    /usr/bin/time -f '%e %M %U %S' -o "$WORK/time" "$@" 2>"$WORK/err" || {
        cat "$WORK/err" >&2
        exit 1
    }
    read -r SECS KB USER SYS <"$WORK/time"
    CPU=$(echo "$USER + $SYS" | bc -l)
    SIZE=$(stat -c %s "$out")
    printf '%-28s %7.2f s wall %7.2f s CPU %7.1f MiB/s  peak RSS %6.1f MiB  output %8.1f MiB (%.2f%% of input)\n' \
        "$label" "$SECS" "$CPU" "$(echo "$INPUT / 1048576 / $SECS" | bc -l)" "$(echo "$KB / 1024" | bc -l)" \
        "$(echo "$SIZE / 1048576" | bc -l)" "$(echo "100 * $SIZE / $INPUT" | bc -l)"
    rm -f "$out"
}

cd "$WORK"
run "kiln (parallel gzip)" kiln.box "$BENCH" box.img kiln.box "$LEVEL"
KILN_S=$SECS KILN_SIZE=$SIZE KILN_KB=$KB KILN_CPU=$CPU
if [ "$LEVEL" = 6 ]; then
    run "tar -czf (gzip -6)" tar.box tar -czf tar.box box.img metadata.json Vagrantfile
else
    run "tar -I 'gzip -$LEVEL' -cf" tar.box tar -I "gzip -$LEVEL" -cf tar.box box.img metadata.json Vagrantfile
fi
TAR_S=$SECS TAR_SIZE=$SIZE TAR_CPU=$CPU
run "tar -I pigz -cf (-$LEVEL)" pigz.box tar -I "pigz -$LEVEL" -cf pigz.box box.img metadata.json Vagrantfile
PIGZ_S=$SECS PIGZ_SIZE=$SIZE PIGZ_CPU=$CPU

echo
printf 'speed-up vs tar -czf: %.2fx (target >= 1.8)\n' "$(echo "$TAR_S / $KILN_S" | bc -l)"
printf 'speed-up vs pigz:     %.2fx (target >= 1.0)\n' "$(echo "$PIGZ_S / $KILN_S" | bc -l)"
# Wall time on a shared machine follows each process's share of the CPUs;
# CPU seconds show the work each one needs.
printf 'CPU seconds: kiln %.1f, gzip %.1f, pigz %.1f (load average: %s)\n' \
    "$KILN_CPU" "$TAR_CPU" "$PIGZ_CPU" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'size vs gzip: %+.2f%%, vs pigz: %+.2f%% (target <= +2%%)\n' \
    "$(echo "100 * ($KILN_SIZE - $TAR_SIZE) / $TAR_SIZE" | bc -l)" \
    "$(echo "100 * ($KILN_SIZE - $PIGZ_SIZE) / $PIGZ_SIZE" | bc -l)"
printf 'kiln peak RSS: %.1f MiB (target < 256)\n' "$(echo "$KILN_KB / 1024" | bc -l)"

# --- Packer and kiln building the same box from the same disk -------------
[ "${PACKER:-1}" = 1 ] || exit 0
command -v packer >/dev/null || apt-get install -y -qq packer >/dev/null
(cd "$REPO" && cargo build --release --bin kiln >&2)
KILN=$(cd "$REPO" && realpath "$TARGET/release/kiln")
out=$(cd "$REPO" && scripts/build-tiny-installer)
ISO=$(sed -n 1p <<<"$out")
xorriso -osirrox on -indev "$ISO" -extract /boot/vmlinuz "$WORK/vmlinuz" \
    -extract /boot/installer.gz "$WORK/initrd" >/dev/null 2>&1
for tool in packer kiln; do
    cat >"$WORK/$tool.json" <<JSON
{
  "builders": [{
    "type": "qemu", "iso_url": "box.img", "iso_checksum": "none",
    "disk_image": true, "format": "qcow2", "skip_compaction": true,
    "accelerator": "tcg", "headless": true, "memory": 256, "boot_wait": "2s",
    "communicator": "none", "shutdown_timeout": "5m",
    "output_directory": "out-$tool", "vm_name": "disk.qcow2",
    "qemuargs": [["-kernel", "vmlinuz"], ["-initrd", "initrd"], ["-no-reboot"],
                 ["-append", "rdinit=/bin/busybox panic=1 sleep 15"]]
  }],
  "post-processors": [{"type": "vagrant", "output": "$tool.box"}]
}
JSON
done
# stamped TOOL CMD...: runs CMD with each output line prefixed by the time.
stamped() {
    local tool=$1
    shift
    "$@" 2>&1 | while IFS= read -r line; do
        printf '%s %s\n' "$(date +%s.%N)" "$line"
    done >"$WORK/$tool.log"
}
# The post-processor's seconds: its first line to the last line.
pp_seconds() {
    awk '/Running post-processor: vagrant|post-processor post-processors\[0\] \(vagrant\)/ && !s { s = $1 }
         { e = $1 } END { if (s) printf "%.2f", e - s; else print "?" }' "$WORK/$1.log"
}
stamped packer env PACKER_LOG=0 CHECKPOINT_DISABLE=1 packer build -machine-readable packer.json
stamped kiln "$KILN" build -machine-readable kiln.json
P_PP=$(pp_seconds packer) K_PP=$(pp_seconds kiln)
P_SIZE=$(stat -c %s packer.box) K_SIZE=$(stat -c %s kiln.box)
echo
printf 'same disk, same template: packer post-processor %s s, %.1f MiB; kiln %s s, %.1f MiB\n' \
    "$P_PP" "$(echo "$P_SIZE / 1048576" | bc -l)" "$K_PP" "$(echo "$K_SIZE / 1048576" | bc -l)"
printf 'kiln vs packer: %.2fx faster (target >= 1.0), size %+.2f%% (target <= 0)\n' \
    "$(echo "$P_PP / $K_PP" | bc -l)" "$(echo "100 * ($K_SIZE - $P_SIZE) / $P_SIZE" | bc -l)"
