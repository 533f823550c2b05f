#!/usr/bin/env bash
# SSH stress (not a test): many exec and file-transfer round trips over one
# kiln session against real dropbear and OpenSSH servers on loopback, each in
# its own mount namespace (as the SSH tests run them). Prints every failure
# and a summary per server; the failure count must be 0.
#
#   bench/ssh-stress.sh                    200 execs and 100 transfers per server and method
#   EXECS=1000 TRANSFERS=400 bench/ssh-stress.sh
#   ROUNDS=5 bench/ssh-stress.sh           repeat the whole run
#
# Transfers cycle through a small file, a 4 MiB file, a directory tree and
# a failing upload followed at once by a command. Needs root, dropbear-bin,
# openssh-server, openssh-sftp-server.
set -euo pipefail
cd "$(dirname "$0")/.."

EXECS=${EXECS:-200}
TRANSFERS=${TRANSFERS:-100}
ROUNDS=${ROUNDS:-1}
WORK=$(mktemp -d /tmp/kiln-ssh-stress.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --example ssh_stress >&2
TARGET=${CARGO_TARGET_DIR:-target}
STRESS="$TARGET/debug/examples/ssh_stress"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

ssh-keygen -q -t ed25519 -N '' -C kiln-stress -f "$WORK/client_key"
mkdir -p "$WORK/dot-ssh" /root/.ssh /run/sshd
cp "$WORK/client_key.pub" "$WORK/dot-ssh/authorized_keys"

# start KIND PORT: the server in its own process group and mount namespace.
start() {
    local kind=$1 port=$2 cmd
    case $kind in
        dropbear)
            [ -f "$WORK/dropbear_key" ] || dropbearkey -t ed25519 -f "$WORK/dropbear_key" >/dev/null 2>&1
            cmd="exec /usr/sbin/dropbear -F -E -r $WORK/dropbear_key -P $WORK/dropbear.pid -p 127.0.0.1:$port"
            ;;
        openssh)
            [ -f "$WORK/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$WORK/host_key"
            cat >"$WORK/sshd_config" <<EOF
ListenAddress 127.0.0.1
HostKey $WORK/host_key
PidFile $WORK/sshd.pid
AuthorizedKeysFile $WORK/dot-ssh/authorized_keys
PermitRootLogin yes
UsePAM no
StrictModes no
Subsystem sftp /usr/lib/openssh/sftp-server
LogLevel ERROR
MaxSessions 100
EOF
            cmd="exec /usr/sbin/sshd -D -e -f $WORK/sshd_config -p $port"
            ;;
    esac
    setsid unshare -m --propagation private sh -c \
        "mount --bind '$WORK/dot-ssh' /root/.ssh && $cmd" >"$WORK/$kind.log" 2>&1 &
    PIDS+=($!)
}

failures=0
for round in $(seq 1 "$ROUNDS"); do
    for kind in dropbear openssh; do
        port=$(free_port)
        start "$kind" "$port"
        methods=(scp)
        [ "$kind" = openssh ] && methods+=(sftp)
        for method in "${methods[@]}"; do
            mkdir -p "$WORK/files"
            printf 'round %s %-8s %-4s ' "$round" "$kind" "$method"
            if ! out=$("$STRESS" "$port" "$WORK/client_key" "$WORK/files" "$EXECS" "$TRANSFERS" "$method"); then
                failures=$((failures + $(grep -c '^FAIL' <<<"$out" || true)))
                [ "$(grep -c '^FAIL' <<<"$out" || true)" -gt 0 ] || failures=$((failures + 1))
            fi
            printf "%s\n" "$out" | tail -n 20
        done
        kill -KILL -- "-${PIDS[-1]}" 2>/dev/null || true
    done
done
echo "failures: $failures"
[ "$failures" -eq 0 ]
