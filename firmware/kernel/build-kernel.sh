#!/bin/bash
# Build (or fetch from cache) the kvmrun guest kernel.
#
# usage: build-kernel.sh OUTDIR
#
# Produces OUTDIR/vmlinux (ELF, PVH entry), OUTDIR/bzImage, OUTDIR/kernel.config.
# Cache: ${KVMRUN_CACHE:-/var/cache/kvmrun}/kernel/<key>/{vmlinux,bzImage,config}
# where <key> = sha256 over: kernel source package name+version, the config
# fragment (kvmrun.config) and this script. Entries are written atomically
# (temp dir + rename). Builds happen in ${KVMRUN_CACHE}/work (source tree and a
# shared object dir, so a config change rebuilds incrementally).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: build-kernel.sh OUTDIR}
frag=$here/kvmrun.config
self=$here/build-kernel.sh

pkg=${KVMRUN_KERNEL_PKG:-linux-source-6.12}
tarball=/usr/src/$pkg.tar.xz
cache_root=${KVMRUN_CACHE:-/var/cache/kvmrun}
jobs=${KVMRUN_KERNEL_JOBS:-$(nproc)}

# Remove temp files/dirs left by an interrupted run (the cache entry itself is
# only ever created by an atomic rename, so it is never partial).
tmp_paths=()
cleanup() { [ ${#tmp_paths[@]} -eq 0 ] || rm -rf "${tmp_paths[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

die() { echo "firmware/kernel: error: $*" >&2; exit 1; }
log() { echo "firmware/kernel: $*"; }

[ -f "$tarball" ] || die "$tarball not found (apt-get install $pkg)"
version=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null) ||
    version="tarball-$(stat -c '%s-%Y' "$tarball")"

key=$({
    echo "pkg=$pkg version=$version"
    echo "fragment=$(sha256sum < "$frag" | cut -d' ' -f1)"
    echo "script=$(sha256sum < "$self" | cut -d' ' -f1)"
} | sha256sum | cut -c1-24)

entry=$cache_root/kernel/$key
files=(vmlinux bzImage config)

have_entry() { for f in "${files[@]}"; do [ -s "$entry/$f" ] || return 1; done; }

install_from_cache() {
    mkdir -p "$out"
    # copy (not hard link) so nothing done to out/ can corrupt the cache;
    # copy to a temp name then rename so out/ never holds a partial file.
    rm -f "$out/.kernel-key"
    tmp_paths+=("$out/.vmlinux.tmp" "$out/.bzImage.tmp" "$out/.kernel.config.tmp")
    cp "$entry/vmlinux" "$out/.vmlinux.tmp" && mv -f "$out/.vmlinux.tmp" "$out/vmlinux"
    cp "$entry/bzImage" "$out/.bzImage.tmp" && mv -f "$out/.bzImage.tmp" "$out/bzImage"
    cp "$entry/config" "$out/.kernel.config.tmp" && mv -f "$out/.kernel.config.tmp" "$out/kernel.config"
    echo "$key" > "$out/.kernel-key"
}

# 1. out/ already holds this key: nothing to do (make sees unchanged files).
if [ "$(cat "$out/.kernel-key" 2>/dev/null)" = "$key" ] &&
   [ -s "$out/vmlinux" ] && [ -s "$out/bzImage" ] && [ -s "$out/kernel.config" ]; then
    log "up to date (key $key)"
    exit 0
fi

# 2. warm cache.
if have_entry; then
    install_from_cache
    log "installed from cache $entry"
    exit 0
fi

# 3. cold: build.
mkdir -p "$cache_root/kernel" "$cache_root/work" 2>/dev/null ||
    die "cannot create $cache_root (set KVMRUN_CACHE to a writable directory)"
work=$cache_root/work
exec 9>"$work/.lock"
if ! flock -n 9; then
    log "another kernel build holds $work/.lock; waiting..."
    flock 9
fi
if have_entry; then   # built by whoever held the lock
    install_from_cache
    log "installed from cache $entry"
    exit 0
fi

start=$(date +%s)
vtag=$(printf '%s' "$pkg-$version" | tr -c 'A-Za-z0-9._+-' '_')
src=$work/src-$vtag
obj=$work/obj-$vtag

if [ ! -f "$src/Makefile" ]; then
    log "unpacking $tarball -> $src"
    rm -rf "$src"
    tmp=$(mktemp -d "$work/.unpack.XXXXXX"); tmp_paths+=("$tmp")
    tar -C "$tmp" -xf "$tarball"
    top=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | head -n1)
    [ -f "$top/Makefile" ] || die "unexpected tarball layout"
    mv -T "$top" "$src"
    rm -rf "$tmp"
fi
mkdir -p "$obj"

# Run kbuild as an independent make (not a sub-make of the caller's make, whose
# jobserver we cannot use from a script): drop inherited make state.
kmake() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
    make --no-print-directory -C "$src" O="$obj" ARCH=x86_64 \
        KBUILD_BUILD_USER=kvmrun KBUILD_BUILD_HOST=kvmrun "$@"
}

