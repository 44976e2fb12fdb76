"""Seeded mutations of good recordings, for the fuzz suite (``tests/integration/test_fuzz_recordings.py``).

:func:`build_bases` writes a handful of short, valid recordings (PCM 16/24-bit, float, mu-law,
A-law, GSM, stereo, MP3 with an ID3 tag, FLAC, OGG) into a folder; :func:`make_case` turns case
number ``i`` and a seed into one :class:`FuzzCase`: the files to write and what was done, always
the same for the same (seed, i). Mutations follow the list of issue #18: header and data byte
flips, truncations at random points, wrong extensions, absurd chunk sizes, 0/8 channels, 0 Hz,
one sample, NaN/inf/huge floats, long silence, DC, square waves, damaged MP3 frames and ID3 tags,
plus hostile file names (newline, ANSI escape) and two-leg calls with one damaged leg.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 8000


@dataclass
class FuzzCase:
    """One case: ``files`` (name -> bytes) written side by side; ``target`` is the one analysed."""

    index: int
    mutation: str
    base: str
    files: dict[str, bytes] = field(default_factory=dict)
    target: str = ""


def _speechlike(seconds: float, rng: np.random.Generator, *, channels: int = 1) -> np.ndarray:
    """Voiced bursts (harmonics with an envelope) and pauses; float in [-0.5, 0.5]."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    out = np.zeros((n, channels))
    for ch in range(channels):
        f0 = 110 + 60 * ch
        voice = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 8))
        gate = (np.sin(2 * np.pi * 0.7 * t + ch) > -0.2).astype(float)
        out[:, ch] = 0.15 * voice * gate + 0.003 * rng.standard_normal(n)
    return out[:, 0] if channels == 1 else out


def _encode(x: np.ndarray, fmt: str, subtype: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, SR, format=fmt, subtype=subtype)
    return buf.getvalue()


def _id3(payload: bytes = b"") -> bytes:
    """An ID3v2.3 tag with one TIT2 frame (plus ``payload`` appended inside the tag)."""
    text = b"\x00callqa fuzz base" + payload
    frame = b"TIT2" + struct.pack(">I", len(text)) + b"\x00\x00" + text
    size = len(frame)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3\x03\x00\x00" + syncsafe + frame


def build_bases(seed: int = 18) -> dict[str, tuple[str, bytes]]:
    """The valid recordings mutations start from: name -> (extension, bytes)."""
    rng = np.random.default_rng(seed)
    mono = _speechlike(3.0, rng)
    stereo = _speechlike(3.0, rng, channels=2)
    return {
        "pcm16": (".wav", _encode(mono, "WAV", "PCM_16")),
        "pcm24": (".wav", _encode(mono, "WAV", "PCM_24")),
        "float": (".wav", _encode(mono, "WAV", "FLOAT")),
        "double": (".wav", _encode(mono, "WAV", "DOUBLE")),
        "ulaw": (".wav", _encode(mono, "WAV", "ULAW")),
        "alaw": (".wav", _encode(mono, "WAV", "ALAW")),
        "gsm": (".wav", _encode(mono, "WAV", "GSM610")),
        "stereo": (".wav", _encode(stereo, "WAV", "PCM_16")),
        "mp3": (".mp3", _id3() + _encode(mono, "MP3", "MPEG_LAYER_III")),
        "flac": (".flac", _encode(mono, "FLAC", "PCM_16")),
        "ogg": (".ogg", _encode(mono, "OGG", "VORBIS")),
    }


# --- WAV helpers -------------------------------------------------------------------------------
def _chunks(data: bytes) -> dict[bytes, int]:
    """Offsets of the RIFF chunks' headers (id at the offset, size at offset + 4)."""
    out: dict[bytes, int] = {}
    pos = 12
    while pos + 8 <= len(data):
        cid = data[pos:pos + 4]
        size = struct.unpack("<I", data[pos + 4:pos + 8])[0]
        out.setdefault(cid, pos)
        pos += 8 + size + (size & 1)
    return out


def _set_u32(data: bytearray, at: int, value: int) -> None:
    data[at:at + 4] = struct.pack("<I", value & 0xFFFFFFFF)


def _set_u16(data: bytearray, at: int, value: int) -> None:
    data[at:at + 2] = struct.pack("<H", value & 0xFFFF)


# --- mutations ----------------------------------------------------------------------------------
Mutation = Callable[[bytes, np.random.Generator], bytes]


