"""Bounds on the images in a client's task, checked from the image headers before anything decodes them.

Why: AutoGen's Image turns base64 into a PIL image and converts it to RGB at once, so a 164 KB PNG that declares
13000x13000 pixels costs 680 MB and 19 s of decoding. The dimensions are in the first bytes of every format we
accept (PNG IHDR, JPEG SOFn, GIF logical screen and first frame, WebP VP8/VP8L/VP8X), so an image over the limits
is refused without decoding a pixel. Only PNG, JPEG, GIF and WebP are accepted: what model APIs take, and what
this header reader understands (Pillow would open a dozen more formats).

The header reader is not the last word: a PNG with two IHDR chunks (1x1, then 5792x5792) or a JPEG with two SOF
headers read as small here while Pillow (which takes the last one) decoded 33 Mpx. So the size that counts is the
decoder's own: each image is also opened with Pillow (Image.open reads headers, it decodes no pixel), and an image
whose headers repeat, or whose size Pillow reads differently, is refused. Pillow's DecompressionBombWarning is an
error too (the worker sets Image.MAX_IMAGE_PIXELS to the per-image limit). Why an image could not be opened goes to
the worker's stderr only: Pillow's message names heap addresses (<_io.BytesIO object at 0x7f...>).

Run it as a script for its self-check: python image_limits.py --self-check
"""
import base64
import binascii
import io
import struct
import sys
import warnings

from PIL import Image


class ImageRefused(ValueError):
    """The task carries an image over the limits, or something that is not an image we accept."""


class ImageLimits:
    def __init__(self, max_bytes, max_pixels, max_task_pixels, max_worker_pixels):
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.max_task_pixels = max_task_pixels
        # All the images the live runs of one worker hold, decoded (AutoGen keeps an RGB copy for the whole run).
        self.max_worker_pixels = max_worker_pixels

    def check(self, task):
        """Raises ImageRefused unless every image in `task` (the client's JSON) is within the limits.

        Returns the task's pixels, all images together (0: no image, AutoGen can parse it on the event loop).
        """
        count = 0
        total = 0
        for image in images_in(task):
            count += 1
            data = image.get("data")
            if not isinstance(data, str):
                raise ImageRefused("an image's data must be a base64 string")
            # Base64 is 4/3 of the bytes: text this long is over the limit whatever it decodes to.
            if len(data) > 2 * self.max_bytes + 16:
                raise ImageRefused(f"image {count} is larger than {self.max_bytes} bytes")
            try:
                raw = base64.b64decode(data)  # as AutoGen decodes it (non-alphabet characters are skipped)
            except (binascii.Error, ValueError) as error:
                raise ImageRefused(f"image {count} is not valid base64: {error}") from None
            if len(raw) > self.max_bytes:
                raise ImageRefused(f"image {count} has {len(raw)} bytes; the limit is {self.max_bytes}")
            kind, width, height = image_size(raw)
            pixels = width * height
            if pixels > self.max_pixels:
                raise ImageRefused(f"image {count} ({kind}) is {width}x{height} pixels; the limit is "
                                   f"{self.max_pixels} pixels")
            _check_with_pillow(count, kind, raw, (width, height))
            total += max(pixels, 1)
            if total > self.max_task_pixels:
                raise ImageRefused(f"the task's images have more than {self.max_task_pixels} pixels in all")
        return total


# Pillow's format names for the ones the header reader accepts.
# (MPO: a JPEG with further images after it, as cameras write; AutoGen decodes the first.)
_PILLOW_FORMATS = {"PNG": {"PNG"}, "JPEG": {"JPEG", "MPO"}, "GIF": {"GIF"}, "WebP": {"WEBP"}}
_NOT_DECODABLE = "not a decodable PNG, JPEG, GIF or WebP image"


def _check_with_pillow(count, kind, raw, size):
    """Refuses the image unless Pillow opens it as `kind` with the same `size` the header reader found.

    Image.open parses headers only (no pixel is decoded); it is the decoder AutoGen uses, so its size is the one
    that costs memory. A DecompressionBombWarning (over Image.MAX_IMAGE_PIXELS) is turned into a refusal here,
    whatever the process's warning filters say.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as image:
                decoded_kind, decoded_size = image.format, image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused(f"image {count} ({kind}) has more than {Image.MAX_IMAGE_PIXELS} pixels") from None
    except Exception as error:  # Pillow raises many kinds (UnidentifiedImageError, SyntaxError, struct.error...)
        print(f"image_limits: image {count} ({kind}): Pillow cannot open it: {type(error).__name__}: {error}",
              file=sys.stderr)
        raise ImageRefused(f"image {count} is {_NOT_DECODABLE}") from None
    if decoded_kind not in _PILLOW_FORMATS[kind]:
        raise ImageRefused(f"image {count} is {_NOT_DECODABLE}")
    if decoded_size != size:
        raise ImageRefused(f"image {count} ({kind}) has headers that disagree about its size "
                           f"({size[0]}x{size[1]} and {decoded_size[0]}x{decoded_size[1]} pixels)")


def images_in(value):
    """The images of a task: dicts with a "data" key inside a list (MultiModalMessage.content), at any depth."""
    pending = [value]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            pending.extend(node.values())
        elif isinstance(node, list):
            for item in node:
                if isinstance(item, dict) and "data" in item:
                    yield item
                else:
                    pending.append(item)


def image_size(data):
    """(format, width, height) from the header of a PNG, JPEG, GIF or WebP image; ImageRefused otherwise."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageRefused("a PNG image without its IHDR header")
        width, height = struct.unpack(">II", data[16:24])
        _png_single_header(data)
        return "PNG", width, height
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return ("GIF",) + _gif_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ("WebP",) + _webp_size(data)
    if data[:2] == b"\xff\xd8":
        return ("JPEG",) + _jpeg_size(data)
    raise ImageRefused("an image must be PNG, JPEG, GIF or WebP")


