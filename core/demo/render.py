"""Turn a :class:`~core.demo.month.CallPlan` into recordings: a conversation of real utterances,
the telephone chain, the planted impairments and ViciDial file naming for the call's layout.

Layouts (as ``core/audio/layout.py`` reads them): ``channel`` writes ``NAME-in.wav`` (caller)
and ``NAME-out.wav`` (agent); ``stereo`` writes ``NAME-stereo.wav`` (left agent, right caller);
``conference`` writes the bridge's mix to ``NAME-in.wav`` and digital silence to
``NAME-out.wav``; ``mixed`` writes only ``NAME-all.mp3`` (the two legs at -6 dB each, 16 kbit/s
mono, as ViciDial compresses its mixes). WAV files are G.711 mu-law.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf

from core.demo.chain import (
    SAMPLE_RATE_HZ,
    bandpass,
    bridge,
    intersect,
    line_noise,
    long_gaps,
    lost_packets,
    quantize,
    set_level,
    speech_intervals,
    union,
)
from core.errors import ConfigError

if TYPE_CHECKING:
    from core.demo.month import CallPlan
    from core.demo.speech import SpeechBank, Talker

SERVER_UTC_OFFSET_H = -5  # the demo dialers run on US Eastern (standard) time
DEAD_AIR_MIN_S = 5.0  # AnalysisConfig.dead_air_min_s: both sides silent this long is dead air
MP3_BITRATE = "16k"
VICIDIAL_FIELDS = (
    "lead_id", "uniqueid", "user", "full_name", "campaign_id", "ingroup", "server_ip",
    "phone_number", "call_date", "length_in_sec", "status", "term_reason", "hangup_cause",
    "sip_hangup_cause", "sip_hangup_reason", "dialstatus", "carrier",
)
"""Manifest keys that carry ViciDial-like call metadata (shown beside analysis results)."""

_STATUSES = {"SALESOUT": ("SALE", "NI", "CALLBK", "SALE"), "RENEWALS": ("RENEW", "NI", "RENEW"),
             "SUPPORT": ("RESOLV", "XFER", "RESOLV")}


def render_call(plan: CallPlan, bank: SpeechBank, dest: Path) -> dict[str, Any]:
    """Write the files of one call into ``dest`` and return its manifest entry.

    Raises
    ------
    ConfigError
        A file cannot be written or the MP3 encoder (ffmpeg) fails.
    """
    rng = np.random.default_rng((plan.start.toordinal(), plan.index, 15))
    tracks, speech, n = _converse(plan, bank, rng)
    legs, params = _chain(plan, tracks, speech, n, rng)
    call_id = f"{plan.start:%Y%m%d-%H%M%S}_{plan.phone}"
    files = _write_layout(plan.layout, call_id, legs, dest)
    duration_s = round(n / SAMPLE_RATE_HZ, 3)
    if "one_way_server" in plan.stories:
        speech["agent"] = []  # nothing of the agent reached the recording
    entry: dict[str, Any] = {
        "call_id": call_id,
        "layout": plan.layout,
        "duration_s": duration_s,
        "files": files,
        "stories": list(plan.stories),
        "speakers": {"agent": plan.agent.talker, "caller": plan.caller},
        "legs": {leg: {"speech": iv} for leg, iv in speech.items()},
        "overlaps": intersect(speech["caller"], speech["agent"]),
        "params": {**plan.params, **params},
        "expect": _expect(plan, speech),
    }
    entry.update(_vicidial(plan, call_id, duration_s, rng))
    return entry


# --- the conversation ---------------------------------------------------------------------------------
def _converse(plan: CallPlan, bank: SpeechBank, rng: np.random.Generator
              ) -> tuple[dict[str, np.ndarray], dict[str, list[list[float]]], int]:
    """Alternate agent and caller turns until the planned length; a dead-air hold sits mid-call."""
    agent, caller = bank.talkers[plan.agent.talker], bank.talkers[plan.caller]
    placed: list[tuple[str, int, np.ndarray]] = []
    cursor = round(rng.uniform(0.4, 1.0) * SAMPLE_RATE_HZ)
    speaker = "agent" if plan.campaign.inbound else "caller"
    last_end = {"caller": 0, "agent": 0}
    hold_at = plan.params.get("dead_air_s") and plan.length_s * rng.uniform(0.35, 0.55)
    talk = {"caller": 0, "agent": 0}
    while cursor < plan.length_s * SAMPLE_RATE_HZ:
        clip = _utterance(agent if speaker == "agent" else caller, rng, first=not placed)
        start = max(cursor, last_end[speaker] + round(0.25 * SAMPLE_RATE_HZ))
        placed.append((speaker, start, clip))
        last_end[speaker] = start + len(clip)
        talk[speaker] += len(clip)
        cursor = start + len(clip)
        if hold_at and speaker == "agent" and cursor >= hold_at * SAMPLE_RATE_HZ:
            cursor += round(plan.params["dead_air_s"] * SAMPLE_RATE_HZ)  # "one moment please" -> silence
            hold_at = None
            continue  # the agent comes back after the hold
        gap_s = -rng.uniform(0.2, 0.45) if rng.random() < 0.12 else rng.uniform(0.3, 0.9)
        cursor += round(gap_s * SAMPLE_RATE_HZ)
        other = "caller" if speaker == "agent" else "agent"
        if talk[other] <= 1.5 * talk[speaker] + 2 * SAMPLE_RATE_HZ:  # keep the talk shares conversational
            speaker = other
    n = max(last_end.values()) + round(rng.uniform(0.6, 1.2) * SAMPLE_RATE_HZ)
    tracks = {"caller": np.zeros(n), "agent": np.zeros(n)}
    raw: dict[str, list[list[float]]] = {"caller": [], "agent": []}
    for who, start, clip in placed:
        tracks[who][start: start + len(clip)] += clip
        raw[who] += speech_intervals(clip, offset_s=start / SAMPLE_RATE_HZ)
    return tracks, {leg: bridge(iv, max_gap_s=0.25) for leg, iv in raw.items()}, n


def _utterance(talker: Talker, rng: np.random.Generator, *, first: bool) -> np.ndarray:
    """One turn: one of the talker's phrases."""
    phrases = talker.phrases
    if first:  # open with one of the talker's shorter phrases (a greeting)
        short = sorted(range(len(phrases)), key=lambda i: len(phrases[i]))[: max(1, len(phrases) // 3)]
        return phrases[int(rng.choice(short))]
    return phrases[int(rng.integers(len(phrases)))]


# --- the telephone chain and the planted impairments ------------------------------------------------
def _chain(plan: CallPlan, tracks: dict[str, np.ndarray], speech: dict[str, list[list[float]]], n: int,
           rng: np.random.Generator) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Band-limit and level each side, impair, add line noise; float legs at full scale 1.0."""
    params: dict[str, Any] = {"caller_level_dbfs": round(float(rng.uniform(-24.0, -19.0)), 1),
                              "agent_level_dbfs": round(float(rng.uniform(-23.0, -19.0)), 1)}
    caller = set_level(bandpass(tracks["caller"]), speech["caller"], target_dbfs=params["caller_level_dbfs"])
    agent = set_level(bandpass(tracks["agent"]), speech["agent"], target_dbfs=params["agent_level_dbfs"])
    if "clipping_headset" in plan.stories:
        agent = np.clip(agent * (10 ** (plan.params["overdrive_db"] / 20) / np.max(np.abs(agent))), -1.0, 1.0)
        params["clipped_ratio"] = round(float(np.mean(np.abs(agent) >= 1.0)), 4)
    if "one_way_server" in plan.stories:
        agent = np.zeros(n)
    caller = caller + line_noise(n, rng=rng)
    agent = agent + line_noise(n, rng=rng)
    if "carrier_packet_loss" in plan.stories:
        kept = lost_packets(n, plan.params["loss_rate"], rng=rng)
        caller = caller * kept
        params["lost_packets"] = int(np.sum(~kept[:: round(SAMPLE_RATE_HZ * 0.02)]))
    return {"caller": caller, "agent": agent}, params


def _write_layout(layout: str, call_id: str, legs: dict[str, np.ndarray], dest: Path) -> dict[str, str]:
    caller, agent = quantize(legs["caller"], encoding="ULAW"), quantize(legs["agent"], encoding="ULAW")
    if layout == "channel":
        files = {"in": f"{call_id}-in.wav", "out": f"{call_id}-out.wav"}
        _write_wav(dest / files["in"], caller)
        _write_wav(dest / files["out"], agent)
    elif layout == "stereo":
        files = {"stereo": f"{call_id}-stereo.wav"}
        _write_wav(dest / files["stereo"], np.stack([agent, caller], axis=1))  # left = agent
    elif layout == "conference":
        files = {"in": f"{call_id}-in.wav", "out": f"{call_id}-out.wav"}
        bridge_mix = legs["caller"] + legs["agent"]  # the bridge sums what it receives
        _write_wav(dest / files["in"], quantize(bridge_mix, encoding="ULAW"))
        _write_wav(dest / files["out"], np.zeros(len(caller), dtype=np.int16))
    elif layout == "mixed":
        files = {"all": f"{call_id}-all.mp3"}
        mix = (caller.astype(np.int32) + agent.astype(np.int32)) // 2
        _write_mp3(dest / files["all"], mix.astype(np.int16))
    else:
        raise ValueError(f"unknown layout {layout!r}")
    return files


def _write_wav(path: Path, samples: np.ndarray) -> None:
    """Write int16 samples as an 8 kHz G.711 mu-law WAV via a temporary name."""
    tmp = path.with_name(f".{path.name}.partial")
    try:
        sf.write(str(tmp), samples, SAMPLE_RATE_HZ, subtype="ULAW", format="WAV")
        os.replace(tmp, path)
    except (OSError, sf.LibsndfileError) as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"{path} cannot be written ({exc})") from None


def _write_mp3(path: Path, samples: np.ndarray) -> None:
    """Encode int16 samples as a mono MP3 with ffmpeg (libmp3lame) via a temporary name."""
    tmp = path.with_name(f".{path.name}.partial")
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "s16le", "-ar", str(SAMPLE_RATE_HZ),
           "-ac", "1", "-i", "pipe:0", "-c:a", "libmp3lame", "-b:a", MP3_BITRATE, "-f", "mp3", "-y", str(tmp)]
    try:
        subprocess.run(cmd, input=samples.astype("<i2").tobytes(), capture_output=True, check=True, timeout=60)
        os.replace(tmp, path)
    except (OSError, subprocess.SubprocessError) as exc:
        tmp.unlink(missing_ok=True)
        detail = (getattr(exc, "stderr", b"") or b"").decode(errors="replace").strip() or str(exc)
        raise ConfigError(f"{path} cannot be encoded with ffmpeg ({detail}); run `make setup`") from None


# --- manifest fields -----------------------------------------------------------------------------------
def _expect(plan: CallPlan, speech: dict[str, list[list[float]]]) -> dict[str, Any]:
    """The findings the planted stories should produce: code -> leg (None for a call-level finding)."""
    expect: dict[str, Any] = {}
    if "carrier_packet_loss" in plan.stories:
        expect["packet_loss"] = "caller"
    if "clipping_headset" in plan.stories:
        expect["clipping"] = "agent"
    if "one_way_server" in plan.stories:
        expect["one_way_audio"] = "agent"
    gaps = long_gaps(union(speech["caller"], speech["agent"]), min_s=DEAD_AIR_MIN_S)
    if gaps and "one_way_server" not in plan.stories:
        expect["dead_air"] = gaps
    return expect


def _vicidial(plan: CallPlan, call_id: str, duration_s: float, rng: np.random.Generator) -> dict[str, Any]:
    """ViciDial-like metadata of the call (vicidial_log / closer_log / carrier_log columns)."""
    epoch = int(plan.start.replace(tzinfo=UTC).timestamp()) - SERVER_UTC_OFFSET_H * 3600
    one_way = "one_way_server" in plan.stories
    lossy = "carrier_packet_loss" in plan.stories
    statuses = _STATUSES[plan.campaign.campaign_id]
    meta = {
        "lead_id": plan.lead_id,
        "uniqueid": f"{epoch}.{4_100 + plan.index}",
        "user": plan.agent.user,
        "full_name": plan.agent.full_name,
        "campaign_id": plan.campaign.campaign_id,
        "ingroup": plan.campaign.ingroup,
        "server_ip": plan.server,
        "phone_number": plan.phone,
        "call_date": plan.start.isoformat(),
        "start_epoch": epoch,
        "length_in_sec": int(round(duration_s)),
        "status": "NI" if one_way else str(statuses[int(rng.integers(len(statuses)))]),
        "term_reason": "CALLER" if one_way or rng.random() < 0.4 else "AGENT",
        "hangup_cause": 38 if lossy and rng.random() < 0.3 else 16,
        "sip_hangup_cause": 200,
        "sip_hangup_reason": "OK",
        "dialstatus": "ANSWER",
        "carrier": plan.carrier,
        "recording_file": call_id,
    }
    return meta