def flip_header(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 6))):
        at = int(rng.integers(0, min(64, len(out))))
        out[at] ^= 1 << int(rng.integers(0, 8))
    return bytes(out)


def flip_data(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 200))):
        at = int(rng.integers(min(64, len(out) - 1), len(out)))
        out[at] = int(rng.integers(0, 256))
    return bytes(out)


def truncate(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: int(rng.integers(0, len(data)))]


def truncate_header(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: int(rng.integers(0, 80))]


def append_garbage(data: bytes, rng: np.random.Generator) -> bytes:
    return data + rng.integers(0, 256, int(rng.integers(1, 5000)), dtype=np.uint8).tobytes()


def absurd_sizes(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    chunks = _chunks(data) if data[:4] == b"RIFF" else {}
    targets = [4] + [pos + 4 for pos in chunks.values()]
    at = targets[int(rng.integers(0, len(targets)))]
    if at + 4 <= len(out):
        _set_u32(out, at, int(rng.choice([0, 1, 7, 0x7FFFFFFF, 0xFFFFFFFE, 0xFFFFFFFF, len(data) * 1000])))
    return bytes(out)


def _fmt_field(offset: int, values: list[int], width: int) -> Mutation:
    def mutate(data: bytes, rng: np.random.Generator) -> bytes:
        pos = _chunks(data).get(b"fmt ") if data[:4] == b"RIFF" else None
        if pos is None:
            return flip_header(data, rng)
        out = bytearray(data)
        value = int(rng.choice(values))
        (_set_u16 if width == 2 else _set_u32)(out, pos + 8 + offset, value)
        return bytes(out)
    return mutate


channels_0_or_8 = _fmt_field(2, [0, 8, 3, 65535], 2)
sample_rate_absurd = _fmt_field(4, [0, 1, 7999, 96000, 0xFFFFFFFF], 4)
bits_absurd = _fmt_field(14, [0, 1, 7, 64, 65535], 2)
format_tag_absurd = _fmt_field(0, [0, 2, 0x55, 0xFFFE, 0x1234], 2)


def zero_block(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    start = int(rng.integers(0, len(out)))
    length = int(rng.integers(1, max(2, len(out) // 4)))
    out[start:start + length] = bytes(min(length, len(out) - start))
    return bytes(out)


def duplicate_block(data: bytes, rng: np.random.Generator) -> bytes:
    start = int(rng.integers(0, len(data)))
    length = int(rng.integers(1, max(2, len(data) // 8)))
    return data[:start] + data[start:start + length] * 3 + data[start:]


def mp3_damage_frames(data: bytes, rng: np.random.Generator) -> bytes:
    """Flip bits right after MPEG frame headers (side info and main data)."""
    out = bytearray(data)
    syncs = [i for i in range(len(out) - 1) if out[i] == 0xFF and out[i + 1] & 0xE0 == 0xE0]
    for at in rng.choice(syncs, size=min(len(syncs), int(rng.integers(1, 40))), replace=False) if syncs else []:
        for k in range(int(rng.integers(1, 12))):
            j = int(at) + 4 + k
            if j < len(out):
                out[j] ^= int(rng.integers(1, 256))
    return bytes(out)


def mp3_damage_id3(data: bytes, rng: np.random.Generator) -> bytes:
    """Garbage or an absurd syncsafe size in the ID3 tag."""
    out = bytearray(data)
    if out[:3] != b"ID3":
        return b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + data
    choice = int(rng.integers(0, 3))
    if choice == 0:
        out[6:10] = b"\x7f\x7f\x7f\x7f"  # a 256 MB tag in a small file
    elif choice == 1:
        out[6:10] = bytes([0, 0, 0, 0])
    else:
        for k in range(10, min(len(out), 40)):
            out[k] = int(rng.integers(0, 256))
    return bytes(out)


MUTATIONS: dict[str, Mutation] = {
    "flip_header": flip_header, "flip_data": flip_data, "truncate": truncate, "truncate_header": truncate_header,
    "append_garbage": append_garbage, "absurd_sizes": absurd_sizes, "channels": channels_0_or_8,
    "sample_rate": sample_rate_absurd, "bits": bits_absurd, "format_tag": format_tag_absurd,
    "zero_block": zero_block, "duplicate_block": duplicate_block,
}
MP3_MUTATIONS: dict[str, Mutation] = {"mp3_frames": mp3_damage_frames, "mp3_id3": mp3_damage_id3}


# --- generated signals (valid files with hard content) -----------------------------------------
def _signal_case(kind: str, rng: np.random.Generator) -> tuple[str, bytes]:
    if kind == "one_sample":
        return ".wav", _encode(np.array([0.25]), "WAV", "PCM_16")
    if kind == "long_silence":
        return ".wav", _encode(np.zeros(SR * int(rng.integers(20, 90))), "WAV", "PCM_16")
    if kind == "dc":
        return ".wav", _encode(np.full(SR * 3, float(rng.choice([-1.0, 0.5, 0.999]))), "WAV", "PCM_16")
    if kind == "square":
        t = np.arange(SR * 3) / SR
        return ".wav", _encode(np.sign(np.sin(2 * np.pi * float(rng.uniform(50, 1000)) * t)), "WAV", "PCM_16")
    if kind in ("nan", "inf", "huge"):
        x = _speechlike(2.0, rng).astype(np.float32)
        at = rng.integers(0, len(x), int(rng.integers(1, 50)))
        x[at] = {"nan": np.nan, "inf": np.inf * rng.choice([-1, 1]), "huge": float(rng.choice([1e30, -3e38, 2.0, 1e6]))}[kind]
        subtype = "DOUBLE" if kind == "huge" and rng.random() < 0.3 else "FLOAT"
        return ".wav", _encode(x, "WAV", subtype)
    if kind == "tiny_rate":
        return ".wav", _encode(_speechlike(1.0, rng), "WAV", "PCM_16").replace(
            struct.pack("<I", SR), struct.pack("<I", int(rng.choice([0, 1, 4000, 192000]))), 1)
    if kind == "empty":
        return ".wav", b""
    if kind == "header_only":
        return ".wav", _encode(np.zeros(1), "WAV", "PCM_16")[:44]
    raise ValueError(kind)


SIGNALS = ("one_sample", "long_silence", "dc", "square", "nan", "inf", "huge", "tiny_rate", "empty", "header_only")
WRONG_EXTENSIONS = (".wav", ".mp3", ".flac", ".ogg", ".gsm")
HOSTILE_NAMES = ("fz\nline", "fz\x1b[31mred\x1b[0m", "fz\u202etxt.wav", "fz\rcr", "fz\ttab")


def make_case(index: int, bases: dict[str, tuple[str, bytes]], *, seed: int) -> FuzzCase:
    """The case number ``index`` of the run with ``seed`` (deterministic)."""
    rng = np.random.default_rng([seed, index])
    names = sorted(bases)
    roll = rng.random()
    stem = f"fz{index:05d}"
    if roll < 0.12:
        kind = SIGNALS[int(rng.integers(0, len(SIGNALS)))]
        ext, data = _signal_case(kind, rng)
        case = FuzzCase(index, f"signal:{kind}", "generated")
    else:
        base = names[int(rng.integers(0, len(names)))]
        ext, data = bases[base]
        pool = dict(MUTATIONS)
        if base == "mp3":
            pool.update(MP3_MUTATIONS)
            pool.update({k: v for k, v in MP3_MUTATIONS.items()})  # damaged frames and tags twice as often
        chosen = [list(pool)[int(rng.integers(0, len(pool)))] for _ in range(1 + int(rng.random() < 0.25))]
        for name in chosen:
            data = pool[name](data, rng)
        case = FuzzCase(index, "+".join(chosen), base)
        if rng.random() < 0.1:
            ext = WRONG_EXTENSIONS[int(rng.integers(0, len(WRONG_EXTENSIONS)))]
            case.mutation += f"+ext{ext}"
    if rng.random() < 0.04:
        stem = HOSTILE_NAMES[int(rng.integers(0, len(HOSTILE_NAMES)))] + f"{index:05d}"
        case.mutation += "+hostile_name"
    if rng.random() < 0.1 and ext == ".wav":
        # a two-leg call: a good -in leg beside the mutated -out leg
        case.files[f"{stem}-in.wav"] = bases["pcm16"][1]
        case.target = f"{stem}-out{ext}"
        case.mutation += "+two_legs"
    else:
        case.target = f"{stem}{ext}"
    case.files[case.target] = data
    return case


def write_case(case: FuzzCase, folder: Path) -> Path:
    """Write the case's files into ``folder``; return the path to analyse."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in case.files.items():
        (folder / name).write_bytes(data)
    return folder / case.target
