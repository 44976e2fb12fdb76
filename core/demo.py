"""Demo recordings for ``make run``: eight synthetic ViciDial calls with known impairments.

A fresh machine has no recordings and no ViciDial database, so the project makes its own:
speech is synthesized with espeak-ng (two voices per call), placed as a two-party conversation,
sent through a telephone chain and given one impairment per call, then written with ViciDial
file naming next to a ``demo_manifest.json`` holding ViciDial-like metadata and ground truth in
the spirit of ``../shared/corpus/labels.json``.

The telephone chain follows the shared corpus: 300-3400 Hz band, speech at an active level near
-20 dBFS, a line noise floor at -66 dBFS and a G.711 mu-law round trip. Output is deterministic
(fixed seeds, a fixed reference date), so the same machine writes the same bytes every time, and
a build whose manifest is current does nothing.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf
import soxr
from scipy import signal

from core.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from core.config import Settings

DEMO_VERSION = 1
"""Bump whenever the generated audio or manifest changes; older demo sets are then rebuilt."""

MANIFEST_NAME = "demo_manifest.json"
SAMPLE_RATE_HZ = 8000
REFERENCE_DATE = datetime(2026, 11, 24)  # "today" of the demo; never the wall clock
SERVER_UTC_OFFSET = timedelta(hours=-5)  # the demo dialers run on US Eastern (standard) time
DEMO_SEED = 20261124

# --- telephone chain (values measured on ../shared/corpus, see its README) ---------------
BAND_HZ = (300.0, 3400.0)
SPEECH_LEVEL_DBFS = -20.0
NOISE_FLOOR_DBFS = -66.0
PEAK_KNEE_DBFS = -6.0  # a soft limiter keeps synthetic peaks (crest ~20 dB) off full scale
PEAK_CEILING_DBFS = -3.0
ROOM_TONE_SNR_DB = 35.0  # the talker's room/handset noise under each utterance, below its speech
ESPEAK_RATE_WPM = 150

# --- impairments -----------------------------------------------------------------------------
LOW_VOLUME_DBFS = -44.0
CLIP_OVERDRIVE_DB = 10.0  # peak of the agent leg before the hard clip, above full scale
ECHO_DELAY_S = 0.18
ECHO_LOSS_DB = 12.0
PACKET_MS = 20
PACKET_LOSS_RATE = (0.10, 0.15)
DEAD_AIR_S = 15.0
DEAD_AIR_MIN_S = 5.0  # both sides silent at least this long counts as dead air (AnalysisConfig)
IMBALANCE_SHARE = 0.70

# --- ground-truth speech marking (as labels.json: 20 ms frames within 35 dB of the peak) -----
_FRAME_S = 0.020
_SPEECH_RANGE_DB = 35.0
_TRIM_RANGE_DB = 50.0
_BRIDGE_S = 0.250

IMPAIRMENTS = (
    "clean", "one_way", "dead_air", "clipping", "low_volume", "echo", "packet_loss", "conference",
)
VICIDIAL_FIELDS = (
    "lead_id", "uniqueid", "user", "full_name", "campaign_id", "ingroup", "server_ip",
    "phone_number", "call_date", "length_in_sec", "status", "term_reason", "hangup_cause",
    "sip_hangup_cause", "sip_hangup_reason", "dialstatus", "carrier",
)
"""Manifest keys that carry ViciDial-like call metadata (shown beside analysis results)."""

_MULAW_BIAS = 0x84
_MULAW_CLIP = 32635
_INT16_SCALE = 32768.0


@dataclass(frozen=True)
class DemoCall:
    """One generated call.

    Attributes
    ----------
    call_id : str
        ViciDial recording name, ``FULLDATE_CUSTPHONE`` (``20261121-093012_3125550101``).
    impairment : str
        One of :data:`IMPAIRMENTS`.
    layout : str
        ``channel`` (``-in`` = caller, ``-out`` = agent) or ``conference`` (``-in`` = the mix,
        ``-out`` = digital silence).
    duration_s : float
        Length of every file of the call.
    in_path, out_path, mixed_path : Path
        ``NAME-in.wav``, ``NAME-out.wav`` and ``NAME-all.wav``.
    metadata : Mapping[str, Any]
        The :data:`VICIDIAL_FIELDS` of the call.
    """

    call_id: str
    impairment: str
    layout: str
    duration_s: float
    in_path: Path
    out_path: Path
    mixed_path: Path
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class DemoSet:
    """The demo recordings in one folder.

    Attributes
    ----------
    root : Path
        Folder holding the recordings and the manifest.
    manifest_path : Path
        ``root / "demo_manifest.json"``.
    calls : tuple of DemoCall
        In manifest order (one per impairment).
    generated : bool
        True when this build wrote the files, False when they were already up to date.
    """

    root: Path
    manifest_path: Path
    calls: tuple[DemoCall, ...]
    generated: bool


# --- call scripts ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Turn:
    """One utterance; ``gap_s`` is the pause before it (None: a random conversational gap)."""

    speaker: str
    text: str
    gap_s: float | None = None


@dataclass(frozen=True)
class _Agent:
    user: str
    full_name: str
    voice: str


@dataclass(frozen=True)
class _CallSpec:
    impairment: str
    days_before: int
    clock: str  # HH:MM:SS, server local time
    phone: str
    encoding: str
    agent: _Agent
    caller_voice: str
    turns: tuple[_Turn, ...]
    vicidial: Mapping[str, Any] = field(hash=False, compare=False)


_SARAH = _Agent("6001", "Sarah Mitchell", "en-us+f3")
_DAVID = _Agent("6002", "David Chen", "en-us+m3")
_MARIA = _Agent("6003", "Maria Lopez", "en+f4")  # British; espeak-ng 1.51 drops "+fN" after "en-gb"
_JAMES = _Agent("6004", "James Carter", "en-gb-x-rp")


def _a(text: str, gap_s: float | None = None) -> _Turn:
    return _Turn("agent", text, gap_s)


def _c(text: str, gap_s: float | None = None) -> _Turn:
    return _Turn("caller", text, gap_s)


def _outbound(status: str, term: str, carrier: str, **extra: Any) -> dict[str, Any]:
    return {"campaign_id": "SALESOUT", "ingroup": None, "status": status, "term_reason": term,
            "carrier": carrier, **extra}


def _inbound(ingroup: str, status: str, term: str, carrier: str, **extra: Any) -> dict[str, Any]:
    return {"campaign_id": "SUPPORT", "ingroup": ingroup, "status": status, "term_reason": term,
            "carrier": carrier, **extra}


_CALLS: tuple[_CallSpec, ...] = (
    _CallSpec(
        "clean", 3, "09:30:12", "3125550101", "PCM_16", _SARAH, "en-gb-scotland",
        (
            _c("Hello?"),
            _a("Hi, this is Sarah calling from Northwind Home Supplies. Am I speaking with Daniel Brooks?"),
            _c("Yes, this is Daniel speaking. What is this about?"),
            _a("You ordered a water filter system last week, and I am calling to confirm the delivery."),
            _c("Oh right, the filter for the kitchen. When is it supposed to arrive? I work during the week."),
            _a("It ships today and should reach you on Thursday morning. We also offer a maintenance "
               "plan for twelve dollars a month."),
            _c("Twelve dollars a month. Is there a contract, or can I cancel it any time I want?"),
            _a("There is no contract, you can cancel with one phone call."),
            _c("All right, that sounds fair enough. Please go ahead and add it to my order."),
            _a("Done. You will get a confirmation email within the hour. Anything else I can help with?"),
            _c("No, that is everything for now. Thank you very much, Sarah."),
            _a("Thank you, Daniel. Have a great day."),
        ),
        _outbound("SALE", "AGENT", "TELNYX"),
    ),
    _CallSpec(
        "one_way", 3, "10:45:47", "2125550147", "ULAW", _DAVID, "en-us+f2",
        (  # the agent talks, but his audio never reaches the line
            _c("Hello?"),
            _c("Hello? Who is this?", 3.4),
            _c("Hello, I can not hear you.", 3.9),
            _c("Is anybody there?", 3.2),
            _c("Hello? Can you hear me?", 4.1),
            _c("I think the line is broken, I can not hear anything at all.", 3.6),
            _c("Hello?", 4.3),
            _c("If you can hear me, I can not hear you.", 3.5),
            _c("Please try calling me back later.", 4.0),
            _c("Okay, I am hanging up now. Goodbye.", 3.7),
        ),
        _outbound("NI", "CALLER", "VOIPMS"),
    ),
    _CallSpec(
        "dead_air", 3, "14:12:03", "4155550123", "ULAW", _MARIA, "en-us+m1",
        (
            _a("Thank you for calling Northwind Energy billing, my name is Maria. How can I help you?"),
            _c("Hi Maria. My bill this month is almost twice what I usually pay, and I do not understand why."),
            _a("I am sorry to hear that. Can I have your account number, please?"),
            _c("Sure, it is four four seven, two nine one, zero eight."),
            _a("Thank you. Let me pull up your usage history, one moment please."),
            _a("Thank you for holding. Last month we used an estimated meter reading, so this bill "
               "covers two months of usage.", DEAD_AIR_S),
            _c("So it is not a rate increase?"),
            _a("No, your rate is the same. A supervisor will call you tomorrow to split it over three bills."),
            _c("Okay, thank you. Bye."),
        ),
        _inbound("BILLING", "CALLBK", "CALLER", "TELNYX"),
    ),
    _CallSpec(
        "clipping", 2, "09:08:15", "6175550188", "ULAW", _JAMES, "en+f2",
        (
            _a("Northwind Home Supplies, this is James speaking. How may I help you?"),
            _c("Hello, I am calling about order number five five one two. It still says processing."),
            _a("Let me check that for you. I see it, it is waiting for the shower head, which is back "
               "in stock tomorrow."),
            _c("I really need it before the weekend. Is there anything you can do?"),
            _a("I can upgrade you to express shipping for nine dollars, and it would arrive on Friday."),
            _c("Friday works. Please go ahead with the express shipping."),
            _a("All set. The nine dollars go on the card ending in four two one."),
            _c("Great, thank you very much James."),
            _a("You are welcome. Thank you for calling Northwind."),
        ),
        _inbound("ORDERS", "SALE", "AGENT", "TELNYX"),
    ),
    _CallSpec(
        "low_volume", 2, "11:33:42", "7735550112", "PCM_16", _SARAH, "en-029",
        (
            _c("Hello."),
            _a("Hi, this is Sarah from Northwind Energy. Is this Marcus Reed?"),
            _c("Yes, speaking."),
            _a("Sorry, you are very quiet. Could you speak up a little?"),
            _c("Yes, this is Marcus. Can you hear me now?"),
            _a("A bit better, thank you. I am calling about our new fixed rate plan, which could lower "
               "your winter bills."),
            _c("I am at work right now, I can not really talk."),
            _a("No problem at all. When would be a better time to call you back?"),
            _c("Next Tuesday after five would be fine."),
            _a("Perfect, I will call you on Tuesday after five. Have a good day."),
            _c("Thanks, you too."),
        ),
        _outbound("CALLBK", "AGENT", "VOIPMS"),
    ),
    _CallSpec(
        "echo", 2, "15:59:21", "3055550165", "ULAW", _DAVID, "en-us+f4",
        (
            _c("Hello?"),
            _a("Good afternoon, this is David with Northwind Home Supplies. Is this Linda Park?"),
            _c("Yes it is. Who is calling, please?"),
            _a("Linda, you bought a dishwasher from us last year, and the extended warranty on it "
               "is about to expire."),
            _c("Okay, I remember that. How much would it cost to extend it?"),
            _a("It is forty nine dollars for two more years, including parts and labour."),
            _c("Hmm. The dishwasher has been working fine so far, and I already have home insurance, so I think I will pass."),
            _a("I understand. Should I send you the details by email in case you change your mind?"),
            _c("No thank you, I am really not interested."),
            _a("All right. Thank you for your time, Linda, goodbye."),
        ),
        _outbound("NI", "CALLER", "VOIPMS"),
    ),
    _CallSpec(
        "packet_loss", 1, "10:11:37", "2145550139", "ULAW", _MARIA, "en+m3",
        (
            _a("Northwind Home Supplies, this is Maria. How can I help you today?"),
            _c("Hi, I received my order yesterday, but one of the chairs arrived broken."),
            _a("Oh no, I am sorry about that. Can you give me the order number?"),
            _c("Yes, it is seven three zero nine one."),
            _a("Thank you. I see two chairs on that order. Which one is damaged?"),
            _c("The grey one, the back leg is cracked right through."),
            _a("I will send a replacement today, and the courier will collect the broken one."),
            _c("Sorry, you are breaking up. Did you say the courier collects it?"),
            _a("Yes, the courier will collect it when they deliver the new chair."),
            _c("Okay, thanks. The line is really bad, please call me back if anything changes."),
        ),
        _inbound("ORDERS", "CALLBK", "NONE", "VOIPMS",
                 hangup_cause=38, sip_hangup_cause=503, sip_hangup_reason="Service Unavailable"),
    ),
    _CallSpec(
        "conference", 1, "14:30:58", "5035550176", "PCM_16", _JAMES, "en-gb-scotland+f3",
        (
            _a("Thank you for calling Northwind Energy, this is James. How can I help?"),
            _c("Hello James, I am moving house next month and I need to transfer my account."),
            _a("Of course. What is the date of the move, and the new address?"),
            _c("The fifteenth of December, to twelve Orchard Lane, Springfield."),
            _a("Thank you. Moves are handled by our relocation team, so I will bring in a colleague "
               "from that team now."),
            _c("That is fine, I can hold."),
            _a("While I connect them, can you confirm the phone number on the account?"),
            _c("It is five zero three, five five five, zero one seven six."),
            _a("Thanks for waiting. I have Anna from relocation on the line, she will set up the meter "
               "reading for the fifteenth."),
            _c("Wonderful. And will the final bill for the old address come by email?"),
            _a("Yes, it will come by email a few days after the move. Anna will take it from here."),
            _c("Perfect, thank you both. Goodbye."),
        ),
        _inbound("BILLING", "XFER", "AGENT", "TELNYX"),
    ),
)


# --- public API --------------------------------------------------------------------------------
def demo_recordings_dir(settings: Settings) -> Path:
    """Where ``make run`` keeps the demo recordings: ``data_dir / "demo" / "recordings"``."""
    return settings.data_dir / "demo" / "recordings"


def demo_store_url(settings: Settings) -> str:
    """The demo's own result store: ``<data_dir>/demo/callqa.db``."""
    return str(settings.data_dir / "demo" / "callqa.db")


