"""``callqa quality``: NISQA v2.0 scores of whole files, as the official implementation gives them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from core.commands.common import echo_json, settings_from

if TYPE_CHECKING:  # numpy and the decoders load when the command runs, not for `callqa --help`
    from core.results import QualityScores

# Files decoded and scored together; bounds memory for long file lists.
_FILES_PER_BATCH = 32
_COLUMNS = ("mos", "noisiness", "discontinuity", "coloration", "loudness")


def register(cli: click.Group) -> None:
    cli.add_command(quality)


@click.command("quality")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.pass_context
def quality(ctx: click.Context, files: tuple[str, ...], as_json: bool) -> None:
    """Score each FILE with NISQA v2.0: MOS, noisiness, discontinuity, coloration, loudness.

    Each file is scored whole at its own sample rate (stereo: mean of the channels), exactly
    as the official NISQA implementation does; files must last 0.14-52.14 s. Scores are the
    raw model outputs on the 1-5 scale (higher is better) and may fall slightly outside it.
    Longer recordings are scored in windows by `callqa analyze`.

    The weights are CC BY-NC-SA 4.0: non-commercial use only.

    \b
    Example:
      callqa quality ../shared/golden/nisqa/clips/speech.wav --json
    """
    from core.audio.io import load_mono
    from core.quality.manager import get_quality_model

    model = get_quality_model(settings_from(ctx))
    rows: list[tuple[str, QualityScores]] = []
    for lo in range(0, len(files), _FILES_PER_BATCH):
        batch = files[lo : lo + _FILES_PER_BATCH]
        clips = [load_mono(path) for path in batch]
        scores = model.score_batch([(c.samples, c.sample_rate) for c in clips], names=list(batch))
        rows.extend(zip(batch, scores, strict=True))
    if as_json:
        echo_json([{"file": path, **scores.as_dict()} for path, scores in rows])
    else:
        click.echo(_table(rows))


def _table(rows: Sequence[tuple[str, QualityScores]]) -> str:
    """Fixed-width table: file name, then the five scores with three decimals."""
    width = max(len("file"), *(len(path) for path, _ in rows))
    lines = [f"{'file':<{width}}  " + "  ".join(f"{c:>13}" for c in _COLUMNS)]
    for path, scores in rows:
        values = scores.as_dict()
        lines.append(f"{path:<{width}}  " + "  ".join(f"{values[c]:>13.3f}" for c in _COLUMNS))
    return "\n".join(lines)