log "configuring (tinyconfig + kvm_guest.config + $(basename "$frag"))"
kmake -s tinyconfig
(cd "$src" && ARCH=x86_64 scripts/kconfig/merge_config.sh -m -O "$obj" \
    "$obj/.config" kernel/configs/kvm_guest.config "$frag" >"$obj/merge_config.log" 2>&1) ||
    { cat "$obj/merge_config.log" >&2; die "merge_config.sh failed"; }
kmake -s olddefconfig

# Every line of the fragment is a must-have: verify it survived olddefconfig.
missing=0
while IFS= read -r line; do
    if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
        sym=${BASH_REMATCH[1]}; want=${BASH_REMATCH[2]}
        got=$(grep -E "^$sym=" "$obj/.config" | head -n1 | cut -d= -f2- || true)
        if [ "$got" != "$want" ]; then
            echo "firmware/kernel: REQUIRED $sym=$want but final .config has ${got:-<not set>}" >&2
            missing=1
        fi
    elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set ]]; then
        sym=${BASH_REMATCH[1]}
        if got=$(grep -E "^$sym=" "$obj/.config"); then
            echo "firmware/kernel: REQUIRED $sym off but final .config has $got" >&2
            missing=1
        fi
    fi
done < "$frag"
[ $missing = 0 ] || die "required kernel options were dropped by Kconfig (unmet dependencies?); fix $frag. Final config: $obj/.config"
log "config verified: all $(grep -cE '^(CONFIG_|# CONFIG_)' "$frag") fragment lines present in final .config"

log "building bzImage + vmlinux with -j$jobs in $obj"
kmake -j"$jobs" bzImage vmlinux

# Sanity: vmlinux must carry the PVH entry note (Xen ELF note type 0x12).
if command -v readelf >/dev/null; then
    readelf -n "$obj/vmlinux" | grep -A1 -E '^ +Xen' | grep -qiE '0x00000012|PHYS32_ENTRY' ||
        die "vmlinux has no PVH (XEN_ELFNOTE_PHYS32_ENTRY) note"
fi

tmp=$(mktemp -d "$cache_root/kernel/.tmp-$key.XXXXXX"); tmp_paths+=("$tmp")
cp "$obj/vmlinux" "$tmp/vmlinux"
cp "$obj/arch/x86/boot/bzImage" "$tmp/bzImage"
cp "$obj/.config" "$tmp/config"
end=$(date +%s)
{
    echo "key=$key"
    echo "pkg=$pkg version=$version"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ) seconds=$((end - start)) jobs=$jobs"
    echo "cc=$(gcc --version | head -n1)"
} > "$tmp/info"
chmod 755 "$tmp"
if ! mv -T "$tmp" "$entry" 2>/dev/null; then
    rm -rf "$tmp"     # someone else won the race; their entry is equivalent
fi
have_entry || die "cache entry $entry incomplete"
install_from_cache
log "built in $((end - start)) s; cached as $entry"
