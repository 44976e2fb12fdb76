"""Stored calls with chosen metadata, MOS and findings, for alert and report tests.

Each call is a small but complete ``CallAnalysis`` (two legs, quality scores, the findings
asked for) saved through the real :meth:`ResultStore.save_analysis`, so every column the alert
and report queries read is filled as a scan would fill it. Call ids follow ViciDial's
``YYYYMMDD-HHMMSS_PHONE`` and the phone number is stored as metadata too: tests can check
that it never leaves in a narrative request.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import datetime

from core.results import CallAnalysis, Finding, Interval, LegResult, QualityScores, TrackQuality, TrackStats

SEVERITY = {"one_way_audio": "critical", "packet_loss": "critical", "dead_air": "warning", "clipping": "warning",
            "poor_quality": "warning", "noisy": "warning", "echo": "warning", "low_volume": "warning",
            "talk_imbalance": "info", "talk_over": "info"}
_PHONES = itertools.count(3125550100)


def next_phone() -> str:
    return str(next(_PHONES))


def analysis(call_id: str, *, mos: float | None, codes: Iterable[str] = (), duration_s: float = 60.0) -> CallAnalysis:
    """A two-leg analysis with caller/agent MOS ``mos`` and one finding per code."""
    def leg(source: str) -> LegResult:
        quality = None
        if mos is not None:
            quality = TrackQuality(scores=QualityScores(mos, 3.0, 3.0, 3.0, 3.0), windows=(), model="nisqa-test")
        return LegResult(stats=TrackStats(-26.0, -3.0, duration_s, 0.0, 0, 0.0), silences=[Interval(20.0, 22.0)],
                         speech=[Interval(1.0, 20.0), Interval(22.0, 50.0)], speech_ratio=0.8, sample_rate=8000,
                         encoding="ULAW", source=source, quality=quality,
                         extra={"speech_level_db": -22.0, "noise_floor_db": -66.0, "snr_db": 44.0, "dropouts": 0})

    findings = []
    for i, code in enumerate(codes):
        start = 10.0 + 5 * i
        end = start + (8.0 if code == "dead_air" else 2.0)
        findings.append(Finding(code, "agent" if code in ("one_way_audio", "clipping") else "caller", start, end,
                                SEVERITY[code], f"test {code}"))
    return CallAnalysis(call_id=call_id, layout="channel", duration_s=duration_s,
                        legs={"caller": leg(f"/rec/{call_id}-in.wav"), "agent": leg(f"/rec/{call_id}-out.wav")},
                        findings=findings, warnings=[], config={}, timings_s={}, sources={}, version="test-1",
                        quality_model="nisqa-test" if mos is not None else None)


def store_call(store, when: datetime, *, mos: float | None = 3.5, codes: Iterable[str] = (), carrier: str | None = None,
               agent: str | None = None, campaign: str | None = None, server: str | None = None,
               ingroup: str | None = None, phone: str | None = None, duration_s: float = 60.0) -> str:
    """Save one call at local time ``when``; returns its call id."""
    phone = phone or next_phone()
    call_id = f"{when:%Y%m%d-%H%M%S}_{phone}"
    meta = {"call_time": when, "carrier": carrier, "agent": agent, "campaign": campaign, "server_ip": server,
            "ingroup": ingroup, "phone_number": phone, "lead_id": int(phone[-6:])}
    doc = analysis(call_id, mos=mos, codes=codes, duration_s=duration_s)
    key = (call_id.replace("-", "").replace("_", "") + "0" * 64)[:64]
    store.save_analysis(doc, cache_key=key, source_kind="file", source_ref=call_id,
                        metadata={k: v for k, v in meta.items() if v is not None})
    return call_id
