"""The size limits on what comes from outside, checked before memory or disk is spent (docs/inputs.md).

Zip members: the declared (central directory) size and the compression ratio are checked before a member is
read or extracted; Python's zipfile never inflates a member past its declared size (a member lying about it
fails its CRC), so the declared sizes bound the actual bytes too.
"""

from __future__ import annotations

import zipfile

from pgrf.errors import PgrfError

MAX_PIXELS = 89_478_485
"""Pixels of one decoded image (width × height), by default Pillow's ``Image.MAX_IMAGE_PIXELS``; read from the
header before decoding. ``pgrf import zip --max-pixels`` raises it for a zip's images."""
MAX_MEMBER_BYTES = 1 << 30
"""Inflated bytes of one zip member read into memory (``pgrf import zip``) or extracted (Fab/Bridge zips)."""
MAX_ARCHIVE_BYTES = 32 << 30
"""Inflated bytes of all members of one Fab/Bridge zip extracted into the cache (Megascans zips: a few GB)."""
MAX_RATIO = 100
"""Inflated ÷ compressed bytes of one zip member (textures and images: rarely above 20-50); members that
inflate to at most ``RATIO_FREE_BYTES`` are not held to it."""
RATIO_FREE_BYTES = 1 << 20


def check_member(info: zipfile.ZipInfo, where: str) -> None:
    """Refuse a zip member (``where``: the zip) whose declared size or compression ratio is over the limits."""
    if info.file_size > MAX_MEMBER_BYTES:
        raise PgrfError(f"{where}:{info.filename}: declares {info.file_size} bytes inflated, over the limit of "
                        f"{MAX_MEMBER_BYTES}; not read (a zip bomb or a damaged zip: re-download it)")
    if info.file_size > RATIO_FREE_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise PgrfError(f"{where}:{info.filename}: inflates {info.compress_size} bytes to {info.file_size}, over "
                        f"{MAX_RATIO}x; not read (a zip bomb or a damaged zip: re-download it)")


def check_archive(infos: list[zipfile.ZipInfo], where: str) -> None:
    """Refuse a zip (``where``) any of whose members is over the limits, or whose members add up to more than
    ``MAX_ARCHIVE_BYTES``."""
    for info in infos:
        check_member(info, where)
    total = sum(info.file_size for info in infos)
    if total > MAX_ARCHIVE_BYTES:
        raise PgrfError(f"{where}: declares {total} bytes inflated, over the limit of {MAX_ARCHIVE_BYTES}; "
                        "not extracted (a zip bomb or a damaged zip: re-download it)")
