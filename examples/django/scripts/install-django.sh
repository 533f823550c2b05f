#!/bin/sh
# Installs Django from Debian's packages, creates a project with a superuser,
# and a systemd unit that serves it on $DJANGO_PORT at boot.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3-django curl nftables
useradd --system --home-dir /srv/site --create-home django || true
cd /srv/site
[ -f manage.py ] || su django -s /bin/sh -c 'django-admin startproject site .'
# Listen on every address; the firewall rule opens the port.
sed -i "s/^ALLOWED_HOSTS = .*/ALLOWED_HOSTS = ['*']/" site/settings.py
su django -s /bin/sh -c 'python3 manage.py migrate --noinput'
su django -s /bin/sh -c "DJANGO_SUPERUSER_PASSWORD='$DJANGO_SUPERUSER_PASSWORD' python3 manage.py createsuperuser --noinput --username admin --email admin@example.com" || true
install -m 0644 /tmp/django-site.service /etc/systemd/system/django-site.service
systemctl daemon-reload
systemctl enable --now django-site
