#!/bin/sh
set -eux
apt-get -y autoremove --purge
apt-get clean
rm -rf /var/lib/apt/lists/*
: > /etc/machine-id
