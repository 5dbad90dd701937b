"""One self-contained HTML page per run: loss curves, what the model does (samples, reconstructions,
interpolations, traversals, swaps), sample grids over training, metrics, the config.

Images are embedded as base64 PNG, so the page can be mailed or attached as it is.
"""

from __future__ import annotations

import base64
import bisect
import html
import json
from pathlib import Path

from genzoo.report.plots import plot_losses
from genzoo.io import atomic_write_text
from genzoo.train.checkpoint import RunFolder
from genzoo.train.log import read_log

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
figure{display:inline-block;margin:.4em;text-align:center}figure img{image-rendering:pixelated;width:240px}
figcaption{font-size:.85em;color:#555}pre{background:#f6f6f6;padding:1em;overflow:auto}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.3em .6em;text-align:right}"""


def _text(name: str) -> str:
    """A file name as UTF-8 text: bytes that are not UTF-8 (surrogate escapes) shown as \\xNN."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _image(path: Path, width: str = "") -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    style = f' style="width:{width}"' if width else ""
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(_text(path.name))}"{style}>'


def _figure(path: Path, width: str = "") -> str:
    """A picture, or a text file (a text model's samples) as preformatted text."""
    if path.suffix == ".txt":
        return f"<pre style='text-align:left;white-space:pre-wrap'>{html.escape(path.read_text(encoding='utf-8', errors='replace'))}</pre>"
    return _image(path, width)


def write_report(run: RunFolder, max_grids: int = 8, pictures: bool = True) -> Path:
    config = run.read_config()
    if "procedure" in config:
        return _procedure_report(run, config)
    figures = _pictures(run) if pictures and run.weights.exists() else []
    records = read_log(run.log)
    losses = plot_losses(run)
    grids = sorted(run.samples.glob("step-*.png")) or sorted(run.samples.glob("step-*.txt"))  # images, or text
    stages = _stages(grids, records)
    if stages:  # a growing model: the last grid of each resolution
        grids = list(stages)
    elif len(grids) > max_grids:  # evenly spaced over training, always with the last
        picks = {round(i * (len(grids) - 1) / (max_grids - 1)) for i in range(max_grids)}
        grids = [g for i, g in enumerate(grids) if i in picks]
    last = records[-1] if records else {}
    summary = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{v:.4g}</td></tr>" if isinstance(v, float)
        else f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in last.items() if k != "time"
    )
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>genzoo: {html.escape(_text(run.path.name))}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>genzoo run <code>{html.escape(_text(str(run.path)))}</code></h1>",
        f"<p>family <b>{html.escape(config.get('family', '?'))}</b>, data <b>{html.escape(str(config.get('data', {}).get('name')))}</b>, "
        f"{len(records)} log records.</p>",
        *([f"<p><b>No checkpoint yet</b>: the first is written at step {run.first_checkpoint_step()} (or when "
           "training stops).</p>"] if run.saved_nothing() else []),
        "<h2>Latest samples</h2>",
        _figure(grids[-1], "420px") if grids else "<p>No sample grid yet.</p>",
        "<h2>Losses</h2>",
        _image(losses, "100%") if losses else "<p>Nothing logged yet.</p>",
        "<h2>Last log record</h2>",
        f"<table>{summary}</table>",
        "<h2>Metrics</h2>",
        _metrics_table(run.path / "metrics.jsonl"),
        *(["<h2>What the model does</h2>",
           "".join(f"<figure>{_figure(path, '320px')}<figcaption>{html.escape(caption)}</figcaption></figure>"
                   for caption, path in figures)] if figures else []),
        "<h2>Samples per stage (the last grid at each resolution)</h2>" if stages else "<h2>Samples over training</h2>",
        "".join(f"<figure>{_figure(g)}<figcaption>{stages.get(g, g.stem)}</figcaption></figure>" for g in grids),
        "<h2>Resolved config</h2>",
        f"<pre>{html.escape(json.dumps(config, indent=2))}</pre>",
        "</body></html>",
    ]
    atomic_write_text(run.report, "\n".join(parts))
    return run.report


