#!/bin/sh
# Provisioning of the installed system (run as root through sudo): what an
# image usually gets after the install. Editing this file and building again
# resumes from the install checkpoint: only this runs again.
set -eu
echo "provisioning $BUILD_NAME on $(hostname): $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)"
echo "Built by kiln from examples/debian-12-debootstrap." >/etc/motd
echo "provisioned by kiln at $(date -u +%Y-%m-%dT%H:%M:%SZ)" >/etc/kiln-provisioned
# Every unit came up (degraded would name the failed ones).
systemctl is-system-running || systemctl --failed --no-legend
dpkg-query -W -f '${Package}\n' | wc -l | sed 's/$/ packages installed/'
