"""``callqa analyze``: analyse one call and print a report or its JSON."""

from __future__ import annotations

import dataclasses
import functools

import click

from core.commands.common import allow_fast_exit, echo_json, settings_from, store_url_from
from core.results import LAYOUTS


def _fmt_db(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render_report(result: dict) -> str:
    """A readable plain-text report of one ``callqa analyze --json`` object."""
    lines = [f"Call {result['call_id']}  ·  {result['layout']} layout  ·  {result['duration_s']:.1f} s"]
    legs = result["legs"]
    names = list(legs)
    rows = [
        ("RMS / peak (dBFS)", lambda g: f"{g['stats']['rms_db']:.1f} / {g['stats']['peak_db']:.1f}"),
        ("DC offset", lambda g: f"{g['stats']['dc_offset']:+.5f}"),
        ("Clipped samples", lambda g: f"{g['stats']['clipped_samples']} ({g['stats']['clip_ratio']:.3%})"),
        ("Speech", lambda g: f"{sum(s['end_s'] - s['start_s'] for s in g['speech']):.1f} s ({g['speech_ratio']:.0%})"),
        ("Speech level (dBFS)", lambda g: _fmt_db(g.get("speech_level_db"))),
        ("SNR (dB)", lambda g: _fmt_db(g.get("snr_db"))),
        ("Silence gaps", lambda g: f"{len(g['silences'])} ({sum(s['end_s'] - s['start_s'] for s in g['silences']):.1f} s)"),
        ("MOS (NISQA)", lambda g: f"{g['quality']['mos']:.2f}" if g["quality"] else "-"),
    ]
    width = max(len(r[0]) for r in rows) + 2
    col = 24
    lines.append("")
    lines.append(" " * width + "".join(n.ljust(col) for n in names))
    for label, fn in rows:
        lines.append(label.ljust(width) + "".join(fn(legs[n]).ljust(col) for n in names))
    for n in names:
        q = legs[n]["quality"]
        if q:
            lines.append(f"  {n}: noisiness {q['noisiness']:.2f}, discontinuity {q['discontinuity']:.2f}, "
                         f"coloration {q['coloration']:.2f}, loudness {q['loudness']:.2f} "
                         f"({len(q['windows'])} windows)")
        elif legs[n].get("quality_reason"):
            lines.append(f"  {n}: no MOS ({legs[n]['quality_reason']})")
    lines.append("")
    if result["findings"]:
        lines.append("Findings:")
        for f in result["findings"]:
            leg = f" [{f['leg']}]" if f["leg"] else ""
            lines.append(f"  {f['severity'].upper():8} {f['code']}{leg} {f['start_s']:.1f}-{f['end_s']:.1f} s: {f['detail']}")
    else:
        lines.append("Findings: none")
    if result["warnings"]:
        lines.append("Warnings:")
        lines += [f"  - {w}" for w in result["warnings"]]
    t = result["timings_s"]
    lines.append("Timings: " + ", ".join(f"{k} {v:.2f} s" for k, v in t.items()))
    return "\n".join(lines)


@click.command("analyze")
@click.argument("path", required=False)
@click.option("--layout", type=click.Choice(LAYOUTS), default=None,
              help="Force the layout instead of detecting it from the files beside PATH.")
@click.option("--json", "as_json", is_flag=True, help="Print the analysis as one JSON object.")
@click.option("--no-quality", is_flag=True, help="Skip NISQA speech-quality scoring.")
@click.option("--recording-id", type=int, default=None,
              help="Fetch and analyse this ViciDial recording_log.recording_id instead of PATH.")
@click.option("--agent", default=None,
              help="ViciDial user of the call's agent: their voiceprint tells the agent's side of a mixed recording.")
@click.option("--save", is_flag=True,
              help="Also store the analysis in the result store (--store), as a scan would; `callqa show` "
                   "prints it later.")
@click.pass_context
def analyze_cmd(ctx: click.Context, path: str | None, layout: str | None, as_json: bool, no_quality: bool,
                recording_id: int | None, agent: str | None, save: bool) -> None:
    """Analyse one call: stats, silence gaps, speech, quality and findings per leg.

    PATH is any file of the call (NAME-in.wav, NAME-out.wav, NAME-all.mp3, a stereo file);
    the other files beside it are found by ViciDial naming. With --save the analysis is
    stored too (with the recording's ViciDial metadata for --recording-id), replacing a stored
    analysis of the same call.

    \b
    Examples:
      callqa analyze /var/spool/asterisk/monitorDONE/ORIG/20261107-080000_9828963560-in.wav
      callqa analyze call-all.mp3 --layout mixed --json
      callqa analyze --recording-id 9123456 --json --save
      callqa analyze 20261107-080000_9828963560-all.mp3 --agent 6001 --json
    """
    from core.analysis_service import analyze_item, analyze_or_reuse, call_item, load_models
    from core.commands.voices import voice_context_for

    settings = settings_from(ctx)
    if (path is None) == (recording_id is None):
        raise click.UsageError("give either PATH or --recording-id")
    # an --agent without a voiceprint is refused before any work; without --agent the enrolled
    # voiceprints are read from the store only if the call turns out to be a mix
    voices = voice_context_for(ctx, agent) if agent is not None else functools.partial(voice_context_for, ctx, None)
    item = call_item(settings, path=path, recording_id=recording_id)
    if agent is not None:
        item = dataclasses.replace(item, extras={**item.extras, "agent_user": agent})
    models = load_models(settings, quality=not no_quality)
    if save:
        from core.store.store import open_store

        # the store's voices: the agent's voiceprint, an analyst's mark; a channel call refreshes the print
        with open_store(store_url_from(ctx, settings)) as store:
            data = analyze_or_reuse(item, store, models, settings, layout=layout, force=True).document
    else:
        data = analyze_item(item, settings, models, layout=layout, voices=voices).as_dict()
    echo_analysis(data, as_json=as_json)
    allow_fast_exit()


def echo_analysis(doc: dict, *, as_json: bool) -> None:
    """Print one analysis: its JSON, or the readable report (``callqa analyze`` and ``callqa show``)."""
    if as_json:
        echo_json(doc)
    else:
        click.echo(render_report(doc))


def register(cli: click.Group) -> None:
    cli.add_command(analyze_cmd)
