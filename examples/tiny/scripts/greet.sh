#!/bin/sh
set -e
echo "$GREETING (PACKER_BUILD_NAME=$PACKER_BUILD_NAME)"
echo "$GREETING" > /root/kiln-greeting
