"""Which files make up a call, and which track is which leg.

ViciDial names a recording's files ``NAME-in.wav`` (audio received from the monitored channel),
``NAME-out.wav`` (audio sent to it) and, after mixing, ``NAME-all.wav`` / ``NAME-all.mp3``
(``../shared/docs/vicidial.md`` sections 4.2-4.3). Four layouts follow:

``channel``
    ``-in`` = caller, ``-out`` = agent (channel recordings in ``monitor/MIX``).
``conference``
    The usual agent-conference recording: ``-in`` holds the whole conversation as the bridge
    mixed it and ``-out`` is digital silence. Analysed as one mixed track; never one-way audio.
``stereo``
    A 2-channel file; left = agent, right = caller (``[analysis] stereo_left``).
``mixed``
    Only a mono mix (``-all.mp3``): analysed with a warning that directional checks are limited.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from core.audio.io import AudioClip, check_file, downmix, load_audio, open_info
from core.config import AnalysisConfig
from core.errors import AudioNotFoundError, LayoutError, PathNotAllowedError, escape_text
from core.results import LAYOUTS

AUDIO_EXTENSIONS = (".wav", ".flac", ".gsm", ".ogg", ".oga", ".mp3")  # preference order
_ROLE_RE = re.compile(r"^(?P<name>.+)-(?P<role>in|out|all|stereo)$", re.IGNORECASE)
ROLES = ("in", "out", "all", "stereo")


@dataclass(frozen=True)
class CallFiles:
    """The files of one call: ``files`` maps a role (in, out, all, stereo, single) to a path."""

    call_id: str
    files: dict[str, Path]
    given: Path | None = None

    @property
    def paths(self) -> list[Path]:
        return [self.files[k] for k in sorted(self.files)]


def split_role(path: Path) -> tuple[str, str]:
    """Return (call name, role) of a file; files without a ViciDial suffix have role ``single``."""
    m = _ROLE_RE.match(path.stem)
    if m:
        return m.group("name"), m.group("role").lower()
    return path.stem, "single"


def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS and not path.name.startswith(".")


def _pick(candidates: list[Path]) -> Path:
    return min(candidates, key=lambda p: (AUDIO_EXTENSIONS.index(p.suffix.lower()), p.name))


def call_files_for(path: str | Path, *, roots: Iterable[Path] | None = None) -> CallFiles:
    """Find the files of the call that ``path`` belongs to, by looking beside it.

    Every file of the call is checked before anything reads it: it must be a regular file
    (a FIFO or a device beside a call would block or never end), and with ``roots`` its real
    path (symlinks followed) must lie below one of them, so a sibling linking out of the
    allowed folders is refused whether or not its target exists.

    Parameters
    ----------
    path : str or Path
        Any file of the call.
    roots : iterable of Path, optional
        Resolved folders every file of the call must lie in (``[api] allowed_roots``, the
        dashboard's folders); None: no restriction (the CLI, scans of a configured folder).

    Raises
    ------
    PathNotAllowedError
        A file of the call resolves outside ``roots``.
    AudioNotFoundError
        ``path`` does not exist, or a file of the call is a directory, FIFO or device.
    """
    p = Path(path)
    allowed = tuple(roots) if roots is not None else None
    if allowed is not None:
        check_inside(p, allowed)
    if not p.exists():
        raise AudioNotFoundError(f"{p}: no such file")
    if p.is_dir():
        raise AudioNotFoundError(f"{p}: is a directory; give one recording (or use `callqa scan` for a folder)")
    check_file(p)
    name, role = split_role(p)
    if role == "single":
        return CallFiles(call_id=name, files={"single": p}, given=p)
    found: dict[str, list[Path]] = {}
    for sibling in p.parent.glob(f"{glob_escape(name)}-*"):
        if not _is_audio(sibling):
            continue
        sname, srole = split_role(sibling)
        if sname == name and srole in ROLES:
            if allowed is not None:
                check_inside(sibling, allowed)
            check_file(sibling)
            found.setdefault(srole, []).append(sibling)
    files = {r: _pick(c) for r, c in found.items()}
    files[role] = p  # the file the user named wins over a sibling in another format
    return CallFiles(call_id=name, files=files, given=p)


def resolve_inside(path: str | Path, roots: Iterable[Path]) -> Path | None:
    """``path``'s real location (symlinks followed) if it is one of ``roots`` (resolved folders)
    or lies below one, else None."""
    real = Path(path).resolve()
    return real if any(real == root or real.is_relative_to(root) for root in roots) else None


def check_inside(path: Path, roots: tuple[Path, ...]) -> Path:
    """``path``'s real location if it lies below one of ``roots`` (resolved folders).

    A dangling symlink resolves to its target's path, so a link to a missing file outside the
    roots is refused exactly like a link to an existing one: the answer tells nothing about
    what exists out there.

    Raises
    ------
    PathNotAllowedError
        Naming ``path`` (never its target).
    """
    real = resolve_inside(path, roots)
    if real is not None:
        return real
    raise PathNotAllowedError(
        f"{path} lies outside the folders recordings may be read from (symlinks followed; "
        "[api] allowed_roots, [dashboard] folders)"
    )


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def discover_calls(folder: str | Path, *, recursive: bool = True) -> list[CallFiles]:
    """Group the recordings in ``folder`` into calls by ViciDial naming (sorted by call id)."""
    root = Path(folder)
    if not root.is_dir():
        raise AudioNotFoundError(f"{root}: not a folder of recordings")
    groups: dict[tuple[Path, str], dict[str, list[Path]]] = {}
    iterator = root.rglob("*") if recursive else root.glob("*")
    for p in iterator:
        if not p.is_file() or not _is_audio(p):
            continue
        name, role = split_role(p)
        groups.setdefault((p.parent, name), {}).setdefault(role, []).append(p)
    calls = []
    for (_parent, name), roles in groups.items():
        files = {r: _pick(c) for r, c in roles.items()}
        calls.append(CallFiles(call_id=name, files=files))
    return sorted(calls, key=lambda c: (c.call_id, str(c.paths[0].parent)))


@dataclass
class ResolvedCall:
    """The tracks to analyse: leg name (caller, agent, mixed) -> clip, plus what was decided."""

    call_id: str
    layout: str
    tracks: dict[str, AudioClip]
    warnings: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)


def _digital_silence(clip: AudioClip, peak_db: float) -> bool:
    x = clip.samples
    peak = float(max(x.max(), -x.min())) if x.size else 0.0  # no |x| copy of a call-long track
    return peak <= 10 ** (peak_db / 20)


Loader = Callable[[Path], list[AudioClip]]


def resolve_layout(
    call: CallFiles,
    *,
    cfg: AnalysisConfig,
    layout: str | None = None,
    loader: Loader | None = None,
) -> ResolvedCall:
    """Decide the layout of ``call`` and decode the tracks it needs (each file once).

    Parameters
    ----------
    call : CallFiles
        The call's files, from :func:`call_files_for` or :func:`discover_calls`.
    cfg : AnalysisConfig
        Uses ``conference_out_peak_db``, ``stereo_left`` and ``max_duration_s``.
    layout : str, optional
        Force ``channel``, ``conference``, ``stereo`` or ``mixed`` instead of detecting.

    Raises
    ------
    LayoutError
        Unknown layout, or a layout whose files are missing (the message names them).
    """
    if layout is not None and layout not in LAYOUTS:
        raise LayoutError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    cache: dict[Path, list[AudioClip]] = {}
    warnings: list[str] = []

    def load(path: Path) -> list[AudioClip]:
        if path not in cache:
            cache[path] = loader(path) if loader else load_audio(path, max_duration_s=cfg.max_duration_s)
            warnings.extend(w for w in cache[path][0].warnings if w not in warnings)
        return cache[path]

    files = call.files
    given = call.given
    name = call.call_id
    if given is not None:
        open_info(given)  # problems with the file the user named come first (empty, not audio...)

    def mono(path: Path) -> AudioClip:
        clips = load(path)
        if len(clips) > 1:
            warnings.append(f"{_name(path)} is stereo; its channels were averaged into one mixed track")
        return downmix(clips)

    def missing(role: str, beside: Path | None) -> str:
        where = f" beside {_name(beside)}" if beside else ""
        return f"{name}-{role}.*{where}"

    def stereo_file() -> Path | None:
        if "stereo" in files:
            return files["stereo"]
        for role in ("single", "all"):
            if role in files and len(load(files[role])) == 2:
                return files[role]
        return None

    def as_stereo(path: Path) -> ResolvedCall:
        clips = load(path)
        if len(clips) != 2:
            raise LayoutError(f"{path}: layout 'stereo' needs a 2-channel file, this one has {len(clips)}")
        left, right = clips
        other = "caller" if cfg.stereo_left == "agent" else "agent"
        tracks = {cfg.stereo_left: left, other: right}
        sources = {k: f"{path}#ch{(v.channel or 0) + 1}" for k, v in tracks.items()}
        return ResolvedCall(name, "stereo", tracks, warnings, sources)

    def as_mixed(path: Path) -> ResolvedCall:
        return ResolvedCall(name, "mixed", {"mixed": mono(path)}, warnings, {"mixed": str(path)})

    def mix_file() -> Path | None:
        if given is not None and (layout == "mixed") and given.exists():
            return given
        for role in ("all", "single"):
            if role in files:
                return files[role]
        return None

    if layout == "channel":
        if "in" not in files or "out" not in files:
            role = "out" if "in" in files else "in"
            raise LayoutError(f"layout 'channel' needs both legs: missing {missing(role, files.get('in') or files.get('out'))}")
        caller, agent = mono(files["in"]), mono(files["out"])
        return _channel(name, caller, agent, files, warnings)
    if layout == "conference":
        source = files.get("in") or mix_file()
        if source is None:
            raise LayoutError(f"layout 'conference' needs the conference mix {name}-in.* (or -all.*)")
        if "out" in files and not _digital_silence(mono(files["out"]), cfg.conference_out_peak_db):
            warnings.append(f"{_name(files['out'])} is not silent although the layout was forced to 'conference'")
        return ResolvedCall(name, "conference", {"mixed": mono(source)}, warnings, {"mixed": str(source)})
    if layout == "stereo":
        path = stereo_file() or given
        if path is None:
            raise LayoutError(f"layout 'stereo' needs a 2-channel recording of {name}")
        return as_stereo(path)
    if layout == "mixed":
        path = mix_file()
        if path is None:
            path = files.get("in") or files.get("out")
        if path is None:
            raise LayoutError(f"no recording of {name} to analyse as a mix")
        warnings.append("mixed layout: one track holds both talkers, so directional checks "
                        "(one-way audio, echo, talk imbalance, talk-over) are limited")
        return as_mixed(path)

    # auto-detection
    if "in" in files and "out" in files:
        caller, agent = mono(files["in"]), mono(files["out"])
        if _digital_silence(agent, cfg.conference_out_peak_db) and not _digital_silence(caller, cfg.conference_out_peak_db):
            warnings.append(
                f"conference recording: {_name(files['out'])} is digital silence and {_name(files['in'])} holds "
                "the conference mix"
            )
            return ResolvedCall(name, "conference", {"mixed": caller}, warnings, {"mixed": str(files["in"])})
        return _channel(name, caller, agent, files, warnings)
    path = stereo_file()
    if path is not None:
        return as_stereo(path)
    only_leg = "in" if "in" in files else "out" if "out" in files else None
    mix = mix_file()
    if only_leg is not None:
        other = "out" if only_leg == "in" else "in"
        if mix is None:
            raise LayoutError(
                f"missing leg: {missing(other, files[only_leg])} not found "
                f"(use --layout mixed to analyse {_name(files[only_leg])} alone)"
            )
        warnings.append(f"missing leg {escape_text(name)}-{other}.*: fell back to the mix {_name(mix)}")
    if mix is None:
        raise LayoutError(f"no recording found for call {name}")
    warnings.append("mixed layout: only a mono mix is available, so directional checks "
                    "(one-way audio, echo, talk imbalance, talk-over) are limited")
    return as_mixed(mix)


def _name(path: Path) -> str:
    """A file's name as it may appear in a warning (control characters escaped)."""
    return escape_text(path.name)


def _channel(name: str, caller: AudioClip, agent: AudioClip, files: dict[str, Path],
             warnings: list[str]) -> ResolvedCall:
    if abs(caller.duration_s - agent.duration_s) > 1.0:
        warnings.append(
            f"legs differ in length ({caller.duration_s:.1f} s caller, {agent.duration_s:.1f} s agent); "
            "cross-leg checks use the common part"
        )
    return ResolvedCall(name, "channel", {"caller": caller, "agent": agent}, warnings,
                        {"caller": str(files["in"]), "agent": str(files["out"])})
