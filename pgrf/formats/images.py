"""PNG reading and writing for pack, verify and the loader (compositing is in ``composite``).

Speed (pack is meant to run at close to the rate PNGs decode; see bench/pack.py):

- PNGs are decoded with libspng (pyspng), ~2x faster than Pillow; the loader uses it too.
- Shard PNGs use the Up filter and ISA-L's deflate at level 1: ~9x faster to encode than Pillow's
  encoder (which tries every filter on every row), files 3-6 % larger, decoded faster by libspng.
"""

from __future__ import annotations

import functools
import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pyspng
from isal import isal_zlib
from PIL import Image

from pgrf.errors import PgrfError
from pgrf.limits import MAX_PIXELS, check_member

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HEAD_BYTES = 64 * 1024
"""What ``read_member(..., head=True)`` reads: enough for the size and colour type of any PNG or JPEG header."""


class BadImage(PgrfError):
    """A PNG that cannot be decoded (corrupt or truncated)."""


class TooLarge(BadImage):
    """An image or zip member over a size limit (``pgrf.limits``), refused before it was decoded or read."""


def image_size(data: bytes, name: str) -> tuple[int, int]:
    """(width, height) of encoded image bytes, from the header alone (PNG's IHDR; Pillow's lazy open for the rest)."""
    if data.startswith(PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise BadImage(f"{name}: not a readable PNG (no IHDR chunk); re-create the file")
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Image.DecompressionBombError:
        raise TooLarge(f"{name}: more than twice Pillow's MAX_IMAGE_PIXELS; not decoded") from None
    except (OSError, ValueError) as error:
        raise BadImage(f"{name}: not a readable image ({type(error).__name__}); re-create the file") from None


def check_pixels(data: bytes, name: str, max_pixels: int, fix: str = "re-create it smaller") -> None:
    """Refuse encoded image bytes whose header gives more than ``max_pixels`` pixels, before anything is decoded;
    ``fix`` ends the error."""
    width, height = image_size(data, name)
    if width * height > max_pixels:
        raise TooLarge(f"{name}: {width}x{height} pixels, over the limit of {max_pixels}; not decoded ({fix})")


def decode_png(data: bytes, mode: str, name: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """PNG bytes → uint8 array in ``mode`` ("RGB" or "RGBA"); ``name`` is used in the error. The size in the header is
    checked against ``max_pixels`` first (libspng has no limit of its own)."""
    if data.startswith(PNG_SIGNATURE):
        check_pixels(data, name, max_pixels)
        if mode == "RGBA" and len(data) > 25 and data[25] not in (4, 6) and may_be_transparent(data):
            return _decode_with_pillow(data, name)  # a tRNS chunk: pyspng's RGBA ignores it (every alpha 255)
    try:
        return pyspng.load(data, format=mode)
    except RuntimeError as error:
        raise BadImage(f"{name}: not a readable PNG ({error}); re-create the file") from None


def read_rgba(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The PNG at ``path`` as uint8 RGBA (H, W, 4)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BadImage(f"{path}: cannot be read ({error.strerror}); re-render the model") from None
    try:
        return decode_png(data, "RGBA", str(path), max_pixels)
    except TooLarge:
        raise
    except BadImage:
        raise BadImage(f"{path}: corrupt or truncated PNG; re-render the model (pgrf render --force) or pack with --skip-bad") from None


def read_member(path: Path, member: str, head: bool = False) -> bytes:
    """The bytes of ``member`` of the zip at ``path`` (``head``: only its first ``HEAD_BYTES``, inflated as a stream);
    an unreadable one, or one over the size limits (``pgrf.limits.check_member``), is a BadImage naming both."""
    try:
        archive = _archive(path)
        info = archive.getinfo(member)
        try:
            check_member(info, str(path))
        except PgrfError as error:
            raise TooLarge(str(error)) from None
        if head:
            with archive.open(info) as stream:
                return stream.read(HEAD_BYTES)
        return archive.read(info)
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise BadImage(f"{path}:{member}: cannot be read ({type(error).__name__}); check the zip (unzip -t)") from None


def read_member_header(path: Path, member: str) -> bytes:
    """The first bytes of the image ``member`` of the zip at ``path``: enough for ``image_size`` and
    ``may_be_transparent`` (the whole member where its header does not fit in ``HEAD_BYTES``)."""
    head = read_member(path, member, head=True)
    if len(head) < HEAD_BYTES:
        return head
    try:
        image_size(head, f"{path}:{member}")
    except TooLarge:
        return head
    except BadImage:  # e.g. a JPEG whose EXIF block comes before its size
        return read_member(path, member)
    return head


def read_member_rgba(path: Path, member: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The image ``member`` of the zip at ``path`` (PNG, or any format Pillow reads) as uint8 RGBA (H, W, 4)."""
    return decode_image(read_member(path, member), f"{path}:{member}", max_pixels)


def decode_image(data: bytes, name: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Encoded image bytes (PNG, or any format Pillow reads) → uint8 RGBA (H, W, 4); ``name`` is used in the error.
    The size from the header is checked against ``max_pixels`` before decoding (other formats than PNG also stay
    under Pillow's own limit, twice its ``MAX_IMAGE_PIXELS``)."""
    if data.startswith(PNG_SIGNATURE):
        return decode_png(data, "RGBA", name, max_pixels)
    check_pixels(data, name, max_pixels)
    return _decode_with_pillow(data, name)


def _decode_with_pillow(data: bytes, name: str) -> np.ndarray:
    """Encoded image bytes whose size was checked → uint8 RGBA (H, W, 4), by Pillow."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGBA"))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise BadImage(f"{name}: not a readable image ({type(error).__name__}); re-create the file") from None


def may_be_transparent(data: bytes) -> bool:
    """Whether encoded image bytes (or their first bytes) can hold transparency: a PNG of colour type 4 or 6 or with a
    tRNS chunk (read from the chunk headers, nothing decoded; bytes ending before the first IDAT may); JPEG never; any
    other format may."""
    if data.startswith(b"\xff\xd8"):
        return False
    if not data.startswith(PNG_SIGNATURE) or len(data) < 26:
        return True
    if data[25] in (4, 6):
        return True
    position = len(PNG_SIGNATURE)
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        if kind == b"tRNS":
            return True
        if kind in (b"IDAT", b"IEND"):
            return False
        position += 12 + length
    return True


@functools.lru_cache(maxsize=4)
def _archive(path: Path) -> zipfile.ZipFile:
    """An open zip, kept for the process: reading its directory again for every member would cost more than the member."""
    return zipfile.ZipFile(path)


def encode_png(image: Image.Image) -> bytes:
    """Deterministic 8-bit RGB PNG of an RGB or RGBX image: every row Up-filtered, deflated by ISA-L at
    level 1, no ancillary chunks."""
    width, height = image.size
    rows = np.frombuffer(image.tobytes("raw", "RGB"), np.uint8).reshape(height, width * 3)
    filtered = np.empty((height, width * 3 + 1), np.uint8)
    filtered[:, 0] = 2  # filter type Up: each byte minus the byte above it (mod 256)
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, truecolour, no interlace
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", isal_zlib.compress(filtered, 1)) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))