def _png_single_header(data):
    """Refuses a PNG with more than one IHDR before its pixels (decoders disagree about which one counts)."""
    offset = 8
    headers = 0
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if kind == b"IHDR":
            headers += 1
            if headers > 1:
                raise ImageRefused("a PNG image with more than one IHDR header")
        if kind in (b"IDAT", b"IEND"):
            return
        offset += 12 + length


def _gif_size(data):
    """The logical screen, or the first frame if it reaches beyond it (Pillow then enlarges the image to fit)."""
    if len(data) < 13:
        raise ImageRefused("a truncated GIF header")
    width, height, flags = struct.unpack("<HHB", data[6:11])
    offset = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while offset < len(data):
        block = data[offset]
        if block == 0x2C:  # image descriptor: left, top, width, height
            if offset + 9 > len(data):
                break
            left, top, frame_width, frame_height = struct.unpack("<HHHH", data[offset + 1:offset + 9])
            return max(width, left + frame_width), max(height, top + frame_height)
        if block != 0x21 or offset + 2 > len(data):
            break
        offset += 2  # extension introducer and label, then sub-blocks up to a zero length
        while offset < len(data) and data[offset] != 0:
            offset += data[offset] + 1
        offset += 1
    raise ImageRefused("a GIF image without a frame")


def _webp_size(data):
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    raise ImageRefused("a WebP image without a VP8, VP8L or VP8X header")


# Start-of-frame markers carry the dimensions; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_JPEG_FRAME_MARKERS = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data):
    """The first frame header's size; refuses a JPEG with more than one before its first scan."""
    offset = 2
    size = None
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            break
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length
            offset += 2
            continue
        length = struct.unpack(">H", data[offset + 2:offset + 4])[0]
        if marker in _JPEG_FRAME_MARKERS:
            if offset + 9 > len(data):
                break
            if size is not None:
                raise ImageRefused("a JPEG image with more than one frame header")
            height, width = struct.unpack(">HH", data[offset + 5:offset + 9])
            size = width, height
        if marker in (0xD9, 0xDA):  # end of image, start of scan: the frame header comes before the pixels
            break
        offset += 2 + length
    if size is None:
        raise ImageRefused("a JPEG image without a frame header")
    return size


def _self_check():
    """Each format's header, as Pillow writes it, gives the size Pillow reads; bombs, images whose headers
    disagree with Pillow, and non-images are refused."""
    for kind in ("PNG", "JPEG", "GIF", "WEBP"):
        for size in ((1, 1), (300, 200), (4097, 3)):
            buffer = io.BytesIO()
            Image.new("RGB", size, (200, 10, 10)).save(buffer, kind)
            name, width, height = image_size(buffer.getvalue())
            assert (width, height) == size, (kind, size, name, width, height)
    limits = ImageLimits(max_bytes=5 << 20, max_pixels=16 << 20, max_task_pixels=32 << 20, max_worker_pixels=64 << 20)
    buffer = io.BytesIO()
    Image.new("L", (10, 10)).save(buffer, "PNG")
    small = buffer.getvalue()
    bomb = small[:16] + struct.pack(">II", 13000, 13000) + small[24:]
    task = lambda *images: {"type": "MultiModalMessage", "source": "user",
                            "content": ["look"] + [{"data": base64.b64encode(i).decode()} for i in images]}
    assert limits.check(task(small, small)) == 200
    assert limits.check("just text") == 0
    # Two IHDR chunks: 1x1 first, 5792x5792 last (the one Pillow decodes: 33 Mpx).
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data
                                + struct.pack(">I", binascii.crc32(kind + data)))
    ihdr = lambda side: chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
    double_ihdr = small[:8] + ihdr(1) + ihdr(5792) + small[33:]
    # Two SOF headers: 10x10 first, 5000x5000 last (Pillow reports the last).
    buffer = io.BytesIO()
    Image.new("L", (10, 10)).save(buffer, "JPEG")
    jpeg = buffer.getvalue()
    start = jpeg.find(b"\xff\xc0")
    end = start + 2 + struct.unpack(">H", jpeg[start + 2:start + 4])[0]
    big_sof = jpeg[start:start + 5] + struct.pack(">HH", 5000, 5000) + jpeg[start + 9:end]
    double_sof = jpeg[:end] + big_sof + jpeg[end:]
    not_decodable = small[:33] + b"garbage" * 20  # a valid header, then nothing Pillow can parse
    refusals = ((task(bomb), "pixels"), (task(b"BM" + bytes(100)), "PNG, JPEG"),
                (task(bytes(6 << 20)), "bytes"), ({"content": [{"data": 7}]}, "base64 string"),
                (task(small, double_ihdr), "a PNG image with more than one IHDR"),
                (task(double_sof), "more than one frame header"),
                (task(not_decodable), "image 1 is not a decodable PNG, JPEG, GIF or WebP image"))
    for refused, why in refusals:
        try:
            limits.check(refused)
        except ImageRefused as error:
            assert why in str(error) and " at 0x" not in str(error), (why, error)  # no heap addresses
        else:
            raise AssertionError(f"not refused: {why}")
    # Pillow's own bomb check is an error, not a warning: whatever passes the header reader and its limits
    # cannot decode to more than Image.MAX_IMAGE_PIXELS.
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 50
    try:
        limits.check(task(small))
    except ImageRefused as error:
        assert "more than 50 pixels" in str(error), error
    else:
        raise AssertionError("not refused: Pillow's DecompressionBombWarning")
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    print("image_limits: self-check passed")


if __name__ == "__main__":
    if "--self-check" in sys.argv:
        _self_check()
