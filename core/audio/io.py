"""Decoding recordings into validated clips.

Validation happens once, here: later stages receive an :class:`AudioClip` whose samples are
finite float32 in [-1, 1] at a known, supported sample rate, and trust it. What the loader
notices without refusing the file (a stream shorter than its header declares, float samples
beyond full scale, the decoder's complaints) travels with the clip as ``warnings``.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from core.audio.native import decoder_prints, native_stderr, sniff, summarize
from core.errors import AudioNotFoundError, InvalidAudioError, escape_text

MIN_SAMPLE_RATE_HZ = 8000
MAX_SAMPLE_RATE_HZ = 48000
DEFAULT_MAX_DURATION_S = 2 * 3600.0  # ViciDial caps recordings at 60 min by default

# Largest magnitude each encoding can represent, as a fraction of 16-bit full scale. G.711
# expands to 14/13-bit linear values: mu-law peaks at 32124, A-law at 32256 (ITU-T G.711).
_FULL_SCALE = {"ULAW": 32124 / 32768, "ALAW": 32256 / 32768}
_PCM_SUBTYPES = {"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"}
_FLOAT_SUBTYPES = {"FLOAT", "DOUBLE"}
#: Lossy decoders overshoot full scale on loud material by a few dB; such overshoot is clipped
#: without a warning, anything beyond this magnitude (damaged frames) with one.
_LOSSY_OVERSHOOT = {"MPEG_LAYER_I": 2.0, "MPEG_LAYER_II": 2.0, "MPEG_LAYER_III": 2.0, "VORBIS": 2.0, "OPUS": 2.0}
#: A decoded stream this much shorter than its header declares is reported as truncated
#: (MP3 encoder delay and padding, and a GSM block, stay far below it).
TRUNCATION_MIN_S = 0.1
TRUNCATION_MIN_RATIO = 0.01
_NOT_REGULAR = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
                stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}
# libsndfile says this for every file it cannot identify, although the file exists and is regular
_LIBSNDFILE_MISLEADING = "does not exist or is not a regular file"


@dataclass(frozen=True, eq=False)
class AudioClip:
    """One mono track of a call.

    Attributes
    ----------
    samples : np.ndarray, shape (n,), float32
        Samples in [-1, 1], scaled as ``sox``/libsndfile do (int16 / 32768).
    sample_rate : int
        Native rate in Hz; nothing is resampled at load time.
    path : Path
        The file the samples came from.
    encoding : str
        libsndfile subtype (``PCM_16``, ``ULAW``, ``GSM610``, ``MPEG_LAYER_III`` ...).
    full_scale : float
        Largest representable magnitude of the encoding (1.0 for PCM and float).
    channel : int | None
        Channel index in a multi-channel file, ``None`` for a mono file.
    warnings : tuple of str
        What the loader noticed without refusing the file (truncated stream, clipped float
        samples, decoder messages); each names the file.
    declared_duration_s : float or None
        The length the file's header declares, when the decoded stream is shorter
        (a truncated MP3 or FLAC); None otherwise.
    """

    samples: np.ndarray
    sample_rate: int
    path: Path
    encoding: str = "PCM_16"
    full_scale: float = 1.0
    channel: int | None = None
    warnings: tuple[str, ...] = ()
    declared_duration_s: float | None = None

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def name(self) -> str:
        return self.path.name if self.channel is None else f"{self.path.name}[ch{self.channel + 1}]"


def validate_samples(samples: np.ndarray, sample_rate: int, *, source: str) -> None:
    """Raise :class:`InvalidAudioError` unless ``samples`` is a usable mono float signal."""
    if not isinstance(samples, np.ndarray) or samples.ndim != 1:
        raise InvalidAudioError(f"{source}: expected a mono sample array")
    if samples.size == 0:
        raise InvalidAudioError(f"{source}: contains no audio samples (0 s)")
    if not MIN_SAMPLE_RATE_HZ <= sample_rate <= MAX_SAMPLE_RATE_HZ:
        raise InvalidAudioError(
            f"{source}: sample rate {sample_rate} Hz is outside the supported "
            f"{MIN_SAMPLE_RATE_HZ}-{MAX_SAMPLE_RATE_HZ} Hz"
        )
    if not np.isfinite(np.sum(samples, dtype=np.float64)):  # NaN and inf survive a sum
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        raise InvalidAudioError(f"{source}: contains {bad} non-finite samples (NaN or infinity)")


def _inspect_wav(path: Path, info: sf._SoundFileInfo) -> int | None:
    """Check a RIFF WAV's chunks; return the sample count of a block codec's data, if any.

    Raises when the header promises more audio than the file holds: libsndfile silently
    shortens such files, and a recording cut off in transfer must not be analysed as if it
    were the whole call. For block codecs (GSM 06.10 in WAV packs 320 samples into 65-byte
    blocks) libsndfile decodes one block too many; sox counts whole blocks of the data chunk
    (data bytes / block align x samples per block), and so do we.
    """
    if info.format != "WAV":
        return None
    size = path.stat().st_size
    block_align = samples_per_block = 0
    with path.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while True:
            fh.seek(pos)
            chunk = fh.read(8)
            if len(chunk) < 8:
                return None
            cid, csize = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt " and csize >= 20:
                fmt = fh.read(20)
                block_align = struct.unpack("<H", fmt[12:14])[0]
                if struct.unpack("<H", fmt[16:18])[0] >= 2:  # cbSize: the extension holds samples per block
                    samples_per_block = struct.unpack("<H", fmt[18:20])[0]
            elif cid == b"data":
                available = size - (pos + 8)
                # 0 and 0xFFFFFFFF are placeholders written by recorders still running
                if csize in (0, 0xFFFFFFFF) or csize <= available:
                    if block_align and samples_per_block and info.subtype not in _PCM_SUBTYPES:
                        return min(csize, available) // block_align * samples_per_block
                    return None
                raise InvalidAudioError(
                    f"{path}: truncated: the WAV header declares {csize} bytes of audio "
                    f"but only {available} are present"
                )
            pos += 8 + csize + (csize & 1)


def file_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot be a recording before anything opens it, or None when it may be one.

    Follows symlinks. A FIFO or a device is refused here because opening or reading it can
    block forever (a named pipe without a writer) or never end (``/dev/urandom``).

    Returns
    -------
    str or None
        ``"no such file"``, ``"is a directory, not a recording"``, ``"is a FIFO (named pipe),
        not a regular file"``... (without the file name).
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISDIR(mode):
        return "is a directory, not a recording"
    if not stat.S_ISREG(mode):
        kind = _NOT_REGULAR.get(stat.S_IFMT(mode), "not a regular file")
        return f"is {kind}, not a regular file" if kind != "not a regular file" else "is not a regular file"
    return None


def check_file(path: str | os.PathLike[str]) -> None:
    """Raise :class:`AudioNotFoundError` when :func:`file_problem` finds one (the message names the file)."""
    problem = file_problem(path)
    if problem is not None:
        raise AudioNotFoundError(f"{path}: {problem}")


def _unreadable(p: Path, exc: Exception, kind: str, what: str) -> InvalidAudioError:
    """The error for a file libsndfile refused, saying what is wrong with it (it exists).

    libsndfile answers "File does not exist or is not a regular file (possibly a pipe?)" for
    any regular file it cannot identify; the container announced by the first bytes says more.
    """
    detail = str(exc).split(":")[-1].strip().rstrip(".") or "unknown format"
    if _LIBSNDFILE_MISLEADING in str(exc) or detail.lower().startswith("format not recognised"):
        detail = {
            "mp3": "damaged MP3: no decodable MPEG audio frames",
            "wav": "damaged WAV: its RIFF header or chunks cannot be parsed",
            "flac": "damaged FLAC stream",
            "ogg": "damaged OGG stream",
            "aiff": "damaged AIFF file",
        }.get(kind, "not a recognised audio format; WAV, MP3, FLAC, OGG or GSM expected")
    return InvalidAudioError(f"{p}: {what} ({detail})")


def open_info(path: str | os.PathLike[str]) -> sf._SoundFileInfo:
    """Return libsndfile's header info, or raise a one-line error naming the file."""
    p = Path(path)
    check_file(p)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise AudioNotFoundError(f"{p}: cannot be read ({exc.strerror})") from None
    if size == 0:
        raise InvalidAudioError(f"{p}: is empty (0 bytes)")
    if not os.access(p, os.R_OK):
        raise AudioNotFoundError(f"{p}: cannot be read (permission denied)")
    kind = sniff(p)
    try:
        with native_stderr(decoder_prints(kind)):
            return sf.info(str(p))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise _unreadable(p, exc, kind, "not a readable audio file") from None