def demo_metadata(call: DemoCall) -> dict[str, Any]:
    """The store metadata of a demo call (ViciDial-like fields, call time, campaign or in-group)."""
    meta = {k: call.metadata.get(k) for k in VICIDIAL_FIELDS}
    meta["call_time"] = call.metadata.get("call_date")
    meta["campaign"] = call.metadata.get("campaign_id") or call.metadata.get("ingroup")
    meta.pop("campaign_id", None)
    return meta


def build_demo(settings: Settings, *, force: bool = False, recordings_dir: Path | None = None,
               scan: bool = True, quality: bool = True, store_url: str | None = None, progress=None) -> DemoSet:
    """Prepare everything the dashboard's demo mode needs; the single entry point of ``demo build``.

    Generates the recordings (when missing or outdated) and scans them, with their ViciDial-like
    metadata, into the demo store; both steps do nothing when already done.

    Parameters
    ----------
    settings : Settings
        The loaded configuration (``data_dir``, analysis thresholds, quality model).
    force : bool
        Regenerate even when the recordings are up to date.
    recordings_dir : Path, optional
        Overrides :func:`demo_recordings_dir`.
    scan, quality : bool
        Scan into the store; score NISQA while doing so.
    store_url : str, optional
        Overrides :func:`demo_store_url`.

    Returns
    -------
    DemoSet
        The demo recordings.
    """
    dest = recordings_dir if recordings_dir is not None else demo_recordings_dir(settings)
    demo = build_demo_recordings(dest, force=force)
    if scan:
        from core.audio.layout import call_files_for
        from core.scan import WorkItem, run_scan

        items = [WorkItem.from_call_files(call_files_for(c.in_path), metadata=demo_metadata(c)) for c in demo.calls]
        report = run_scan(settings, items, store_url=store_url or demo_store_url(settings), quality=quality,
                          progress=progress, source=str(dest))
        report.check()
    return demo


