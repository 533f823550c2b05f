#!/bin/sh
# Drops inbound traffic except SSH and the Django port, with nftables.
set -eu
install -m 0755 /tmp/kiln-django.nft /etc/nftables.conf
systemctl enable --now nftables
nft list ruleset | grep -q "dport { 22, 7777 } accept"
