#!/usr/bin/env bash
# Installs the web servers the e2e tests put in front of the SCGI backends
# (and systemd-socket-activate for the socket-activation tests):
# nginx, Apache httpd (apache2, with mod_proxy_scgi) and lighttpd (mod_scgi),
# from Debian's packages, when they are missing. Starts nothing: the tests
# start their own instances from generated configs in temp directories.
#
# Idempotent; a no-op when everything is already there. Needs root (CI runs
# as root). Usage: bash .ci/install-webservers.sh
set -euo pipefail

need=()
[ -x /usr/sbin/nginx ] || need+=(nginx)
{ [ -x /usr/sbin/apache2 ] && [ -f /usr/lib/apache2/modules/mod_proxy_scgi.so ]; } || need+=(apache2)
# lighttpd 1.4.69 builds mod_scgi into the binary (no mod_scgi.so).
[ -x /usr/sbin/lighttpd ] || need+=(lighttpd)
# The socket-activation tests start the examples under systemd-socket-activate
# (Debian's systemd package; no systemd is started).
[ -x /usr/bin/systemd-socket-activate ] || need+=(systemd)
# The tests run the servers' workers as www-data (as Debian's packages do).
getent passwd www-data >/dev/null || need+=(passwd)

if [ ${#need[@]} -eq 0 ]; then
    echo "install-webservers: nginx, apache2, lighttpd and systemd-socket-activate are installed"
    exit 0
fi
echo "install-webservers: installing ${need[*]}"

if [ "$(id -u)" -ne 0 ]; then
    echo "install-webservers: must run as root to install ${need[*]}" >&2
    exit 1
fi

# The packages' maintainer scripts start their services through
# invoke-rc.d; a policy-rc.d that exits 101 forbids that. Keep an existing
# one (containers often ship it) and restore it afterwards.
policy=/usr/sbin/policy-rc.d
backup=""
if [ -e "$policy" ]; then
    backup="$(mktemp)"
    cp -p "$policy" "$backup"
fi
restore_policy() {
    if [ -n "$backup" ]; then
        cp -p "$backup" "$policy"
        rm -f "$backup"
    else
        rm -f "$policy"
    fi
}
trap restore_policy EXIT
printf '#!/bin/sh\n# install-webservers.sh: start no service during the install\nexit 101\n' >"$policy"
chmod 755 "$policy"

export DEBIAN_FRONTEND=noninteractive
# A mirror hiccup should not fail CI: a few bounded tries.
retry() {
    local i
    for i in 1 2 3; do
        "$@" && return 0
        echo "install-webservers: '$*' failed (try $i of 3)" >&2
        sleep $((i * 5))
    done
    return 1
}
retry apt-get update -q
retry apt-get install -y -q --no-install-recommends "${need[@]}"

# Belt and braces: if a service was started anyway (no policy-rc.d support,
# a systemd that ignores it), stop exactly the processes named in the
# packages' default pid files.
for pidfile in /run/nginx.pid /run/apache2/apache2.pid /var/run/apache2/apache2.pid /run/lighttpd.pid; do
    if [ -s "$pidfile" ]; then
        pid="$(cat "$pidfile")"
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            echo "install-webservers: stopping pid $pid from $pidfile"
            kill "$pid" || true
        fi
    fi
done

/usr/sbin/nginx -v
/usr/sbin/apache2 -v | head -n 1
/usr/sbin/lighttpd -v
