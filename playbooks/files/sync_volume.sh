#!/bin/sh
# gbrowse_aws sync: the data volume, on the staging instance (run as root by
# playbooks/sync.yml through ansible.builtin.script). Each command prints one
# JSON object on stdout; errors go to stderr with a non-zero exit.
#
#   sync_volume.sh prepare VOLUME_ID DEVICE LABEL MOUNT [DIR...]
#       find the attached volume, make the labelled ext4 file system on it if it
#       is blank (first sync), mount it on MOUNT, create the DIRs in it
#   sync_volume.sh grow VOLUME_ID DEVICE MOUNT BYTES
#       after ModifyVolume: wait for the device to reach BYTES, then resize2fs
#       (online; offline after unmounting if the kernel refuses)
#   sync_volume.sh finish MOUNT
#       flush and unmount, so the snapshot holds a clean file system
set -eu

fail() {
    echo "sync_volume: $*" >&2
    exit 1
}

# The block device of VOLUME_ID attached as DEVICE: on Nitro instances an NVMe
# device named after the volume id, on Xen ones /dev/xvdX for /dev/sdX.
find_device() {
    serial=$(printf '%s' "$1" | tr -d -)
    waited=0
    while :; do
        for candidate in "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_$serial" "$2" "/dev/xvd${2#/dev/sd}"; do
            if [ -b "$candidate" ]; then
                readlink -f "$candidate"
                return 0
            fi
        done
        [ "$waited" -lt 120 ] || fail "volume $1 (attached as $2) did not appear within 120 s"
        sleep 1
        waited=$((waited + 1))
    done
}

usage_json() {
    # shellcheck disable=SC2046
    set -- $(df -B1 --output=size,avail,used,itotal,iavail "$1" | tail -n 1)
    printf '"fs_bytes": %s, "fs_avail": %s, "fs_used": %s, "inodes": %s, "inodes_free": %s' "$1" "$2" "$3" "$4" "$5"
}

prepare() {
    [ $# -ge 4 ] || fail "usage: prepare VOLUME_ID DEVICE LABEL MOUNT [DIR...]"
    volume=$1 device=$2 label=$3 mount=$4
    shift 4
    dev=$(find_device "$volume" "$device")
    fstype=$(blkid -p -o value -s TYPE "$dev" 2>/dev/null || true)
    formatted=false
    case $fstype in
        "")
            mkfs.ext4 -q -m 0 -E nodiscard -L "$label" "$dev"
            formatted=true
            ;;
        ext4)
            found=$(blkid -p -o value -s LABEL "$dev" 2>/dev/null || true)
            [ "$found" = "$label" ] || fail "$dev is an ext4 file system labelled '$found', not '$label'"
            ;;
        *)
            fail "$dev holds a $fstype file system, not the ext4 '$label' volume of this sync (a data volume of the original LVM layout?)"
            ;;
    esac
    mkdir -p "$mount"
    mountpoint -q "$mount" || mount -o noatime "$dev" "$mount"
    trees=""
    for dir in "$@"; do
        mkdir -p "$mount/$dir"
    done
    for dir in databases lib/mysql lib/postgresql; do
        if [ -d "$mount/$dir" ]; then
            trees="$trees${trees:+, }\"$dir\""
        fi
    done
    printf '{"device": "%s", "device_bytes": %s, "formatted": %s, "trees": [%s], %s}\n' \
        "$dev" "$(blockdev --getsize64 "$dev")" "$formatted" "$trees" "$(usage_json "$mount")"
}

grow() {
    [ $# -eq 4 ] || fail "usage: grow VOLUME_ID DEVICE MOUNT BYTES"
    dev=$(find_device "$1" "$2")
    mount=$3 bytes=$4
    waited=0
    while [ "$(blockdev --getsize64 "$dev")" -lt "$bytes" ]; do
        [ "$waited" -lt 300 ] || fail "$dev did not grow to $bytes bytes within 300 s"
        sleep 1
        waited=$((waited + 1))
    done
    if resize2fs "$dev" >&2; then
        method=online
    else
        # Some kernels (or a container without CAP_SYS_RESOURCE) refuse the
        # online resize; the volume is ours alone, so resize it unmounted.
        umount "$mount"
        e2fsck -f -p "$dev" >&2 || [ $? -eq 1 ] || fail "e2fsck of $dev failed"
        resize2fs "$dev" >&2 || fail "resize2fs of $dev failed"
        mount -o noatime "$dev" "$mount"
        method=offline
    fi
    printf '{"device": "%s", "device_bytes": %s, "method": "%s", %s}\n' \
        "$dev" "$(blockdev --getsize64 "$dev")" "$method" "$(usage_json "$mount")"
}

finish() {
    [ $# -eq 1 ] || fail "usage: finish MOUNT"
    sync
    if mountpoint -q "$1"; then
        umount "$1"
    fi
    printf '{"unmounted": "%s"}\n' "$1"
}

command=${1:-}
[ $# -gt 0 ] && shift
case $command in
    prepare) prepare "$@" ;;
    grow) grow "$@" ;;
    finish) finish "$@" ;;
    *) fail "usage: sync_volume.sh prepare|grow|finish ..." ;;
esac
