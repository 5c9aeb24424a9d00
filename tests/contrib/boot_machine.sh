#!/bin/sh
# Runs as PID 1 of new pid, mount, uts, ipc, net and cgroup namespaces (see systemd_machine.py):
# builds a root from an overlay of / on a tmpfs, pivots into it and execs systemd.
# Usage: boot_machine.sh MACHINE_DIR SEED_DIR TARGET
#   MACHINE_DIR: an empty directory; a tmpfs is mounted on it (gone with the mount namespace)
#   SEED_DIR:    copied to /opt/seed inside (wheels, units, configs, scripts)
#   TARGET:      the unit to boot into
set -eu
machine=$1
seed=$2
target=$3
console=$(tty)

mount -t tmpfs -o mode=0755,size=2g tmpfs "$machine"
mkdir "$machine/upper" "$machine/work" "$machine/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$machine/upper,workdir=$machine/work" "$machine/root"
root=$machine/root

mount -t proc proc "$root/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$root/sys/fs/cgroup"

mount -t tmpfs -o mode=0755,nosuid,size=10m tmpfs "$root/dev"
for node in null zero full random urandom tty; do
    touch "$root/dev/$node"
    mount --bind "/dev/$node" "$root/dev/$node"
done
mkdir "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
touch "$root/dev/console"
mount --bind "$console" "$root/dev/console"

mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$root/run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp"

systemd-id128 new >"$root/etc/machine-id"
echo spotify-runner-test >"$root/etc/hostname"
hostname spotify-runner-test
rm -rf "$root/opt/seed"
cp -a "$seed" "$root/opt/seed"

units=$root/etc/systemd/system
mkdir -p "$units"
cat >"$units/$target" <<UNIT
[Unit]
Description=spotify-runner's test boot
Requires=sysinit.target sockets.target
After=sysinit.target sockets.target
AllowIsolate=yes
UNIT
# What a container must not do to the host's kernel, and hardware it does not have.
for unit in systemd-sysctl.service systemd-modules-load.service systemd-binfmt.service \
    proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
    sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount \
    sys-fs-fuse-connections.mount systemd-udevd.service systemd-udev-trigger.service \
    systemd-udev-settle.service systemd-hwdb-update.service systemd-pstore.service \
    systemd-firstboot.service systemd-random-seed.service systemd-timesyncd.service \
    systemd-journald-audit.socket systemd-networkd.service systemd-resolved.service \
    apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
    ln -sf /dev/null "$units/$unit"
done
# systemd takes a new fstab as mounts to make; the host's has nothing for this root.
: >"$root/etc/fstab"

cd "$root"
mkdir -p .oldroot
pivot_root . .oldroot
cd /
umount -l /.oldroot
rmdir /.oldroot
# systemd-nspawn does this too: without it LoadCredential=, PrivateTmp= and friends give empty
# or unreadable directories.
mount --make-rshared /
export container=spotify-runner-test
exec /lib/systemd/systemd --unit="$target"
