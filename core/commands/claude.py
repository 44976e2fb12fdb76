"""``callqa summarize``, ``callqa investigate`` and ``callqa ask``: the Claude features on the command line.

Each command builds the services (:func:`core.llm.adapters.build_services`), calls one core
function and prints. Without ``ANTHROPIC_API_KEY`` (or ``[claude] api_key``) they stop with one
line saying how to configure it; API failures (429, 5xx, timeouts) are one line too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import click

from core.commands.common import echo_json, settings_from, store_url_from

_DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]


@contextmanager
def _services(ctx: click.Context) -> Iterator:
    """Settings -> Claude settings (checked first, so a missing key is reported before anything opens)."""
    from core.llm.adapters import build_services
    from core.llm.client import make_client
    from core.llm.settings import ClaudeSettings

    settings = settings_from(ctx)
    claude = ClaudeSettings.from_settings(settings)
    client = make_client(claude)  # raises LLMNotConfiguredError with instructions
    services = build_services(settings, store_url=store_url_from(ctx, settings), claude=claude)
    services._client = client
    try:
        yield services
    finally:
        services.close()


def _trail(services):
    """The audit trail of this command: the local operator (``cli:<user>``)."""
    from core.audit import AuditTrail, cli_identity

    return AuditTrail(services.store, cli_identity(), "cli")


def _cost(value: float) -> str:
    return f"${value:.4f}" if value < 1 else f"${value:.2f}"


def _print_summary(data: dict) -> None:
    origin = "stored" if data["cached"] else f"{data['input_tokens']} in / {data['output_tokens']} out tokens, {_cost(data['cost_usd'])}"
    click.echo(f"{data['call_id']}  [{data['severity'].upper()}]  {data['verdict']}")
    click.echo(f"  {data['summary']}")
    click.echo(f"  Likely cause: {data['suspected_cause']}")
    click.echo(f"  ({data['model']}, {data['prompt_version']}; {origin})")


@click.command("summarize")
@click.argument("call_id", required=False)
@click.option("--since", type=click.DateTime(_DATE_FORMATS), default=None,
              help="Summarise every stored call from this call time on (server-local time).")
@click.option("--until", type=click.DateTime(_DATE_FORMATS), default=None, help="End of --since's range (exclusive).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True,
              help="Most calls to summarise with --since.")
@click.option("--batch", "use_batch", is_flag=True,
              help="Use the Message Batches API (half price, results within 24 h) instead of one request per call.")
@click.option("--no-wait", is_flag=True, help="With --batch: submit and return; collect later with --resume.")
@click.option("--resume", is_flag=True, help="Poll the batches recorded in the store and store their results.")
@click.option("--force", is_flag=True, help="Ask Claude again even when a summary of the analysis is stored.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def summarize_cmd(ctx: click.Context, call_id: str | None, since: datetime | None, until: datetime | None,
                  limit: int, use_batch: bool, no_wait: bool, resume: bool, force: bool, as_json: bool) -> None:
    """Executive summary of stored calls, written by the Haiku model and stored.

    A summary is reused while the call's analysis, the model and the prompt version are unchanged.

    \b
    Examples:
      callqa summarize 20261107-083314_2985954634
      callqa summarize --since 2026-11-07 --until 2026-11-08 --batch
      callqa summarize --resume
    """
    modes = sum(bool(x) for x in (call_id, since, resume))
    if modes != 1:
        raise click.UsageError("give exactly one of CALL_ID, --since DATE or --resume")
    if (use_batch or no_wait) and not since:
        raise click.UsageError("--batch and --no-wait go with --since")
    with _services(ctx) as s:
        if call_id:
            from core.llm.summary import summarize_call

            result = summarize_call(call_id, client=s.client(), settings=s.claude, calls=s.calls, repo=s.repo,
                                    force=force, policy=s.policy, audit=_trail(s))
            echo_json(result.as_dict()) if as_json else _print_summary(result.as_dict())
        elif resume:
            _resume(s, as_json)
        elif use_batch and since:
            _batch(s, since, until, limit, force=force, wait=not no_wait, as_json=as_json)
        elif since:
            _one_by_one(s, since, until, limit, force=force, as_json=as_json)


def _one_by_one(s, since: datetime, until: datetime | None, limit: int, *, force: bool, as_json: bool) -> None:
    from core.errors import BudgetExceededError, LLMError
    from core.llm.client import LLMTransientError
    from core.llm.summary import summarize_call

    ids = s.calls.call_ids_between(since=since, until=until, limit=limit)
    results, failures, total = [], [], 0.0
    trail = _trail(s)
    for cid in ids:
        try:
            result = summarize_call(cid, client=s.client(), settings=s.claude, calls=s.calls, repo=s.repo, force=force,
                                    policy=s.policy, audit=trail)
        except (BudgetExceededError, LLMTransientError) as exc:
            failures.append({"call_id": cid, "error": str(exc)})
            break  # the next calls would fail the same way
        except LLMError as exc:
            failures.append({"call_id": cid, "error": str(exc)})
            continue
        total += result.cost_usd
        results.append(result.as_dict())
        if not as_json:
            _print_summary(result.as_dict())
    if as_json:
        echo_json({"summaries": results, "failures": failures, "cost_usd": round(total, 6)})
    else:
        for f in failures:
            click.echo(f"callqa: {f['call_id']}: {f['error']}", err=True)
        click.echo(f"{len(results)} of {len(ids)} calls summarised, {_cost(total)}", err=True)
    if failures:
        raise click.exceptions.Exit(3)


def _batch(s, since: datetime, until: datetime | None, limit: int, *, force: bool, wait: bool, as_json: bool) -> None:
    from core.llm.batch import submit_batch, wait_and_collect

    ids = s.calls.call_ids_between(since=since, until=until, limit=limit)
    sub = submit_batch(ids, client=s.client(), settings=s.claude, calls=s.calls, repo=s.repo, force=force,
                       policy=s.policy)
    if sub.batch_id:
        _trail(s).record("summary", target=f"batch {sub.batch_id}", detail=f"{len(sub.submitted)} calls sent")
    out = {"submission": sub.as_dict(), "outcome": None}
    if not as_json:
        click.echo(f"{len(sub.submitted)} calls submitted in batch {sub.batch_id or '-'} "
                   f"(estimate at most {_cost(sub.estimate_usd)}); {len(sub.already_summarised)} already summarised; "
                   f"{len(sub.skipped)} skipped", err=True)
    if sub.batch_id and wait:
        outcome = wait_and_collect(sub.batch_id, client=s.client(), settings=s.claude, calls=s.calls, repo=s.repo,
                                   on_poll=None if as_json else lambda st: click.echo(f"batch status: {st}", err=True))
        if outcome is None:
            msg = f"batch {sub.batch_id} is still running; collect it later with `callqa summarize --resume`"
            out["outcome"] = {"batch_id": sub.batch_id, "status": "in_progress", "message": msg}
            if not as_json:
                click.echo(msg, err=True)
        else:
            out["outcome"] = outcome.as_dict()
            if not as_json:
                _print_outcome(outcome.as_dict())
    if as_json:
        echo_json(out)
    if out["outcome"] and out["outcome"].get("failed"):
        raise click.exceptions.Exit(3)


def _print_outcome(o: dict) -> None:
    click.echo(f"batch {o['batch_id']}: {o['status']}; {o.get('stored', 0)} stored, {o.get('already_stored', 0)} "
               f"already stored, {o.get('stale', 0)} stale, {len(o.get('failed', []))} failed, "
               f"{_cost(o.get('cost_usd', 0.0))}")
    for f in o.get("failed", []):
        click.echo(f"  {f['id']}: {f['reason']}", err=True)


def _resume(s, as_json: bool) -> None:
    from core.llm.batch import resume_batches

    outcomes = [o.as_dict() for o in resume_batches(client=s.client(), settings=s.claude, calls=s.calls, repo=s.repo)]
    if as_json:
        echo_json({"batches": outcomes})
    elif not outcomes:
        click.echo("no open batches")
    else:
        for o in outcomes:
            _print_outcome(o)


@click.command("investigate")
@click.argument("call_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def investigate_cmd(ctx: click.Context, call_id: str, as_json: bool) -> None:
    """Root-cause narrative of one call from its analysis and every related ViciDial row (larger model).

    \b
    Example:
      callqa investigate 20261107-083314_2985954634 --json
    """
    from core.llm.investigate import investigate_call

    with _services(ctx) as s:
        result = investigate_call(call_id, client=s.client(), settings=s.claude, calls=s.calls, context=s.context,
                                  repo=s.repo, policy=s.policy, audit=_trail(s))
    data = result.as_dict()
    if as_json:
        echo_json(data)
        return
    click.echo(f"{data['call_id']}: {data['root_cause']}  (confidence {data['confidence']})")
    click.echo("")
    click.echo(data["narrative"])
    click.echo("\nEvidence:")
    for e in data["evidence"]:
        click.echo(f"  - [{e['source']}] {e['detail']}")
    click.echo("\nNext steps:")
    for step in data["next_steps"]:
        click.echo(f"  - {step}")
    rows = ", ".join(f"{t} {n}" for t, n in data["context_rows"].items()) or "none"
    click.echo(f"\n({data['model']}; ViciDial rows: {rows}; {data['input_tokens']} in / {data['output_tokens']} out "
               f"tokens, {_cost(data['cost_usd'])})")


@click.command("ask")
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print the answer, tool calls and cost as JSON at the end.")
@click.pass_context
def ask_cmd(ctx: click.Context, question: str, as_json: bool) -> None:
    """Ask the analyst chat one question; the answer streams, tool calls are shown on stderr.

    \b
    Example:
      callqa ask "Which carrier had the most one-way audio calls yesterday?"
    """
    from core.llm.chat import (
        Conversation,
        Notice,
        RevealingStream,
        TextDelta,
        ToolCallFinished,
        ToolCallStarted,
        TurnFinished,
        ask,
        shown_text,
    )

    with _services(ctx) as s:
        toolbox = s.toolbox(sql=True, audit=_trail(s))  # the local operator is trusted (admin)
        tools, final = [], None
        conversation = Conversation()
        stream = RevealingStream(conversation)
        for event in ask(conversation, question, client=s.client(), settings=s.claude, toolbox=toolbox, repo=s.repo):
            if isinstance(event, TextDelta) and not as_json:
                click.echo(stream.push(event.text), nl=False)
            elif isinstance(event, ToolCallStarted) and not as_json:
                shown = event.sql or ", ".join(f"{k}={v}" for k, v in event.input.items())
                click.echo(f"\n[tool] {event.name}: {' '.join(shown.split())}", err=True)
            elif isinstance(event, ToolCallFinished):
                o = event.outcome
                tools.append({"name": o.name, "input": o.input, "sql": o.sql, "is_error": o.is_error,
                              "row_count": o.row_count, "first_rows": list(o.preview), "error": o.error})
                if not as_json:
                    status = f"error: {o.error}" if o.is_error else f"{o.row_count} rows" + (
                        f" ({o.truncated})" if o.truncated else "")
                    click.echo(f"[tool] -> {status}", err=True)
            elif isinstance(event, Notice) and not as_json:
                click.echo(f"\n[note] {event.message}", err=True)
            elif isinstance(event, TurnFinished):
                final = event
    if final is None:
        return
    if as_json:
        echo_json({"answer": shown_text(final.text, conversation), "tools": tools, "call_ids": list(final.call_ids), "rounds": final.rounds,
                   "input_tokens": final.usage.total_input_tokens, "output_tokens": final.usage.output_tokens,
                   "cost_usd": final.cost_usd})
    else:
        click.echo(stream.flush())
        click.echo(f"({final.rounds} rounds, {final.usage.total_input_tokens} in / {final.usage.output_tokens} out "
                   f"tokens, {_cost(final.cost_usd)})", err=True)


def register(cli: click.Group) -> None:
    """Add ``summarize``, ``investigate`` and ``ask`` to the ``callqa`` command line."""
    cli.add_command(summarize_cmd)
    cli.add_command(investigate_cmd)
    cli.add_command(ask_cmd)