def build_demo_recordings(dest: Path, *, force: bool = False) -> DemoSet:
    """Generate the eight demo calls and ``demo_manifest.json`` into ``dest``.

    Parameters
    ----------
    dest : Path
        Output folder, created when missing.
    force : bool
        Regenerate even when ``dest`` already holds a complete set of this :data:`DEMO_VERSION`.

    Returns
    -------
    DemoSet
        ``generated`` is False when nothing had to be written.

    Raises
    ------
    ConfigError
        espeak-ng is not installed or fails, or ``dest`` cannot be written.

    Notes
    -----
    Deterministic: fixed seeds and :data:`REFERENCE_DATE`, so the same machine (same espeak-ng)
    writes identical bytes. Files are written to temporary names and renamed; the manifest is
    written last, so an interrupted build is redone on the next call.
    """
    dest = Path(dest)
    if not force:
        current = _current_set(dest)
        if current is not None:
            return current
    espeak = _find_espeak()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"demo folder {dest} cannot be created ({exc.strerror})") from None
    previous = _read_manifest_quietly(dest / MANIFEST_NAME)
    cache: dict[tuple[str, str], np.ndarray] = {}
    entries = [_build_call(spec, index, dest, espeak=espeak, cache=cache) for index, spec in enumerate(_CALLS)]
    manifest = {
        "demo_version": DEMO_VERSION,
        "sample_rate": SAMPLE_RATE_HZ,
        "reference_date": REFERENCE_DATE.date().isoformat(),
        "server_utc_offset": _format_offset(SERVER_UTC_OFFSET),
        "chain": {"band_hz": list(BAND_HZ), "speech_level_dbfs": SPEECH_LEVEL_DBFS,
                  "noise_floor_dbfs": NOISE_FLOOR_DBFS, "codec": "G.711 mu-law round trip"},
        "calls": entries,
    }
    _remove_stale(dest, previous, keep={f for e in entries for f in e["files"].values()})
    _write_atomic(dest / MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode())
    return _demo_set(dest, manifest, generated=True)


