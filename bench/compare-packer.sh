#!/usr/bin/env bash
# Runs the tiny template (examples/tiny) with Packer 1.6.6 (Debian's `packer`
# package, qemu builder, accelerator tcg) and with kiln, alternating, and
# prints each phase's wall time and the kiln/Packer ratio.
#
#   bench/compare-packer.sh [ROUNDS]      (default 2)
#
# Packer 1.6.6 cannot run the template unchanged: it has no `http_content`,
# so its copy serves the same install.cfg from `http_directory` instead.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
command -v packer >/dev/null || apt-get install -y -qq packer
cargo build --release --quiet
kiln="$PWD/target/release/kiln"
out=$(scripts/build-tiny-installer)
iso=$(sed -n 1p <<<"$out"); sum=$(sed -n 2p <<<"$out")

work=$(mktemp -d /tmp/kiln-vs-packer.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r examples/tiny/. "$work/"
mkdir -p "$work/http"
printf 'disk=auto\nhostname=tiny\nusername=root\npassword=kiln-tiny\nfinish=reboot\n' > "$work/http/install.cfg"
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
t = json.load(open(f"{work}/tiny.json"))
b = t["builders"][0]
b.pop("http_content")
b["http_directory"] = "http"
json.dump(t, open(f"{work}/packer.json", "w"), indent=2)
PY

run() { # name command... ; prints "seconds"
  local name=$1; shift
  rm -rf "$work/output-tiny"
  local start end
  start=$(date +%s.%N)
  (cd "$work" && "$@" > "$work/$name.log" 2>&1) || { echo "$name failed:"; tail -20 "$work/$name.log"; exit 1; }
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}

vars=(-var "iso_url=$iso" -var "iso_checksum=sha256:$sum" -var accelerator=tcg)
for r in $(seq "$rounds"); do
  p=$(run "packer-$r" env PACKER_LOG=0 packer build -machine-readable "${vars[@]}" packer.json)
  k=$(run "kiln-$r" "$kiln" build -machine-readable "${vars[@]}" tiny.json)
  echo "round $r: packer ${p}s, kiln ${k}s"
done

python3 - "$work" "$rounds" <<'PY'
import sys, re, statistics
work, rounds = sys.argv[1], int(sys.argv[2])
# Phase boundaries: the first line whose message matches, in either tool.
PHASES = [
    ("start VM",        r"Starting VM|==> Starting the VM"),
    ("boot command",    r"Typing the boot command|==> Typing the boot command"),
    ("wait for SSH",    r"Waiting for SSH|==> Waiting for SSH"),
    ("provision",       r"Provisioning with|==> Provisioning"),
    ("shutdown",        r"Gracefully halting|==> Shutting down"),
    ("convert",         r"Converting hard drive|==> Compacting"),
]
def phases(path):
    marks = {}
    first = last = None
    for line in open(path, errors="replace"):
        parts = line.rstrip("\n").split(",", 4)
        if len(parts) < 4 or not parts[0].isdigit():
            continue
        ts = int(parts[0]); msg = parts[-1]
        first = ts if first is None else first; last = ts
        for name, pat in PHASES:
            if name not in marks and re.search(pat, msg):
                marks[name] = ts
    names = [n for n, _ in PHASES]
    seq = [("setup", first)] + [(n, marks.get(n)) for n in names] + [("end", last)]
    seq = [(n, t) for n, t in seq if t is not None]
    res = {}
    for (n, t), (_, t2) in zip(seq, seq[1:]):
        res[n] = t2 - t
    res["total"] = last - first
    return res
rows = {}
for tool in ("packer", "kiln"):
    for r in range(1, rounds + 1):
        for k, v in phases(f"{work}/{tool}-{r}.log").items():
            rows.setdefault(k, {}).setdefault(tool, []).append(v)
print(f"{'phase':14} {'packer s':>9} {'kiln s':>9} {'kiln/packer':>12}   (1 s resolution: machine-readable timestamps)")
for k in ["setup"] + [n for n, _ in PHASES] + ["total"]:
    if k not in rows: continue
    p = statistics.mean(rows[k].get("packer", [0])); q = statistics.mean(rows[k].get("kiln", [0]))
    ratio = f"{q / p:.2f}" if p else "-"
    print(f"{k:14} {p:9.1f} {q:9.1f} {ratio:>12}")
PY