def _stages(grids: list[Path], records: list[dict]) -> dict[Path, str]:
    """For a model whose schedule logs a `resolution` (a growing GAN): the last sample grid at each
    resolution -> its caption; empty otherwise. A grid's resolution is that of the last log record at or
    before its step."""
    logged = [(r["step"], r["schedule/resolution"]) for r in records if "schedule/resolution" in r]
    if not logged:
        return {}
    steps = [step for step, _ in logged]
    last: dict[float, tuple[Path, int]] = {}
    for grid in grids:
        step = int(grid.stem.split("-")[-1])
        at = bisect.bisect_right(steps, step)  # records at or before the grid's step
        if at:
            last[logged[at - 1][1]] = (grid, step)
    return {grid: f"{resolution:g} x {resolution:g}, step {step}" for resolution, (grid, step) in sorted(last.items())}


def _pictures(run: RunFolder) -> list[tuple[str, Path]]:
    """The model's pictures (genzoo.report.pictures); a model or dataset that cannot be loaded here
    (e.g. data moved since training) leaves the section out rather than failing the report."""
    from genzoo.errors import GenzooError
    from genzoo.report.pictures import write_pictures

    try:
        return write_pictures(run)
    except GenzooError:
        return []


def _metrics_table(path: Path) -> str:
    """The latest evaluation's scores, each with the protocol it was computed under, one column per part of
    it (feature network, image counts, reference, EMA, sampler, seed); columns no score fills are left out."""
    from genzoo.report.protocol import COLUMNS, protocol_columns

    records = read_log(path)
    if not records:
        return "<p>No evaluation yet: <code>genzoo eval RUN</code>, or train with <code>train.eval_every=N</code>.</p>"
    scores = records[-1]["scores"]
    columns = [protocol_columns(score.get("protocol") or {}) for score in scores]
    shown = [name for name in COLUMNS if any(column[name] for column in columns)]
    left = " style='text-align:left'"
    rows = []
    for score, column in zip(scores, columns):
        std = "" if score.get("std") is None else f" ± {score['std']:.4g}"
        cells = "".join(f"<td{left}>{html.escape(column[name])}</td>" for name in shown)
        rows.append(f"<tr><th>{html.escape(score['name'])}</th><td>{score['value']:.4g}{std}</td>{cells}</tr>")
    history = ""
    if len(records) > 1:
        history = f"<p>{len(records)} evaluations in metrics.jsonl; the latest at step {records[-1].get('step')}.</p>"
    header = "".join(f"<th>{html.escape(name)}</th>" for name in ("metric", "value", *shown))
    return f"{history}<table><tr>{header}</tr>{''.join(rows)}</table>"


def _procedure_report(run: RunFolder, config: dict) -> Path:
    """The page of a procedure's run: its result, its pictures, how its loss went, its config."""
    losses = plot_losses(run)
    result_path = run.path / "result.json"
    result = json.loads(result_path.read_text(encoding="utf-8")) if result_path.is_file() else {}
    index_path = run.path / "pictures" / "index.json"
    pictures = json.loads(index_path.read_text(encoding="utf-8")) if index_path.is_file() else []
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{v:.4g}</td></tr>" if isinstance(v, float)
                   else f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in result.items())
    figures = "".join(f"<figure>{_image(run.path / 'pictures' / p['file'], '480px')}<figcaption>{html.escape(p['caption'])}"
                      "</figcaption></figure>" for p in pictures if (run.path / "pictures" / p["file"]).is_file())
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>genzoo: {html.escape(_text(run.path.name))}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>genzoo {html.escape(str(config['procedure']))} <code>{html.escape(_text(str(run.path)))}</code></h1>",
        "<h2>Result</h2>", f"<table>{rows}</table>" if rows else "<p>No result: the procedure did not finish.</p>",
        "<h2>Pictures</h2>", figures or "<p>No pictures.</p>",
        "<h2>Losses</h2>", _image(losses, "100%") if losses else "<p>Nothing logged.</p>",
        "<h2>Config</h2>", f"<pre>{html.escape(json.dumps(config, indent=2))}</pre>",
        "</body></html>",
    ]
    atomic_write_text(run.report, "\n".join(parts))
    return run.report
