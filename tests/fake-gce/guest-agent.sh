#!/bin/sh
# fake-gce's guest agent, run by the image's rcS before sshd starts: reads
# instance/attributes/ssh-keys from the metadata server (lines
# "USER:KEY-TYPE KEY COMMENT") and makes each USER with KEY in its
# authorized_keys, as Google's guest agent does; then starts startup-script.
# The tiny system has no sudo: users are made with uid 0 and /usr/bin/sudo
# only runs its command.
MD=http://169.254.169.254/computeMetadata/v1/instance/attributes
say() { echo "gce-guest-agent: $*"; echo "gce-guest-agent: $*" >/dev/ttyS0 2>/dev/null; return 0; }
get() { timeout 10 wget -q -O "$2" --header 'Metadata-Flavor: Google' "$MD/$1" 2>/dev/null; }

i=0
until get "" /tmp/attributes; do
	i=$((i + 1))
	[ $i -ge 60 ] && { say "no metadata server"; exit 0; }
	sleep 1
done
add_keys() {
	while IFS= read -r line || [ -n "$line" ]; do
		user=${line%%:*}
		key=${line#*:}
		case "$user" in ''|*[!a-z0-9_-]*) continue ;; esac
		[ "$user" = "$line" ] && continue
		home=/home/$user
		[ "$user" = root ] && home=/root
		if ! grep -q "^$user:" /etc/passwd; then
			echo "$user:x:0:0:$user:$home:/bin/sh" >>/etc/passwd
			echo "$user:*:19000:0:99999:7:::" >>/etc/shadow
		fi
		mkdir -p "$home/.ssh"
		grep -qxF "$key" "$home/.ssh/authorized_keys" 2>/dev/null && continue
		echo "$key" >>"$home/.ssh/authorized_keys"
		chmod 700 "$home/.ssh"
		chmod 600 "$home/.ssh/authorized_keys"
		say "added a key for $user"
	done <"$1"
}
get ssh-keys /tmp/ssh-keys && add_keys /tmp/ssh-keys
# Keys added later (setMetadata, e.g. Packer's wait_to_add_ssh_keys) are
# installed too, as Google's agent watches the metadata.
(while sleep 1; do get ssh-keys /tmp/ssh-keys.later && add_keys /tmp/ssh-keys.later; done) </dev/null >/dev/null 2>&1 &
if get startup-script /tmp/startup-script; then
	say "running startup-script"
	(sh /tmp/startup-script 2>&1 | sed 's/^/startup-script: /' >/dev/ttyS0) &
fi
exit 0