def read_demo_manifest(dest: Path) -> dict[str, Any]:
    """Return the parsed ``demo_manifest.json`` of ``dest``.

    Raises
    ------
    ConfigError
        The manifest is missing or unreadable (run ``callqa demo build``).
    """
    path = Path(dest) / MANIFEST_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist; run `callqa demo build`") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}); run `callqa demo build --force`") from None


# --- build steps ---------------------------------------------------------------------------------
def _current_set(dest: Path) -> DemoSet | None:
    """The existing set when its manifest is of this version and every file exists."""
    manifest = _read_manifest_quietly(dest / MANIFEST_NAME)
    if not manifest or manifest.get("demo_version") != DEMO_VERSION:
        return None
    try:
        names = [name for call in manifest["calls"] for name in call["files"].values()]
    except (KeyError, TypeError, AttributeError):
        return None
    if len(manifest["calls"]) != len(_CALLS) or not all((dest / n).is_file() for n in names):
        return None
    try:
        return _demo_set(dest, manifest, generated=False)
    except (KeyError, TypeError, ValueError):
        return None


def _read_manifest_quietly(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _demo_set(dest: Path, manifest: dict[str, Any], *, generated: bool) -> DemoSet:
    calls = tuple(
        DemoCall(
            call_id=c["call_id"],
            impairment=c["impairment"],
            layout=c["layout"],
            duration_s=float(c["duration_s"]),
            in_path=dest / c["files"]["in"],
            out_path=dest / c["files"]["out"],
            mixed_path=dest / c["files"]["mixed"],
            metadata={k: c.get(k) for k in VICIDIAL_FIELDS},
        )
        for c in manifest["calls"]
    )
    return DemoSet(root=dest, manifest_path=dest / MANIFEST_NAME, calls=calls, generated=generated)


def _remove_stale(dest: Path, previous: dict[str, Any] | None, *, keep: set[str]) -> None:
    """Delete files an older manifest listed that this build no longer writes."""
    for call in (previous or {}).get("calls", []):
        for name in (call.get("files") or {}).values():
            if isinstance(name, str) and name not in keep and "/" not in name and (dest / name).is_file():
                (dest / name).unlink()


def _build_call(
    spec: _CallSpec, index: int, dest: Path, *, espeak: str, cache: dict[tuple[str, str], np.ndarray]
) -> dict[str, Any]:
    """Synthesize, place, degrade and write one call; return its manifest entry."""
    rng = np.random.default_rng((DEMO_SEED, index))
    voices = {"caller": spec.caller_voice, "agent": spec.agent.voice}
    clips = []
    for turn in spec.turns:
        key = (voices[turn.speaker], turn.text)
        if key not in cache:
            cache[key] = _synthesize(turn.text, voice=key[0], espeak=espeak)
        clips.append(cache[key])
    tracks, speech, n = _place(spec.turns, clips, rng=rng)
    legs, params = _telephone_legs(spec.impairment, tracks, speech, rng=rng)
    start = REFERENCE_DATE - timedelta(days=spec.days_before) + _parse_clock(spec.clock)
    call_id = f"{start:%Y%m%d-%H%M%S}_{spec.phone}"
    files = {"in": f"{call_id}-in.wav", "out": f"{call_id}-out.wav", "mixed": f"{call_id}-all.wav"}
    mixed = _quantize((legs["in"] / _INT16_SCALE + legs["out"] / _INT16_SCALE) * 0.5, encoding=spec.encoding)
    for role, samples in (("in", legs["in"]), ("out", legs["out"]), ("mixed", mixed)):
        _write_wav(dest / files[role], samples, encoding=spec.encoding)
    duration_s = n / SAMPLE_RATE_HZ
    if spec.impairment == "one_way":
        speech["agent"] = []  # nothing of the agent reached the recording (as labels.json)
    entry: dict[str, Any] = {
        "call_id": call_id,
        "impairment": spec.impairment,
        "layout": "conference" if spec.impairment == "conference" else "channel",
        "duration_s": round(duration_s, 3),
        "encoding": spec.encoding,
        "files": files,
        "leg_map": ({"in": "mixed", "out": "silence"} if spec.impairment == "conference"
                    else {"in": "caller", "out": "agent"}),
        "speakers": voices,
    }
    entry.update(_vicidial_metadata(spec, index, start, duration_s))
    entry.update(_ground_truth(spec.impairment, speech, duration_s, params))
    return entry


def _parse_clock(clock: str) -> timedelta:
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _format_offset(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _vicidial_metadata(spec: _CallSpec, index: int, start: datetime, duration_s: float) -> dict[str, Any]:
    """ViciDial-like call metadata; carrier fields default to a normally cleared answered call."""
    epoch = int(start.replace(tzinfo=timezone(SERVER_UTC_OFFSET)).timestamp())
    meta: dict[str, Any] = {
        "lead_id": 100_231 + 37 * index,
        "uniqueid": f"{epoch}.{4_102 + 211 * index}",
        "user": spec.agent.user,
        "full_name": spec.agent.full_name,
        "server_ip": "10.10.10.11" if index % 2 == 0 else "10.10.10.12",
        "phone_number": spec.phone,
        "call_date": start.isoformat(),
        "start_epoch": epoch,
        "length_in_sec": int(round(duration_s)),
        "hangup_cause": 16,
        "sip_hangup_cause": 200,
        "sip_hangup_reason": "OK",
        "dialstatus": "ANSWER",
    }
    meta.update(spec.vicidial)
    return {k: meta[k] for k in (*VICIDIAL_FIELDS, "start_epoch")}


def _ground_truth(
    impairment: str, speech: dict[str, list[list[float]]], duration_s: float, params: dict[str, Any]
) -> dict[str, Any]:
    """Speech per leg, overlaps and the findings a correct analysis reports (labels.json keys)."""
    caller, agent = speech["caller"], speech["agent"]
    talk = {leg: sum(e - s for s, e in iv) for leg, iv in speech.items()}
    total = talk["caller"] + talk["agent"]
    imbalance = impairment != "one_way" and total > 0 and max(talk.values()) / total > IMBALANCE_SHARE
    impaired_leg = {"clipping": "agent", "low_volume": "caller", "echo": "caller", "packet_loss": "caller"}
    expect = {
        "one_way": "agent" if impairment == "one_way" else None,
        "dead_air": _long_gaps(_union(caller, agent), min_s=DEAD_AIR_MIN_S),
        **{name: (leg if impairment == name else None) for name, leg in impaired_leg.items()},
        "noisy": None,
        "talk_imbalance": bool(imbalance),
    }
    return {
        "legs": {leg: {"speech": iv, "speech_ratio": round(talk[leg] / duration_s, 4)}
                 for leg, iv in speech.items()},
        "overlaps": _intersect(caller, agent),
        "params": params,
        "expect": expect,
    }


# --- synthesis and placement -------------------------------------------------------------------
def _find_espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise ConfigError("espeak-ng is not installed (needed for the demo recordings); run `make setup`")
    return path


def _synthesize(text: str, *, voice: str, espeak: str) -> np.ndarray:
    """One utterance at 8 kHz, float64, trimmed to where the voice is within 50 dB of its peak."""
    cmd = [espeak, "-v", voice, "-s", str(ESPEAK_RATE_WPM), "--stdout", text]
    try:
        done = subprocess.run(cmd, capture_output=True, check=True, timeout=60)
        audio, rate = sf.read(io.BytesIO(done.stdout), dtype="float64")
    except (OSError, subprocess.SubprocessError, sf.LibsndfileError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        message = detail.decode(errors="replace").strip() or str(exc)
        raise ConfigError(f"espeak-ng failed for voice {voice!r}: {message}; run `make setup`") from None
    audio = soxr.resample(audio, rate, SAMPLE_RATE_HZ, quality="HQ")
    frames = _frame_db(audio)
    if frames.size == 0 or not np.isfinite(frames.max()):
        raise ConfigError(f"espeak-ng produced no audio for voice {voice!r}; run `make setup`")
    loud = np.flatnonzero(frames >= frames.max() - _TRIM_RANGE_DB)
    hop = round(_FRAME_S * SAMPLE_RATE_HZ)
    return audio[loud[0] * hop: (loud[-1] + 1) * hop]


def _frame_db(x: np.ndarray) -> np.ndarray:
    """RMS level in dB of consecutive 20 ms frames (a last partial frame is dropped)."""
    hop = round(_FRAME_S * SAMPLE_RATE_HZ)
    frames = x[: len(x) // hop * hop].reshape(-1, hop)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(np.mean(frames**2, axis=1))


def _speech_intervals(clip: np.ndarray, *, offset_s: float) -> list[list[float]]:
    """True speech of one clean utterance: 20 ms frames within 35 dB of its peak frame."""
    level = _frame_db(clip)
    active = level >= level.max() - _SPEECH_RANGE_DB
    edges = np.flatnonzero(np.diff(np.concatenate(([0], active.astype(np.int8), [0]))))
    return [[offset_s + s * _FRAME_S, offset_s + e * _FRAME_S] for s, e in edges.reshape(-1, 2)]


def _place(
    turns: Sequence[_Turn], clips: Sequence[np.ndarray], *, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], dict[str, list[list[float]]], int]:
    """Lay the utterances on two talker tracks with conversational gaps and a few overlaps.

    Returns the tracks (float64, same length), the merged speech intervals per talker in
    seconds and the length in samples.
    """
    starts: list[int] = []
    last_end = {"caller": 0, "agent": 0}
    cursor = round(rng.uniform(0.4, 1.0) * SAMPLE_RATE_HZ)
    previous: str | None = None
    for turn, clip in zip(turns, clips, strict=True):
        if previous is not None:
            if turn.gap_s is not None:
                gap_s = turn.gap_s
            elif turn.speaker != previous and rng.random() < 0.15:
                gap_s = -rng.uniform(0.2, 0.5)  # barge-in: starts before the other side finishes
            else:
                gap_s = rng.uniform(0.35, 1.1)
            cursor += round(gap_s * SAMPLE_RATE_HZ)
        start = max(cursor, last_end[turn.speaker] + round(0.25 * SAMPLE_RATE_HZ))
        starts.append(start)
        last_end[turn.speaker] = start + len(clip)
        cursor = start + len(clip)
        previous = turn.speaker
    n = max(last_end.values()) + round(rng.uniform(0.6, 1.2) * SAMPLE_RATE_HZ)
    tracks = {"caller": np.zeros(n), "agent": np.zeros(n)}
    raw: dict[str, list[list[float]]] = {"caller": [], "agent": []}
    for turn, clip, start in zip(turns, clips, starts, strict=True):
        tracks[turn.speaker][start: start + len(clip)] += clip + _room_tone(clip, rng=rng)
        raw[turn.speaker] += _speech_intervals(clip, offset_s=start / SAMPLE_RATE_HZ)
    speech = {leg: _bridge(iv, max_gap_s=_BRIDGE_S) for leg, iv in raw.items()}
    return tracks, speech, n


def _room_tone(clip: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    """Soft low-passed noise :data:`ROOM_TONE_SNR_DB` under the utterance, faded over 10 ms.

    Synthetic speech falls to digital zero between words, which no microphone does; recorded
    speech keeps its room noise inside an utterance (the line floor only shows between turns).
    """
    noise = signal.lfilter([1.0], [1.0, -0.9], rng.standard_normal(len(clip)))
    level = active_level_dbfs(clip, _speech_intervals(clip, offset_s=0.0)) - ROOM_TONE_SNR_DB
    noise *= 10 ** (level / 20) / np.sqrt(np.mean(noise**2))
    fade = min(round(0.010 * SAMPLE_RATE_HZ), len(clip) // 2)
    ramp = np.linspace(0.0, 1.0, fade)
    noise[:fade] *= ramp
    noise[len(noise) - fade:] *= ramp[::-1]
    return noise


# --- telephone chain -------------------------------------------------------------------------------
def _telephone_legs(
    impairment: str,
    tracks: dict[str, np.ndarray],
    speech: dict[str, list[list[float]]],
    *,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Band-limit, level, impair, add line noise and mu-law round trip each leg.

    Returns the ``in`` and ``out`` legs as mu-law-decoded int16 arrays and the impairment's
    parameters for the manifest.
    """
    n = len(tracks["caller"])
    caller_db = LOW_VOLUME_DBFS if impairment == "low_volume" else SPEECH_LEVEL_DBFS
    caller = _set_level(_bandpass(tracks["caller"]), speech["caller"], target_dbfs=caller_db)
    agent = _set_level(_bandpass(tracks["agent"]), speech["agent"], target_dbfs=SPEECH_LEVEL_DBFS)
    params: dict[str, Any] = {}
    if impairment == "low_volume":
        params["speech_rms_dbfs"] = LOW_VOLUME_DBFS
    elif impairment == "clipping":
        agent = agent * (10 ** (CLIP_OVERDRIVE_DB / 20) / np.max(np.abs(agent)))
        clipped = np.abs(agent) >= 1.0
        agent = np.clip(agent, -1.0, 1.0)
        params.update(overdrive_db=CLIP_OVERDRIVE_DB, clipped_ratio=round(float(clipped.mean()), 4))
    elif impairment == "echo":
        delay = round(ECHO_DELAY_S * SAMPLE_RATE_HZ)
        caller = caller + 10 ** (-ECHO_LOSS_DB / 20) * np.concatenate((np.zeros(delay), agent[:-delay]))
        params.update(echo_delay_s=ECHO_DELAY_S, echo_erl_db=ECHO_LOSS_DB)
    elif impairment == "one_way":
        agent = np.zeros(n)
        params["silent_leg"] = "agent"
    elif impairment == "dead_air":
        params["dead_air_s"] = DEAD_AIR_S
    if impairment == "conference":
        mix = _quantize(caller + agent + _line_noise(n, rng=rng), encoding="ULAW")
        return {"in": mix, "out": np.zeros(n, dtype=np.int16)}, params
    caller = caller + _line_noise(n, rng=rng)
    agent = agent + _line_noise(n, rng=rng)
    if impairment == "packet_loss":
        lost = _lost_packets(n, rng=rng)
        caller = caller * np.repeat(~lost, round(PACKET_MS * SAMPLE_RATE_HZ / 1000))[:n]
        params.update(loss_leg="caller", loss_rate=round(float(lost.mean()), 4),
                      lost_packets=int(lost.sum()), packet_ms=PACKET_MS)
    return {"in": _quantize(caller, encoding="ULAW"), "out": _quantize(agent, encoding="ULAW")}, params


def _bandpass(x: np.ndarray) -> np.ndarray:
    sos = signal.butter(4, BAND_HZ, btype="bandpass", fs=SAMPLE_RATE_HZ, output="sos")
    return signal.sosfilt(sos, x)


def _mask(intervals: Sequence[Sequence[float]], n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    for start_s, end_s in intervals:
        mask[round(start_s * SAMPLE_RATE_HZ): round(end_s * SAMPLE_RATE_HZ)] = True
    return mask


def active_level_dbfs(samples: np.ndarray, intervals: Sequence[Sequence[float]]) -> float:
    """RMS level in dBFS of ``samples`` (8 kHz, full scale 1.0) inside the speech ``intervals``.

    Returns ``-inf`` when the intervals hold no samples or only zeros.
    """
    inside = np.asarray(samples, dtype=np.float64)[_mask(intervals, len(samples))]
    if inside.size == 0:
        return float("-inf")
    with np.errstate(divide="ignore"):
        return float(10 * np.log10(np.mean(inside**2)))


def _set_level(x: np.ndarray, intervals: Sequence[Sequence[float]], *, target_dbfs: float) -> np.ndarray:
    """Scale to ``target_dbfs`` active level, then soft-limit peaks as a handset AGC would."""
    level = active_level_dbfs(x, intervals)
    if not np.isfinite(level):
        return x
    return _soft_limit(x * 10 ** ((target_dbfs - level) / 20))


def _soft_limit(x: np.ndarray) -> np.ndarray:
    """Leave samples below :data:`PEAK_KNEE_DBFS`; bend louder ones under :data:`PEAK_CEILING_DBFS`."""
    knee, ceiling = 10 ** (PEAK_KNEE_DBFS / 20), 10 ** (PEAK_CEILING_DBFS / 20)
    magnitude = np.abs(x)
    over = magnitude > knee
    bent = knee + (ceiling - knee) * np.tanh((magnitude[over] - knee) / (ceiling - knee))
    out = x.copy()
    out[over] = np.sign(x[over]) * bent
    return out


def _line_noise(n: int, *, rng: np.random.Generator) -> np.ndarray:
    """Band-limited Gaussian hiss at exactly :data:`NOISE_FLOOR_DBFS` RMS."""
    noise = _bandpass(rng.standard_normal(n))
    return noise * (10 ** (NOISE_FLOOR_DBFS / 20) / np.sqrt(np.mean(noise**2)))


def _lost_packets(n: int, *, rng: np.random.Generator) -> np.ndarray:
    """Mask of lost 20 ms packets: bursts of 1-6 packets until 10-15 % are gone."""
    packets = -(-n // round(PACKET_MS * SAMPLE_RATE_HZ / 1000))
    lost = np.zeros(packets, dtype=bool)
    target = round(rng.uniform(*PACKET_LOSS_RATE) * packets)
    while lost.sum() < target:
        start = int(rng.integers(0, packets))
        lost[start: start + int(rng.integers(1, 7))] = True
    return lost


def _quantize(x: np.ndarray, *, encoding: str) -> np.ndarray:
    """Float in [-1, 1] to int16; for ``ULAW`` through a G.711 mu-law encode/decode."""
    pcm = np.clip(np.round(np.asarray(x) * _INT16_SCALE), -32768, 32767).astype(np.int16)
    return _mulaw_decode(_mulaw_encode(pcm)) if encoding == "ULAW" else pcm


def _mulaw_encode(pcm: np.ndarray) -> np.ndarray:
    """ITU-T G.711 mu-law codes (uint8) of 16-bit linear samples."""
    value = pcm.astype(np.int32)
    sign = np.where(value < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(value), _MULAW_CLIP) + _MULAW_BIAS
    exponent = np.frexp(magnitude.astype(np.float64))[1] - 8  # floor(log2(magnitude)) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def _mulaw_decode(code: np.ndarray) -> np.ndarray:
    """16-bit linear samples (int16) of G.711 mu-law codes."""
    c = ~code.astype(np.int32) & 0xFF
    exponent = (c >> 4) & 0x07
    magnitude = ((((c & 0x0F) << 3) + _MULAW_BIAS) << exponent) - _MULAW_BIAS
    return np.where(c & 0x80, -magnitude, magnitude).astype(np.int16)


# --- intervals ------------------------------------------------------------------------------------
def _bridge(intervals: list[list[float]], *, max_gap_s: float) -> list[list[float]]:
    """Sort, merge and bridge pauses shorter than ``max_gap_s``; round to milliseconds."""
    merged: list[list[float]] = []
    for start, end in sorted(intervals):
        if merged and start - merged[-1][1] < max_gap_s:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [[round(s, 3), round(e, 3)] for s, e in merged]


def _union(a: list[list[float]], b: list[list[float]]) -> list[list[float]]:
    return _bridge([*a, *b], max_gap_s=0.0)


def _intersect(a: list[list[float]], b: list[list[float]]) -> list[list[float]]:
    out = []
    for s1, e1 in a:
        for s2, e2 in b:
            start, end = max(s1, s2), min(e1, e2)
            if end > start:
                out.append([round(start, 3), round(end, 3)])
    return sorted(out)


def _long_gaps(speech: list[list[float]], *, min_s: float) -> list[list[float]]:
    """Gaps of at least ``min_s`` between speech (leading and trailing silence excluded)."""
    return [[e, s] for (_, e), (s, _) in pairwise(speech) if s - e >= min_s]


# --- output ----------------------------------------------------------------------------------------
def _write_wav(path: Path, samples: np.ndarray, *, encoding: str) -> None:
    """Write int16 samples as a mono 8 kHz WAV (``PCM_16`` or ``ULAW``) via a temporary name."""
    tmp = path.with_name(f".{path.name}.partial")
    try:
        sf.write(str(tmp), samples, SAMPLE_RATE_HZ, subtype=encoding, format="WAV")
        os.replace(tmp, path)
    except (OSError, sf.LibsndfileError) as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"{path} cannot be written ({exc})") from None


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"{path} cannot be written ({exc.strerror})") from None
