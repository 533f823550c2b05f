#!/bin/sh
# Installs Django from Debian's packages, creates a project with the
# tutorial's superuser, and a systemd unit that serves it on $DJANGO_PORT at boot.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3-django curl nftables
id django >/dev/null 2>&1 || useradd --system --home-dir /srv/site --create-home django
cd /srv/site
[ -f manage.py ] || runuser -u django -- django-admin startproject mysite .
# Listen on every address; the firewall rule opens the port.
sed -i "s/^ALLOWED_HOSTS = .*/ALLOWED_HOSTS = ['*']/" mysite/settings.py
runuser -u django -- python3 manage.py migrate --noinput
# The password comes from the environment (a sensitive variable), never from
# the command line, where ps would show it.
runuser -u django -- python3 manage.py shell -c "
import os
from django.contrib.auth.models import User
if not User.objects.filter(username='django').exists():
    User.objects.create_superuser('django', 'django@example.com', os.environ['DJANGO_SUPERUSER_PASSWORD'])
print('superuser django created')
"
install -m 0644 /tmp/django-site.service /etc/systemd/system/django-site.service
systemctl daemon-reload
systemctl enable --now django-site
