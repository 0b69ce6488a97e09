#!/bin/sh
# podman-l1-setup.sh: make podman usable (as root, no systemd, no registry, no network set-up)
# inside the nested L1 of scripts/with-kvm, or on any plain Linux host, for tests of
# `podman --runtime kvmrun`. Source it and call the function, or run it:
#
#   . podman-l1-setup.sh && podman_setup [IMAGE_TARBALL]
#   sh podman-l1-setup.sh [IMAGE_TARBALL]
#
# Afterwards CONTAINERS_CONF and CONTAINERS_STORAGE_CONF are exported (when sourced) and the
# image localhost/busybox:kvmrun exists. IMAGE_TARBALL: a rootfs tarball made on the host (e.g.
# by `podman_rootfs_tar`); without it the rootfs is built here from busybox-static.
#
# Everything podman writes goes under $PODMAN_STATE (default /run/kvmrun-podman, a tmpfs in L1),
# except /var/lib/containers/cache (blob info cache) and /var/tmp (TMPDIR), which are made
# writable with a tmpfs when they are not (L1's /host is an overlay over the read-only host root,
# or the read-only root itself when overlay is missing).

podman_conf_dir=${PODMAN_CONF_DIR:-/run/kvmrun-podman/conf}
podman_state=${PODMAN_STATE:-/run/kvmrun-podman}
podman_image=${PODMAN_IMAGE:-localhost/busybox:kvmrun}

# podman_writable DIR: DIR exists and is writable, with a tmpfs over it if it was not.
podman_writable() {
	mkdir -p "$1" 2>/dev/null
	probe="$1/.podman-setup.$$"
	if (: >"$probe") 2>/dev/null; then
		rm -f "$probe"
		return 0
	fi
	mount -t tmpfs -o mode=1777 podman-tmp "$1" || {
		echo "podman_setup: $1 is not writable and a tmpfs cannot be mounted on it" >&2
		return 1
	}
}

# podman_write_conf: containers.conf + storage.conf under $podman_conf_dir (see
# /work/notes/podman-conf/ for the commented versions).
podman_write_conf() {
	mkdir -p "$podman_conf_dir" "$podman_state" || return 1
	cat >"$podman_conf_dir/containers.conf" <<EOF
[containers]
netns = "none"
log_driver = "k8s-file"
default_ulimits = ["nofile=4096:4096", "nproc=32768:32768"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$podman_state/libpod"
image_copy_tmp_dir = "storage"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "kvmrun"]
EOF
	cat >"$podman_conf_dir/storage.conf" <<EOF
[storage]
driver = "overlay"
runroot = "$podman_state/storage-run"
graphroot = "$podman_state/storage"

[storage.options.overlay]
mountopt = "nodev"
EOF
}

# podman_rootfs_tar OUT.tar: a busybox rootfs (busybox-static and its applet links, /etc/passwd,
# /etc/group, empty /proc /sys /dev /tmp /root) as a tarball for `podman import`.
podman_rootfs_tar() {
	bb=$(command -v busybox) || { echo "podman_setup: no busybox (apt-get install busybox-static)" >&2; return 1; }
	root=$(mktemp -d "${TMPDIR:-/tmp}/podman-rootfs.XXXXXX") || return 1
	mkdir -p "$root/bin" "$root/etc" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/root" &&
		cp "$bb" "$root/bin/busybox" &&
		chroot "$root" /bin/busybox --install -s /bin &&
		echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd" &&
		echo 'root:x:0:' >"$root/etc/group" &&
		chmod 1777 "$root/tmp" &&
		tar -C "$root" -cf "$1" .
	rc=$?
	rm -rf "$root"
	[ $rc = 0 ] || echo "podman_setup: cannot build the busybox rootfs tarball $1" >&2
	return $rc
}

# podman_setup [TARBALL]: configuration, writable directories, the busybox image.
podman_setup() {
	command -v podman >/dev/null || { echo "podman_setup: podman is not installed" >&2; return 1; }
	podman_write_conf || return 1
	export CONTAINERS_CONF="$podman_conf_dir/containers.conf"
	export CONTAINERS_STORAGE_CONF="$podman_conf_dir/storage.conf"
	podman_writable /var/tmp || return 1
	podman_writable /var/lib/containers || return 1
	podman image exists "$podman_image" 2>/dev/null && return 0
	tarball=${1:-}
	if [ -z "$tarball" ]; then
		tarball=$podman_state/busybox-rootfs.tar
		podman_rootfs_tar "$tarball" || return 1
	fi
	podman import --quiet --change 'CMD ["/bin/sh"]' "$tarball" "$podman_image" >/dev/null || {
		echo "podman_setup: podman import $tarball failed" >&2
		return 1
	}
}

# Run as a script: do it (the exports then only reach commands started from here).
case $0 in
*podman-l1-setup.sh) podman_setup "$@" ;;
esac
