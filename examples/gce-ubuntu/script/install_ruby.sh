#!/bin/sh
set -e
apt-get update
apt-get install -y ruby-full ruby-bundler build-essential