def load_audio(
    path: str | os.PathLike[str], *, max_duration_s: float = DEFAULT_MAX_DURATION_S
) -> list[AudioClip]:
    """Decode a recording into one validated clip per channel.

    Parameters
    ----------
    path : path-like
        WAV (PCM 8/16/24/32, float, mu-law, A-law, GSM 06.10), MP3, OGG/Vorbis, FLAC.
    max_duration_s : float
        Longer recordings are refused before decoding (memory bound).

    Returns
    -------
    list of AudioClip
        One clip for a mono file, two for a stereo file (channel order as stored).

    Raises
    ------
    AudioNotFoundError, InvalidAudioError
        With a one-line message naming the file and the problem.
    """
    p = Path(path)
    info = open_info(p)
    block_frames = _inspect_wav(p, info)
    if info.samplerate <= 0:
        raise InvalidAudioError(f"{p}: invalid sample rate {info.samplerate}")
    if info.channels not in (1, 2):
        raise InvalidAudioError(f"{p}: has {info.channels} channels; callqa reads mono or stereo recordings")
    if not MIN_SAMPLE_RATE_HZ <= info.samplerate <= MAX_SAMPLE_RATE_HZ:
        raise InvalidAudioError(
            f"{p}: sample rate {info.samplerate} Hz is outside the supported "
            f"{MIN_SAMPLE_RATE_HZ}-{MAX_SAMPLE_RATE_HZ} Hz"
        )
    if info.frames > 0 and info.frames / info.samplerate > max_duration_s:
        raise InvalidAudioError(
            f"{p}: {info.frames / info.samplerate / 3600:.1f} h long, over the "
            f"{max_duration_s / 3600:g} h limit (raise [analysis] max_duration_s to analyse it)"
        )
    kind = sniff(p)
    # doubles beyond float32's range would turn into inf before they could be clipped
    dtype = "float64" if info.subtype == "DOUBLE" else "float32"
    try:
        with native_stderr(decoder_prints(kind)) as noise:
            data, sr = sf.read(str(p), dtype=dtype, always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise _unreadable(p, exc, kind, "cannot be decoded") from None
    if block_frames is not None and 0 < block_frames < data.shape[0]:
        data = data[:block_frames]  # the extra block libsndfile decodes past the data chunk
    if data.shape[0] == 0:
        raise InvalidAudioError(f"{p}: contains no audio samples (0 s)")
    if data.shape[0] / sr > max_duration_s:
        raise InvalidAudioError(
            f"{p}: {data.shape[0] / sr / 3600:.1f} h long, over the {max_duration_s / 3600:g} h limit"
        )
    if not np.isfinite(data).all():  # before anything computes with them (no RuntimeWarning either)
        bad = int(np.count_nonzero(~np.isfinite(data)))
        raise InvalidAudioError(f"{p}: contains {bad} non-finite samples (NaN or infinity)")
    warnings: list[str] = []
    declared_s = _declared_duration(p, info, data.shape[0], warnings)
    if info.subtype in _FLOAT_SUBTYPES or info.subtype in _LOSSY_OVERSHOOT:
        data = _clip_float(p, data, warnings, quiet_up_to=_LOSSY_OVERSHOOT.get(info.subtype, 1.0))
    decoder = summarize(noise)
    if decoder:
        warnings.append(f"{escape_text(p.name)}: {decoder}; parts of the audio may be damaged")
    full_scale = _FULL_SCALE.get(info.subtype, 1.0)
    clips = []
    for ch in range(data.shape[1]):
        samples = np.ascontiguousarray(data[:, ch], dtype=np.float32)
        validate_samples(samples, sr, source=str(p))
        clips.append(
            AudioClip(
                samples=samples,
                sample_rate=int(sr),
                path=p,
                encoding=info.subtype,
                full_scale=full_scale,
                channel=None if data.shape[1] == 1 else ch,
                warnings=tuple(warnings),
                declared_duration_s=declared_s,
            )
        )
    return clips


def _declared_duration(p: Path, info: sf._SoundFileInfo, decoded: int, warnings: list[str]) -> float | None:
    """The header's duration when the decoded stream falls short of it (a warning says so)."""
    declared = int(info.frames)
    missing = declared - decoded
    if declared <= 0 or missing < TRUNCATION_MIN_S * info.samplerate or missing < TRUNCATION_MIN_RATIO * declared:
        return None
    declared_s, decoded_s = declared / info.samplerate, decoded / info.samplerate
    warnings.append(
        f"{escape_text(p.name)}: truncated: its header declares {declared_s:.1f} s of audio but only {decoded_s:.1f} s "
        "could be decoded; the analysis covers what is there"
    )
    return round(declared_s, 3)


def _clip_float(p: Path, data: np.ndarray, warnings: list[str], *, quiet_up_to: float = 1.0) -> np.ndarray:
    """Samples clipped to [-1, 1], with a warning when one exceeded ``quiet_up_to``.

    NaN and infinities are left for :func:`validate_samples` to refuse.
    """
    hi, lo = float(data.max()), float(data.min())
    if not (np.isfinite(hi) and np.isfinite(lo)) or (hi <= 1.0 and lo >= -1.0):
        return data
    beyond = int(np.count_nonzero(data > 1.0) + np.count_nonzero(data < -1.0))
    np.clip(data, -1.0, 1.0, out=data)
    if max(hi, -lo) <= quiet_up_to:
        return data
    warnings.append(
        f"{escape_text(p.name)}: {beyond} sample{'s' if beyond != 1 else ''} beyond full scale "
        f"(largest magnitude {max(hi, -lo):.3g}) clipped to ±1"
    )
    return data


def load_mono(path: str | os.PathLike[str], *, max_duration_s: float = DEFAULT_MAX_DURATION_S) -> AudioClip:
    """Decode a recording as one track; a stereo file is averaged (as NISQA does)."""
    return downmix(load_audio(path, max_duration_s=max_duration_s))


def downmix(clips: list[AudioClip]) -> AudioClip:
    """One track of a file's channels (:func:`load_audio`): the only one, or the mean of the two.

    Parameters
    ----------
    clips : list of AudioClip
        One or two channels of the same file (same length and rate).

    Returns
    -------
    AudioClip
        float32 samples; a mean keeps the file's path, encoding and full scale, without a channel.
    """
    if len(clips) == 1:
        return clips[0]
    mean = ((clips[0].samples.astype(np.float64) + clips[1].samples) / 2).astype(np.float32)
    return dataclasses.replace(clips[0], samples=mean, channel=None)
