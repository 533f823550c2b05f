#!/bin/sh
set -e
apt-get install -y mongodb
systemctl enable mongodb
