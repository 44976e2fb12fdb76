"""What the native decoders print, and what kind of file a recording is before they see it.

libsndfile decodes MP3 through libmpg123, which writes its complaints about a damaged stream
straight to file descriptor 2 (hundreds of lines for one bad file, ``[src/libmpg123/layer3.c:...]
error: ...`` and ``Note: Illegal Audio-MPEG-Header ...``), bypassing Python. :func:`native_stderr`
points descriptor 2 at a temporary file for the duration of one native call and hands back what
was written, so the loader can turn it into one warning and the CLI keeps its contract of one
``callqa: error:`` line (or nothing) on stderr.

Descriptor 2 belongs to the whole process, so the redirection is serialised by a lock and kept
to the native call itself; lines that do not look like decoder output (another thread's log
line written in that window) are written back to the real stderr.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: At most this much captured text is kept (libmpg123 can print thousands of lines).
MAX_CAPTURE_BYTES = 64 * 1024
_LOCK = threading.Lock()
# libmpg123's messages: "[src/libmpg123/layer3.c:INT123_do_layer3():1804] error: ...", "Note: ...",
# "Warning: Xing stream size off by more than 1% ...", "Did not find ...", "Big trouble ..."
_DECODER_LINE = re.compile(r"^(\[[^\]]*\]\s*(error|warning|note)\b|(Note|Warning|Error): |Did not find|Big trouble)")
_LOCATION = re.compile(r"^\[[^\]]*\]\s*")

#: Container kinds :func:`sniff` tells apart from the first bytes.
KINDS = ("wav", "flac", "ogg", "aiff", "mp3", "unknown")


def sniff(path: Path) -> str:
    """The container a file's first bytes announce: one of :data:`KINDS`.

    Used to choose a message when libsndfile refuses a file and to decide which decoders may
    print (WAV, FLAC, OGG and AIFF are decoded by libsndfile itself, which does not).
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return "unknown"
    if head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"FORM":
        return "aiff"
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return "unknown"


def decoder_prints(kind: str) -> bool:
    """Whether decoding a file of this kind may write to the process' stderr (MP3, unknown)."""
    return kind in ("mp3", "unknown")


@contextmanager
def native_stderr(enabled: bool = True) -> Iterator[list[str]]:
    """Capture what native code writes to descriptor 2 while the block runs.

    Yields a list that holds the decoder's lines (blank lines dropped, at most
    :data:`MAX_CAPTURE_BYTES`) once the block has exited. With ``enabled=False`` nothing is
    redirected and the list stays empty.
    """
    lines: list[str] = []
    if not enabled:
        yield lines
        return
    with _LOCK:
        try:
            sys.stderr.flush()
        except (AttributeError, OSError, ValueError):
            pass
        try:
            sink = tempfile.TemporaryFile(prefix="callqa-stderr-")
        except OSError:  # no temporary space: silence instead of capturing
            sink = open(os.devnull, "w+b")  # noqa: SIM115 - closed below
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            try:
                yield lines
            finally:
                os.dup2(saved, 2)
        finally:
            os.close(saved)
            try:
                sink.seek(0)
                text = sink.read(MAX_CAPTURE_BYTES).decode("utf-8", "replace")
            except OSError:
                text = ""
            sink.close()
    foreign: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        (lines if _DECODER_LINE.match(line.strip()) else foreign).append(line.rstrip())
    if foreign:
        try:
            sys.stderr.write("\n".join(foreign) + "\n")
        except (AttributeError, OSError, ValueError):
            pass


def summarize(lines: list[str]) -> str | None:
    """One readable clause for a decoder's lines, e.g. ``12 decoder messages (first: "...")``."""
    if not lines:
        return None
    first = _LOCATION.sub("", lines[0]).strip()
    if len(first) > 120:
        first = first[:117] + "..."
    count = f"{len(lines)} message" + ("s" if len(lines) != 1 else "")
    return f"{count} from the decoder (first: {first!r})"
