#!/usr/bin/env bash
# Builds the Debian bookworm systemd root filesystem the Ansible tests boot as podman
# containers, once, and imports it as a local image. Cached by the hash of this file:
#   tests/ansible/rootfs.sh [ARCH]   -> prints the image name (localhost/wix-bookworm:HASH)
# The packages the roles install are baked in, so a converge needs no network; the
# mirror is the one this machine's apt already uses (never written into the repo).
set -euo pipefail
cd "$(dirname "$0")/../.."
ARCH=${1:-amd64}
CACHE=${WIX_ANSIBLE_CACHE:-$PWD/var/ansible}
mkdir -p "$CACHE"
export CONTAINERS_CONF=${CONTAINERS_CONF:-$CACHE/containers.conf}
if [ ! -f "$CONTAINERS_CONF" ]; then
  # crun fails on this kind of machine; runc works. Generous ulimits for systemd.
  cat > "$CONTAINERS_CONF" <<'CONF'
[engine]
runtime = "runc"
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
CONF
fi
# The controller's test key is baked in (root, key-only), so boxes are reachable over SSH
# the moment sshd is up, like a flashed image after first boot.
KEY=$CACHE/ssh/id_ed25519
[ -f "$KEY" ] || { mkdir -p "$CACHE/ssh"; ssh-keygen -q -t ed25519 -N '' -C wix-test -f "$KEY"; }
TAG=$(cat "$0" "$KEY.pub" | sha256sum | cut -c1-12)-$ARCH
IMAGE=localhost/wix-bookworm:$TAG
if podman image exists "$IMAGE"; then echo "$IMAGE"; exit 0; fi

MIRROR=$(grep -rhs -E '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/ \
  | grep -oE 'https?://[^ ]+/debian/?$' | grep -v security | head -n1 || true)
[ -n "$MIRROR" ] || MIRROR=$(grep -rhs -oE 'https?://[^ ]+/debian/? bookworm' /etc/apt/sources.list /etc/apt/sources.list.d/ | head -n1 | cut -d' ' -f1)
[ -n "$MIRROR" ] || { echo "no Debian mirror found in /etc/apt/sources.list*" >&2; exit 1; }
SEC=${MIRROR%/debian*}/debian-security
TAR=$CACHE/rootfs-$TAG.tar
PKGS=systemd,systemd-sysv,dbus,udev,python3,python3-venv,python3-apt,sudo,iproute2,ca-certificates
PKGS=$PKGS,openssh-server,avahi-daemon,libnss-mdns,unattended-upgrades,sqlite3,tzdata,procps,less
# The relay tier (tests/relay): autossh for the boxes' tunnel role, nginx for the relay
# role (disabled at boot; only the relay role enables it), nftables for a box's NAT-like
# "no inbound connection" firewall.
PKGS=$PKGS,autossh,nginx-light,nftables
# systemd-binfmt is masked below: a privileged box shares the host's binfmt_misc, and its
# boot would flush the host's qemu-aarch64 registration in the middle of an arm64 image build.
echo "building $IMAGE from $MIRROR (about 100 s)" >&2
mmdebstrap --variant=apt --format=tar --architectures="$ARCH" --include="$PKGS" \
  --customize-hook='chroot "$1" systemctl mask getty@tty1.service console-getty.service systemd-logind.service >/dev/null 2>&1 || true' \
  --customize-hook='chroot "$1" systemctl mask systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount >/dev/null 2>&1 || true' \
  --customize-hook='rm -f "$1"/etc/machine-id; touch "$1"/etc/machine-id' \
  --customize-hook='chroot "$1" systemctl disable nginx.service nftables.service >/dev/null 2>&1 || true' \
  --customize-hook="mkdir -m 700 -p \"\$1\"/root/.ssh && install -m 600 $KEY.pub \"\$1\"/root/.ssh/authorized_keys" \
  bookworm "$TAR.part" \
  "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" "deb $SEC bookworm-security main" >&2
mv "$TAR.part" "$TAR"
podman import --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' "$TAR" "$IMAGE" >&2
rm -f "$TAR"
echo "$IMAGE"
