"""Where a missing stick or disk should be mounted is never taken for a folder to write in (pure)."""

from __future__ import annotations

import pytest

from pkgcache_suite.mountpoints import fstab_mount_points, unmounted_place

FSTAB = """# /etc/fstab
UUID=1 / ext4 defaults 0 1
UUID=2 /srv/cache ext4 defaults,nofail 0 2
UUID=3 none swap sw 0 0
LABEL=STICK /mnt/my\\040stick vfat noauto 0 0
"""


@pytest.mark.parametrize(("path", "mounted", "existing", "refused"), [
    ("/srv/cache/pkgcache", set(), {"/srv/cache"}, "/srv/cache is a mount point in the fstab"),
    ("/srv/cache/pkgcache", {"/srv/cache"}, {"/srv/cache"}, None),
    ("/srv/cache", set(), set(), "/srv/cache is a mount point"),
    ("/media/usb/pkgcache", set(), {"/media/usb"}, "nothing is mounted on /media/usb"),
    ("/media/usb/pkgcache", {"/media/usb"}, {"/media/usb"}, None),
    ("/media/alice/STICK/pkgcache", {"/media/alice/STICK"}, {"/media/alice", "/media/alice/STICK"}, None),
    ("/media/alice/STICK/pkgcache", set(), {"/media/alice", "/media/alice/STICK"},
     "nothing is mounted on /media/alice/STICK"),
    ("/run/media/alice/STICK/pkgcache", set(), {"/run/media/alice"}, "nothing is mounted on /run/media/alice"),
    ("/run/media/alice/STICK/pkgcache", {"/run/media/alice/STICK"}, {"/run/media/alice/STICK"}, None),
    ("/mnt/my stick/pkgcache", set(), {"/mnt/my stick"}, "/mnt/my stick is a mount point in the fstab"),
    ("/mnt/data/x", set(), {"/mnt/data"}, "nothing is mounted on /mnt/data"),
    ("/var/cache/pkgcache", set(), {"/var/cache"}, None),
    ("/tmp/pytest/ds", set(), {"/tmp/pytest"}, None),
    ("/media", set(), {"/media"}, None),
    ("/srv/cache/../other/ds", set(), set(), None),
])
def test_a_place_where_nothing_is_mounted_is_refused(path, mounted, existing, refused) -> None:
    why = unmounted_place(path, fstab_mount_points(FSTAB), mounted.__contains__, existing.__contains__)
    assert (why is None) if refused is None else (why is not None and refused in why), why


def test_the_fstab_gives_mount_points_not_swap_or_comments() -> None:
    assert fstab_mount_points(FSTAB) == {"/srv/cache", "/mnt/my stick"}
