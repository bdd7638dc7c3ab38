"""Command line: arguments → Config → library call. No cascade logic lives here.

Exit status: 0 every record ok; 1 some records ended in error; 2 usage or
config error; 3 stopped by --max-errors; 130 after SIGINT, 143 after SIGTERM
(output flushed first).
Heavy imports (openai, aiohttp, rich) happen inside the commands so that
`--help` stays fast.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Config
    from .control import RunControl

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_MAX_ERRORS, EXIT_SIGINT, EXIT_SIGTERM = 0, 1, 2, 3, 130, 143


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cascade-batch",
        description="Route JSONL queries through an LLM cascade (classify → cheapest adequate tier → escalate).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="answer every query in a JSONL file through the cascade")
    run.add_argument("input", metavar="INPUT", help="JSONL queries ('-' = stdin)")
    run.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="JSONL results ('-' = stdout)")
    _endpoint_options(run)
    run.add_argument("--summary", metavar="FILE", help="also write the summary as JSON to FILE")
    run.add_argument("--quiet", action="store_true", help="no progress bar and no summary table")
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue a stopped or crashed run: skip the input lines OUTPUT already holds",
    )
    run.add_argument(
        "--retry-errors",
        action="store_true",
        help="with --resume: run the lines whose records ended in error again, replacing them",
    )
    run.add_argument("--overwrite", action="store_true", help="replace a non-empty OUTPUT")
    run.add_argument(
        "--max-errors",
        type=int,
        default=0,
        metavar="N",
        help="stop (gracefully, exit status 3) after N unusable input lines (default: never)",
    )
    run.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local (default) or ray: the same cascade on a Ray cluster; OUTPUT is then a directory",
    )
    run.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="with --engine ray: 'auto' or ray://host:port (default: $RAY_ADDRESS, else a local cluster)",
    )
    run.add_argument("--workers", type=int, default=2, metavar="N", help="with --engine ray: actors (default 2)")
    run.add_argument("--no-dedup", action="store_true", help="call the model again for identical requests")
    run.add_argument("--cache", metavar="PATH", help="persistent response cache (SQLite); off by default")
    run.add_argument("--cache-ttl", metavar="AGE", help="ignore cache entries older than AGE (e.g. 3600, 90m, 12h, 7d)")
    run.add_argument(
        "--classify-only",
        action="store_true",
        help="labelling mode: write each query's tier label, the classifier's output, usage and cost; no answers",
    )
    run.add_argument(
        "--output-format",
        choices=("cascade", "openai-batch"),
        default="cascade",
        help="record shape: ours (default) or the OpenAI Batch API output's (routing under `cascade`)",
    )
    run.add_argument(
        "--grace-s",
        type=float,
        default=30.0,
        metavar="S",
        help="on Ctrl-C/SIGTERM, let in-flight records finish for up to S seconds (default 30)",
    )
    _sim_options(run, prefix="sim-")

    proj = sub.add_parser("project", help="project what the cascade would cost on INPUT, answering only samples")
    proj.add_argument("input", metavar="INPUT")
    _endpoint_options(proj)
    proj.add_argument(
        "--sample",
        type=int,
        default=0,
        metavar="N",
        help="classify a uniform random sample of N queries instead of all (default: all)",
    )
    proj.add_argument(
        "--answer-sample",
        type=int,
        default=30,
        metavar="K",
        help="queries answered per tier to learn its costs (default 30)",
    )
    proj.add_argument("--seed", type=int, default=0, help="seed of the random sampling (default 0)")
    proj.add_argument(
        "--scale",
        type=float,
        default=1.0,
        metavar="X",
        help="multiply the projection, e.g. 30 for a month from one day's log",
    )
    proj.add_argument("--json", metavar="FILE", help="write the projection JSON to FILE ('-' = stdout)")
    proj.add_argument("--quiet", action="store_true", help="no table on stderr")
    _sim_options(proj, prefix="sim-")

    aud = sub.add_parser("audit", help="judge a sample of cascade answers against the top tier's")
    aud.add_argument("output", metavar="OUTPUT.jsonl", help="the run's output")
    aud.add_argument("--input", required=True, metavar="INPUT", help="the run's input (for the requests)")
    _endpoint_options(aud)
    aud.add_argument("--sample", type=int, default=50, metavar="N", help="records to audit, stratified by tier")
    aud.add_argument("--judge-model", metavar="M", help="the judge (default: the top tier's model)")
    aud.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")
    aud.add_argument("--audit-file", metavar="FILE", help="where judgements go (default OUTPUT.audit.jsonl)")
    aud.add_argument("--resume", action="store_true", help="continue an interrupted audit")
    aud.add_argument("--overwrite", action="store_true", help="start the audit file over")
    aud.add_argument("--json", metavar="FILE", help="write the audit JSON to FILE ('-' = stdout)")
    aud.add_argument("--quiet", action="store_true", help="no table on stderr")
    _sim_options(aud, prefix="sim-")

    rep = sub.add_parser("report", help="rebuild the summary of a finished or partial output file")
    rep.add_argument("output", metavar="OUTPUT.jsonl")
    rep.add_argument(
        "-c", "--config", metavar="CONFIG.toml", help="price table for per-model costs (default: built-in)"
    )
    rep.add_argument("--json", metavar="FILE", help="write the summary JSON to FILE ('-' = stdout)")
    rep.add_argument("--html", metavar="FILE", help="write a self-contained HTML report with charts to FILE")
    rep.add_argument("--quiet", action="store_true", help="no table on stderr")

    sim = sub.add_parser("simulate", help="serve the built-in OpenAI-compatible simulator (not a real model)")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8000)
    sim.add_argument("-c", "--config", metavar="CONFIG.toml", help="models, prices and limits to emulate")
    _sim_options(sim, prefix="")
    return parser


def _endpoint_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", metavar="CONFIG.toml", help="config file (default: the built-in seed config)")
    p.add_argument("--base-url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, then the config)")
    p.add_argument(
        "--simulate",
        action="store_true",
        help="start the built-in simulator on loopback and use it (no key, no network)",
    )


def _sim_options(p: argparse.ArgumentParser, *, prefix: str) -> None:
    g = p.add_argument_group("simulator" if not prefix else "simulator (with --simulate)")
    g.add_argument(f"--{prefix}seed", type=int, help="seed of the simulator's random choices")
    g.add_argument(f"--{prefix}latency-ms", type=float, help="base latency per call, ms")
    g.add_argument(f"--{prefix}per-token-ms", type=float, help="latency added per completion token, ms")
    g.add_argument(f"--{prefix}fault-rate", type=float, help="probability (0..1) that a call gets an injected fault")
    g.add_argument(f"--{prefix}faults", help="comma-separated fault kinds to inject (default: all)")
    g.add_argument(f"--{prefix}window-s", type=float, help="rate-limit window in seconds (default 60)")


def _apply_sim_options(cfg: Config, args: argparse.Namespace, prefix: str) -> Config:
    changes: dict[str, Any] = {}
    for opt in ("seed", "latency_ms", "per_token_ms", "fault_rate", "window_s"):
        value = getattr(args, prefix + opt, None)
        if value is not None:
            changes[opt] = value
    faults = getattr(args, prefix + "faults", None)
    if faults:
        changes["faults"] = tuple(f.strip() for f in faults.split(",") if f.strip())
    return cfg.with_overrides(simulator=replace(cfg.simulator, **changes)) if changes else cfg


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("run", "project", "audit"):
        from ._malloc import pin_malloc_thresholds

        pin_malloc_thresholds()  # long runs: keep the heap from fragmenting (see _malloc)
    from .errors import ConfigError, RunAborted, unwrap_groups

    try:
        with unwrap_groups():
            if args.command == "run":
                return _run(args)
            if args.command == "report":
                return _report(args)
            if args.command == "project":
                return _project(args)
            if args.command == "audit":
                return _audit(args)
            return _simulate(args)
    except ConfigError as exc:
        print(f"cascade-batch: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RunAborted as exc:
        print(f"cascade-batch: run aborted: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _check_args(args: argparse.Namespace) -> None:
    from .errors import ConfigError

    if args.input != "-" and not os.path.isfile(args.input):
        raise ConfigError(f"input file not found: {args.input}")
    if args.resume and args.overwrite:
        raise ConfigError("--resume and --overwrite contradict each other")
    if args.retry_errors and not args.resume:
        raise ConfigError("--retry-errors goes with --resume")
    if args.max_errors < 0 or args.grace_s < 0:
        raise ConfigError("--max-errors and --grace-s must not be negative")
    if args.cache_ttl is not None and not args.cache:
        raise ConfigError("--cache-ttl goes with --cache")
    args.cache_ttl_s = parse_age(args.cache_ttl) if args.cache_ttl else 0.0


def parse_age(text: str) -> float:
    """Seconds from `3600`, `90s`, `90m`, `12h` or `7d`."""
    from .errors import ConfigError

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise ConfigError(f"--cache-ttl: cannot read {text!r} (use seconds, or 90m, 12h, 7d)") from None
    if value <= 0:
        raise ConfigError("--cache-ttl must be positive")
    return value


def _run(args: argparse.Namespace) -> int:
    import anyio

    from . import config as config_mod

    cfg = _apply_sim_options(config_mod.load(args.config), args, "sim_")
    if args.no_dedup:
        cfg = cfg.with_overrides(dedup=replace(cfg.dedup, enabled=False))
    _check_args(args)
    if args.engine == "ray":
        return _run_ray(args, cfg)
    endpoint = None
    if not args.simulate:
        from .api import resolve_endpoint

        endpoint = resolve_endpoint(cfg, args.base_url)
    return anyio.run(_run_async, args, cfg, endpoint)


def _run_ray(args: argparse.Namespace, cfg: Config) -> int:
    """The Ray engine: blocking Ray calls run in a thread so a --simulate simulator keeps serving."""
    from .errors import ConfigError
    from .ray import import_ray, run_ray

    import_ray()
    if args.input == "-" or args.output == "-":
        raise ConfigError("--engine ray reads a file and writes a directory (no '-')")
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    options = {"classify_only": args.classify_only, "output_format": args.output_format}

    def job(endpoint: Any) -> dict[str, Any]:
        return run_ray(
            args.input,
            args.output,
            cfg,
            endpoint,
            workers=args.workers,
            address=args.ray_address or os.environ.get("RAY_ADDRESS"),
            resume=args.resume,
            overwrite=args.overwrite,
            options=options,
        )

    async def threaded(endpoint: Any) -> dict[str, Any]:
        import anyio

        return await anyio.to_thread.run_sync(job, endpoint)

    from .render import print_summary

    snap = _model_job(argparse.Namespace(**{**vars(args), "json": args.summary}), cfg, threaded, print_summary)
    errors = snap["records"]["error"]
    return EXIT_OK if not errors else EXIT_ERRORS


async def _run_async(args: argparse.Namespace, cfg: Config, endpoint: Any) -> int:
    import anyio

    from .api import run_file
    from .control import RunControl
    from .jsonl import count_lines
    from .summary import Summary

    summary = Summary(currency=cfg.currency)
    bar = _progress(args, cfg)
    control = RunControl(grace_s=args.grace_s)
    started = time.monotonic()
    mode = "resume" if args.resume else "overwrite" if args.overwrite else "new"
    async with anyio.create_task_group() as tg:
        tg.start_soon(_watch_signals, control, args.quiet)
        if args.simulate:
            endpoint = await _start_simulator(tg, args, cfg)
        if bar is not None and args.input != "-":

            async def total() -> None:
                bar.set_total(await anyio.to_thread.run_sync(count_lines, args.input))

            tg.start_soon(total)
        with bar if bar is not None else nullcontext():
            await run_file(
                args.input,
                args.output,
                cfg,
                endpoint,
                mode=mode,
                retry_errors=args.retry_errors,
                max_errors=args.max_errors,
                control=control,
                classify_only=args.classify_only,
                output_format=args.output_format,
                cache_path=args.cache,
                cache_ttl_s=args.cache_ttl_s,
                summary=summary,
                on_record=bar.update if bar is not None else None,
            )
            if bar is not None:
                bar.update(summary, force=True)
        tg.cancel_scope.cancel()
    snap = summary.snapshot(cfg, wall_s=time.monotonic() - started)
    if args.summary:
        _write_json(args.summary, snap)
    if not args.quiet:
        from .render import print_summary

        print_summary(snap)
    if control.reason is not None:
        _resume_hint(args, control.reason, summary)
        return {"SIGINT": EXIT_SIGINT, "SIGTERM": EXIT_SIGTERM}.get(control.reason, EXIT_MAX_ERRORS)
    return EXIT_OK if summary.error == 0 else EXIT_ERRORS


def _resume_hint(args: argparse.Namespace, reason: str, summary: Any) -> None:
    why = f"after {args.max_errors} unusable input lines (--max-errors)" if reason == "max_errors" else f"by {reason}"
    print(f"cascade-batch: stopped {why}; {summary.total} records are in {args.output}.", file=sys.stderr)
    if args.output != "-" and args.input != "-":
        print(
            f"  resume with: cascade-batch run {args.input} -o {args.output} --resume [same options]", file=sys.stderr
        )


async def _watch_signals(control: RunControl, quiet: bool) -> None:
    """First SIGINT/SIGTERM: stop gracefully; a second one: stop at once."""
    import anyio

    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for sig in signals:
            first = control.reason is None
            control.stop(signal.Signals(sig).name)
            if first and not quiet:
                print(
                    f"\ncascade-batch: {signal.Signals(sig).name}: no new input is read; finishing the records in "
                    f"flight (up to {control.grace_s:g} s). Press Ctrl-C again to stop at once.",
                    file=sys.stderr,
                )


def _progress(args: argparse.Namespace, cfg: Config) -> Any:
    if args.quiet or not sys.stderr.isatty():
        return None
    from .progress import ProgressBar

    return ProgressBar(cfg.tier_names, cfg.currency)


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(f"cascade-batch: {text}", file=sys.stderr)


def _project(args: argparse.Namespace) -> int:
    from . import config as config_mod
    from .errors import ConfigError

    cfg = _apply_sim_options(config_mod.load(args.config), args, "sim_")
    if not os.path.isfile(args.input):
        raise ConfigError(f"input file not found: {args.input}")
    if args.sample < 0 or args.answer_sample < 1 or args.scale <= 0:
        raise ConfigError("--sample must be >= 0, --answer-sample >= 1 and --scale > 0")
    from .project import project

    async def job(endpoint: Any) -> dict[str, Any]:
        return await project(
            args.input,
            cfg,
            endpoint,
            sample=args.sample,
            answer_sample=args.answer_sample,
            seed=args.seed,
            scale=args.scale,
        )

    from .render import print_projection

    _model_job(args, cfg, job, print_projection)
    return EXIT_OK


def _audit(args: argparse.Namespace) -> int:
    from . import config as config_mod
    from .errors import ConfigError

    cfg = _apply_sim_options(config_mod.load(args.config), args, "sim_")
    for path in (args.output, args.input):
        if not os.path.isfile(path):
            raise ConfigError(f"file not found: {path}")
    if args.sample < 1:
        raise ConfigError("--sample must be at least 1")
    if args.resume and args.overwrite:
        raise ConfigError("--resume and --overwrite contradict each other")
    from .audit import audit

    mode = "resume" if args.resume else "overwrite" if args.overwrite else "new"

    async def job(endpoint: Any) -> dict[str, Any]:
        return await audit(
            args.output,
            args.input,
            cfg,
            endpoint,
            sample=args.sample,
            judge_model=args.judge_model,
            seed=args.seed,
            audit_path=args.audit_file,
            mode=mode,
        )

    from .render import print_audit

    _model_job(args, cfg, job, print_audit)
    return EXIT_OK


def _model_job(args: argparse.Namespace, cfg: Config, job: Any, show: Any) -> dict[str, Any]:
    """Run `job(endpoint)` against the configured endpoint or the simulator; write --json; show the result."""
    import anyio

    endpoint = None
    if not args.simulate:
        from .api import resolve_endpoint

        endpoint = resolve_endpoint(cfg, args.base_url)

    async def main() -> dict[str, Any]:
        async with anyio.create_task_group() as tg:
            ep = await _start_simulator(tg, args, cfg) if args.simulate else endpoint
            result: dict[str, Any] = await job(ep)
            tg.cancel_scope.cancel()
        return result

    result = anyio.run(main)
    if args.json:
        _write_json(args.json, result)
    if not args.quiet:
        show(result)
    return result


async def _start_simulator(tg: Any, args: argparse.Namespace, cfg: Config) -> Any:
    """Start the built-in simulator in `tg` (the caller cancels it) and return its endpoint."""
    from .client import Endpoint
    from .sim import Simulator, serve

    url = await tg.start(serve, Simulator(cfg))
    _say(args, f"using the built-in simulator at {url} (simulated answers, not a real model)")
    return Endpoint(url, "simulated-key")


def _write_json(target: str, data: Any) -> None:
    import orjson

    raw = orjson.dumps(data, option=orjson.OPT_INDENT_2)
    if target == "-":
        sys.stdout.buffer.write(raw + b"\n")
        sys.stdout.flush()
    else:
        with open(target, "wb") as fh:
            fh.write(raw)


def _report(args: argparse.Namespace) -> int:
    from . import config as config_mod
    from .errors import ConfigError
    from .report import read_output

    if not os.path.isfile(args.output):
        raise ConfigError(f"output file not found: {args.output}")
    cfg = config_mod.load(args.config)
    rep = read_output(args.output, cfg)
    snap = rep.summary.snapshot(cfg)
    if rep.unreadable:
        snap["unreadable_lines"] = rep.unreadable[:100]
        print(
            f"cascade-batch: skipped {len(rep.unreadable)} unreadable line(s) of {args.output} "
            f"(first: {rep.unreadable[0]}; a torn last line after a crash is normal)",
            file=sys.stderr,
        )
    if args.json:
        _write_json(args.json, snap)
    if args.html:
        from .html import render

        page = render(
            rep.summary, snap, title=f"cascade_batch report: {os.path.basename(args.output)}", source=args.output
        )
        with open(args.html, "w", encoding="utf-8") as fh:
            fh.write(page)
    if not args.quiet:
        from .render import print_summary

        print_summary(snap, title=f"cascade_batch report: {args.output}")
    return EXIT_OK if rep.summary.error == 0 else EXIT_ERRORS


def _simulate(args: argparse.Namespace) -> int:
    import anyio

    from . import config as config_mod
    from .sim import Simulator, serve

    cfg = _apply_sim_options(config_mod.load(args.config), args, "")

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            url = await tg.start(serve, Simulator(cfg), args.host, args.port)
            print(f"cascade-batch simulator (simulated models, not real ones) listening on {url}", file=sys.stderr)
            print(f"  models: {', '.join(cfg.models)}", file=sys.stderr)
            print(
                f"  try: OPENAI_API_KEY=x cascade-batch run samples/queries.jsonl -o out.jsonl --base-url {url}",
                file=sys.stderr,
            )

    try:
        anyio.run(main)
    except KeyboardInterrupt:
        return EXIT_SIGINT
    return EXIT_OK
