#!/bin/sh
# install-deps.sh - install the Debian packages the build and tests need,
# only those that are missing (apt-get runs only when something is).
set -eu
PKGS="gcc make cmake pkg-config libuv1-dev libcjson-dev libsqlite3-dev sqlite3
liblua5.4-dev lua5.4 libcurl4-openssl-dev zlib1g-dev libhttp-parser-dev
libpcre2-dev libssl-dev libcmocka-dev lua-busted curl"
missing=
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
echo "installing missing packages:$missing"
SUDO=
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to install:$missing" >&2; exit 1; }
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
