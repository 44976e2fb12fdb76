"""A month of a small contact centre: who called when, through what, and the planted stories.

Eight agents (ViciDial user ids 6001-6008, each always the same voice), three campaigns
(``SALESOUT`` and ``RENEWALS`` outbound, ``SUPPORT`` inbound through the in-group
``HELPDESK``), three carriers and two dialer servers, over the 30 days ending on the build day,
with a weekday/weekend and hourly rhythm (08:00-19:00; on the build day only a few overnight
helpdesk calls after midnight, so no call lies in the future). Recording layouts follow the campaign, as ViciDial
sites configure them: conference recordings and mix-only MP3s for the sales floor, channel and
stereo recordings for support.

Planted stories (:data:`STORIES`), each meant to be found in Fleet trends and the Overview:

- ``carrier_packet_loss``: FLOWROUTE's calls lose caller audio packets from the 16th day on;
- ``clipping_headset``: agent 6003's headset drives his side into full scale on every call;
- ``afternoon_dead_air``: SUPPORT calls after 13:00 often hold long silences;
- ``one_way_server``: a few calls on dialer 10.10.10.12 carry no agent audio at all.

Everything is drawn from one seeded generator per build day, so a day's plan is always the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

DAYS = 30
SEED = 20261124
TODAY_CALLS = 3  # on the build day, between 00:05 and 00:56 (so they are past whenever it runs)


@dataclass(frozen=True)
class Agent:
    """A ViciDial user: ``user`` id, full name, the talker id of their voice, home campaign."""

    user: str
    full_name: str
    talker: str
    campaign: str


@dataclass(frozen=True)
class Campaign:
    """A campaign: direction, in-group (inbound), call length range and recording layouts."""

    campaign_id: str
    inbound: bool
    ingroup: str | None
    length_s: tuple[float, float]
    layouts: dict[str, float]


AGENTS = (
    Agent("6001", "Sarah Mitchell", "p225", "SALESOUT"),
    Agent("6002", "David Chen", "p226", "SALESOUT"),
    Agent("6003", "Tom Harris", "p227", "SUPPORT"),
    Agent("6004", "Emma Collins", "p228", "RENEWALS"),
    Agent("6005", "Linda Johnson", "LJ", "SUPPORT"),
    Agent("6006", "James Carter", "p287", "SUPPORT"),
    Agent("6007", "Rachel Moore", "p230", "SALESOUT"),
    Agent("6008", "Omar Haddad", "p243", "RENEWALS"),
)
CAMPAIGNS = {
    "SALESOUT": Campaign("SALESOUT", False, None, (30.0, 55.0), {"conference": 0.7, "mixed": 0.3}),
    "RENEWALS": Campaign("RENEWALS", False, None, (35.0, 60.0), {"mixed": 0.5, "stereo": 0.5}),
    "SUPPORT": Campaign("SUPPORT", True, "HELPDESK", (45.0, 80.0), {"channel": 0.6, "stereo": 0.25, "mixed": 0.15}),
}
CARRIERS = {"TELNYX": 0.4, "VOIPMS": 0.3, "FLOWROUTE": 0.3}
SERVERS = ("10.10.10.11", "10.10.10.12")
CALLERS = ("p233", "p236", "p244", "p254", "p258", "p259", "p273", "p240", "p260",
           "ls1320", "ls3575", "ls6829", "ls8230")
HOUR_WEIGHTS = {8: 1.0, 9: 2.0, 10: 3.0, 11: 3.0, 12: 2.0, 13: 2.0, 14: 3.0, 15: 3.0, 16: 2.5, 17: 1.5, 18: 1.0}

LOSSY_CARRIER = "FLOWROUTE"
LOSS_FROM_DAY = 15  # 0-based day of the month: the second half
LOSS_RATE = (0.08, 0.14)
CLIPPING_AGENT = "6003"
CLIP_OVERDRIVE_DB = (8.0, 12.0)
DEAD_AIR_CAMPAIGN = "SUPPORT"
DEAD_AIR_FROM_HOUR = 13
DEAD_AIR_SHARE = 0.8
DEAD_AIR_S = (12.0, 28.0)
ONE_WAY_SERVER = "10.10.10.12"
ONE_WAY_CALLS = 5
ONE_WAY_LAST_DAYS = 12

STORIES: dict[str, dict[str, str]] = {
    "carrier_packet_loss": {
        "title": f"Carrier {LOSSY_CARRIER} starts losing packets in the second half of the month",
        "detail": f"From day {LOSS_FROM_DAY + 1} of the 30 on, every {LOSSY_CARRIER} call loses 8-14 % of the "
                  "caller's 20 ms packets in bursts: packet_loss and a lower MOS on its calls, nothing before.",
        "where": "Fleet trends: split by carrier (MOS and packet-loss trend), Worst performers -> Carriers",
    },
    "clipping_headset": {
        "title": f"Agent {CLIPPING_AGENT} (Tom Harris) has a headset that clips",
        "detail": "His side is driven 8-12 dB into full scale on every call: clipping on the agent leg.",
        "where": "Fleet trends: Worst performers -> Agents; Overview: Findings by code (clipping)",
    },
    "afternoon_dead_air": {
        "title": f"Campaign {DEAD_AIR_CAMPAIGN} has dead air in the afternoons",
        "detail": f"Most {DEAD_AIR_CAMPAIGN} calls after {DEAD_AIR_FROM_HOUR}:00 hold 12-28 s where nobody speaks "
                  "(agents searching with the caller on an unannounced hold); mornings are clean.",
        "where": "Fleet trends: Worst performers -> Campaigns ranked by dead air per call; Per hour",
    },
    "one_way_server": {
        "title": f"A few one-way calls from dialer {ONE_WAY_SERVER}",
        "detail": f"{ONE_WAY_CALLS} calls in the last {ONE_WAY_LAST_DAYS} days on {ONE_WAY_SERVER} carry no agent "
                  "audio (an RTP/NAT fault): one_way_audio on the agent leg.",
        "where": "Fleet trends: Worst performers -> Servers ranked by one-way rate; Overview: Worst calls",
    },
}


@dataclass(frozen=True)
class CallPlan:
    """Everything about one call except its audio."""

    index: int
    start: datetime
    day: int  # 0 = first day of the month, DAYS - 1 = the build day
    agent: Agent
    campaign: Campaign
    carrier: str
    server: str
    layout: str
    caller: str
    length_s: float
    phone: str
    lead_id: int
    stories: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def plan_month(today: date) -> list[CallPlan]:
    """The calls of the 30 days ending on ``today``, oldest first (deterministic per day).

    Parameters
    ----------
    today : date
        The last day of the month; its few calls come in on the overnight helpdesk line
        shortly after midnight, so they lie in the past at any later hour of the build day.

    Returns
    -------
    list of CallPlan
        About 160 calls.
    """
    rng = np.random.default_rng((SEED, today.toordinal()))
    first = today - timedelta(days=DAYS - 1)
    starts: list[tuple[int, datetime]] = []
    for day in range(DAYS):
        d = first + timedelta(days=day)
        if day == DAYS - 1:  # the build day: the overnight helpdesk line just after midnight
            minutes = sorted(rng.choice(np.arange(5, 56), size=TODAY_CALLS, replace=False))
            starts += [(day, datetime(d.year, d.month, d.day, 0, int(m), int(rng.integers(60)))) for m in minutes]
            continue
        n = int(rng.integers(6, 9)) if d.weekday() < 5 else int(rng.integers(2, 5))
        hours = list(HOUR_WEIGHTS)
        weights = np.array(list(HOUR_WEIGHTS.values()))
        for hour in sorted(rng.choice(hours, size=n, p=weights / weights.sum())):
            starts.append((day, datetime(d.year, d.month, d.day, int(hour), int(rng.integers(60)),
                                         int(rng.integers(60)))))
    starts.sort(key=lambda s: s[1])
    plans = [_plan_call(i, day, start, rng, overnight=day == DAYS - 1) for i, (day, start) in enumerate(starts)]
    return _plant_one_way(plans, rng)


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return str(keys[int(rng.choice(len(keys), p=p / p.sum()))])


def _plan_call(index: int, day: int, start: datetime, rng: np.random.Generator, *, overnight: bool) -> CallPlan:
    agent = AGENTS[int(rng.integers(len(AGENTS)))]
    campaign = CAMPAIGNS[agent.campaign if rng.random() < 0.75 else _pick(rng, dict.fromkeys(CAMPAIGNS, 1.0))]
    if overnight:
        campaign = CAMPAIGNS["SUPPORT"]
    layout = _pick(rng, campaign.layouts)
    carrier = _pick(rng, CARRIERS)
    caller = str(rng.choice(CALLERS))
    stories: list[str] = []
    params: dict[str, Any] = {}
    if carrier == LOSSY_CARRIER and day >= LOSS_FROM_DAY:
        stories.append("carrier_packet_loss")
        params["loss_rate"] = round(float(rng.uniform(*LOSS_RATE)), 3)
    if agent.user == CLIPPING_AGENT:
        stories.append("clipping_headset")
        params["overdrive_db"] = round(float(rng.uniform(*CLIP_OVERDRIVE_DB)), 1)
    if campaign.campaign_id == DEAD_AIR_CAMPAIGN and start.hour >= DEAD_AIR_FROM_HOUR and rng.random() < DEAD_AIR_SHARE:
        stories.append("afternoon_dead_air")
        params["dead_air_s"] = round(float(rng.uniform(*DEAD_AIR_S)), 1)
    area = int(rng.choice([212, 312, 415, 617, 713, 305]))
    return CallPlan(
        index=index, start=start, day=day, agent=agent, campaign=campaign, carrier=carrier,
        server=SERVERS[int(rng.integers(2))], layout=layout, caller=caller,
        length_s=round(float(rng.uniform(*campaign.length_s)), 1), phone=f"{area}555{int(rng.integers(10_000)):04d}",
        lead_id=100_200 + 17 * index + int(rng.integers(17)), stories=tuple(stories), params=params,
    )


def _plant_one_way(plans: list[CallPlan], rng: np.random.Generator) -> list[CallPlan]:
    """Turn a few recent two-leg calls on :data:`ONE_WAY_SERVER` into one-way calls (agent side lost)."""
    candidates = [p for p in plans if p.server == ONE_WAY_SERVER and p.layout in ("channel", "stereo")
                  and p.day >= DAYS - ONE_WAY_LAST_DAYS and not p.stories]
    picked = {int(i) for i in rng.choice([p.index for p in candidates], size=min(ONE_WAY_CALLS, len(candidates)),
                                         replace=False)}
    out = []
    for p in plans:
        if p.index in picked:
            p = CallPlan(**{**p.__dict__, "stories": ("one_way_server",), "params": {"silent_leg": "agent"}})
        out.append(p)
    return out
