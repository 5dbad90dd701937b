"""One JSON and one table from the parts of `benchmarks/gpu_check.sh`.

gpu_check.sh runs each part (the `gpu` tests, the training, diffusion and evaluation benchmarks) under
its own time limit and appends one tab-separated line per part to a parts file:

    key  title  rc  started  ended  limit_s  result_file  log_file  note

(rc empty: the part was skipped, `note` says why). `report` reads those lines, each part's result
(the benchmark's JSON, pytest's JUnit XML, the environment probe's JSON) and the end of its log,
writes one JSON with all of it and prints a short table. It uses the standard library only, so that
it runs, and is tested, anywhere. `env` is the environment probe (torch, CUDA device, package versions).

    python benchmarks/gpu_report.py report PARTS OUT_JSON [--budget S] [--dry-run] [--quiet]
    python benchmarks/gpu_report.py env OUT_JSON [--require-cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

FIELDS = ("key", "title", "rc", "started", "ended", "limit_s", "result_file", "log_file", "note")
TAIL_LINES = 40  # lines of a part's log kept in the JSON when it did not succeed
TIMEOUT_CODES = (124, 137)  # GNU timeout: the limit was reached (137: killed after the grace period)


# ----------------------------------------------------------------------------- reading the parts


def read_parts(path: Path) -> list[dict]:
    parts = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            values = line.split("\t")
            parts.append(dict(zip(FIELDS, values + [""] * (len(FIELDS) - len(values)))))
    return parts


def status_of(rc: str) -> str:
    if rc == "":
        return "skipped"
    code = int(rc)
    return "ok" if code == 0 else "timeout" if code in TIMEOUT_CODES else "failed"


def tail(path: str, lines: int = TAIL_LINES) -> list[str]:
    if not path or not Path(path).is_file():
        return []
    text = Path(path).read_text(errors="replace").replace("\r", "\n")  # progress bars redraw with \r
    return [line for line in text.splitlines() if line.strip()][-lines:]


def load_result(path: str) -> dict | None:
    """The part's result file: JSON, or pytest's JUnit XML turned into a dict; None when absent or unreadable."""
    if not path or not Path(path).is_file():
        return None
    try:
        return junit(Path(path)) if path.endswith(".xml") else json.loads(Path(path).read_text())
    except (ValueError, ElementTree.ParseError):
        return None


def junit(path: Path) -> dict:
    """pytest's JUnit XML as {"tests": [{test, outcome (passed, failed, error, skipped), seconds, message}]}."""
    outcomes = {"failure": "failed", "error": "error", "skipped": "skipped"}
    tests = []
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        marks = [child for child in case if child.tag in outcomes]
        tests.append({"test": f"{case.get('classname', '')}::{case.get('name', '')}",
                      "outcome": outcomes[marks[0].tag] if marks else "passed",
                      "seconds": float(case.get("time", 0) or 0),
                      "message": marks[0].get("message", "")[:300] if marks else ""})
    return {"tests": tests}


# ----------------------------------------------------------------------------- one line per part


def summarise_environment(result: dict) -> str:
    device = result.get("device_name") or "no CUDA device"
    cuda = f" (CUDA {result['cuda_version']})" if result.get("device_name") else ""
    packages = result.get("packages", {})
    return f"{device}{cuda}; " + ", ".join(f"{name} {packages.get(name, '?')}" for name in ("torch", "pydantic", "diffusers"))


def summarise_train_speed(result: dict) -> str:
    rows = result.get("measurements", [])
    pieces = []
    for batch in sorted({row["batch"] for row in rows}):
        ours = [row for row in rows if row["batch"] == batch and row["variant"].startswith("genzoo (auto")]
        if ours:
            pieces.append(f"b{batch}: {ours[0]['images_per_s']:,.0f} img/s = {ours[0]['ratio_vs_eager']:.2f}x eager")
    return "; ".join(pieces)


def summarise_diffusion(result: dict) -> str:
    """genzoo's rates and their ratio to each diffusers variant, named by its precision (fp32: plain, bf16: tuned)."""
    results = result.get("results", {})
    ours = next(row for name, row in results.items() if name.startswith("genzoo"))
    others = [("bf16" if "bf16" in name else "fp32", row) for name, row in results.items() if name.startswith("diffusers")]
    pieces = []
    for what, key, unit in (("train", "train_images_per_s", "img/s"), ("DDIM-50", "ddim50_samples_per_s", "samples/s")):
        ratios = ", ".join(f"{ours[key] / row[key]:.2f}x {label}" for label, row in others)
        pieces.append(f"{what} {ours[key]:,.1f} {unit} = {ratios}")
    return "; ".join(pieces) + " diffusers"


def summarise_eval_speed(result: dict) -> str:
    timings, n = result["timings_s"], result["n"]
    return (f"{n:,} vs {n:,}: features {timings['features']:.1f} s ({2 * n / timings['features']:,.0f} img/s), "
            f"+ 4 metrics {timings['genzoo total']:.1f} s; torchmetrics FID {timings['torchmetrics FID only']:.1f} s; "
            f"FID diff {result['fid_relative_difference']:.0e}")


def summarise_tests(result: dict) -> str:
    tests = result["tests"]
    counts = {outcome: sum(t["outcome"] == outcome for t in tests) for outcome in ("passed", "failed", "error", "skipped")}
    text = ", ".join(f"{count} {outcome}" for outcome, count in counts.items() if count) or "no tests"
    bad = [t["test"].rsplit("::", 1)[-1] for t in tests if t["outcome"] in ("failed", "error")]
    return text + (f" ({', '.join(bad)})" if bad else "") + f"; longest {max((t['seconds'] for t in tests), default=0):.0f} s"


SUMMARIES = {"environment": summarise_environment, "train_speed": summarise_train_speed,
             "diffusion_speed": summarise_diffusion, "diffusion_compile": summarise_diffusion,
             "eval_speed": summarise_eval_speed, "gpu_tests": summarise_tests}


def part_record(part: dict, dry_run: bool = False) -> dict:
    status = status_of(part["rc"])
    seconds = float(part["ended"]) - float(part["started"]) if part["started"] and part["ended"] else 0.0
    result = load_result(part["result_file"])
    lines = tail(part["log_file"])
    if status == "skipped":
        summary = part["note"]
    elif result is not None and part["key"] in SUMMARIES:
        try:
            summary = SUMMARIES[part["key"]](result)
        except (KeyError, TypeError, ValueError, ZeroDivisionError, StopIteration) as error:  # a result of an unexpected shape
            summary = f"result not understood ({type(error).__name__}: {error})"
    else:
        summary = part["note"] or ""
    if status in ("failed", "timeout"):
        reason = f"after {seconds:.0f} s (limit {part['limit_s']} s)" if status == "timeout" else f"exit {part['rc']}"
        last = lines[-1] if lines else "no output"
        summary = f"{reason}: {summary}" if summary and not lines else f"{reason}: {last}" + (f" [{summary}]" if summary else "")
    elif status == "ok" and result is None and part["result_file"]:
        status, summary = "failed", f"exit 0 but no readable result in {Path(part['result_file']).name}"
    elif status == "ok" and part["key"] == "gpu_tests" and not dry_run and not any(
            test["outcome"] == "passed" for test in result["tests"]):  # skipped everywhere: nothing was checked
        status, summary = "failed", f"no gpu test passed: {summary}"
    return {"key": part["key"], "title": part["title"], "status": status, "rc": int(part["rc"]) if part["rc"] else None,
            "seconds": round(seconds, 1), "limit_s": int(part["limit_s"] or 0), "summary": summary,
            "result_file": Path(part["result_file"]).name if part["result_file"] else None, "result": result,
            "log_tail": lines if status != "ok" else lines[-5:]}


# ----------------------------------------------------------------------------- the report


def report(parts: list[dict], budget: int, dry_run: bool) -> dict:
    records = [part_record(part, dry_run) for part in parts]
    environment = next((r["result"] for r in records if r["key"] == "environment" and r["result"]), {})
    starts = [float(p["started"]) for p in parts if p["started"]]
    ends = [float(p["ended"]) for p in parts if p["ended"]]
    return {"check": "benchmarks/gpu_check.sh", "dry_run": dry_run, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "device_name": environment.get("device_name"), "budget_s": budget,
            "elapsed_s": round(max(ends) - min(starts), 1) if starts and ends else 0.0,
            "all_ok": all(r["status"] in ("ok", "skipped") for r in records) and any(r["status"] == "ok" for r in records),
            "parts": records}


def table(summary: dict) -> str:
    mode = "CPU dry run (tiny sizes; figures mean nothing)" if summary["dry_run"] else (summary["device_name"] or "no CUDA device")
    lines = [f"genzoo GPU check: {mode}; {summary['elapsed_s']:.0f} s of a {summary['budget_s']} s budget; "
             f"{'all parts ok' if summary['all_ok'] else 'SOME PARTS DID NOT PASS'}",
             f"{'part':<28}{'status':<9}{'seconds':>8}{'limit':>7}  result"]
    for record in summary["parts"]:
        text = record["summary"].replace("\n", " ")
        lines.append(f"{record['title']:<28}{record['status']:<9}{record['seconds']:>8.1f}{record['limit_s']:>7}  {text}".rstrip())
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the environment probe


def environment(path: Path, require_cuda: bool) -> int:
    """Versions and the CUDA device, written as JSON. Exit 1 when no CUDA device is visible but one is required;
    an import error (genzoo, pydantic) ends it with a traceback."""
    import importlib.metadata
    import platform

    import torch

    import genzoo  # noqa: F401  (pydantic and the rest of genzoo's needs import here)

    packages = {}
    for name in ("torch", "torchvision", "pydantic", "diffusers", "accelerate", "torchmetrics"):
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = "missing"
    cuda = torch.cuda.is_available()
    info = {"python": platform.python_version(), "packages": packages, "genzoo_from": str(Path(genzoo.__file__).parent),
            "cuda_available": cuda, "cuda_version": torch.version.cuda, "cpu_count": os.cpu_count(),
            "device_name": torch.cuda.get_device_name() if cuda else None,
            "device_capability": list(torch.cuda.get_device_capability()) if cuda else None,
            "device_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda else None,
            "bf16_supported": torch.cuda.is_bf16_supported() if cuda else None}
    Path(path).write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info))
    if require_cuda and not cuda:
        print("no CUDA device is visible to torch", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    r = commands.add_parser("report", help="aggregate the parts file into one JSON and print the table")
    r.add_argument("parts", type=Path)
    r.add_argument("out", type=Path)
    r.add_argument("--budget", type=int, default=480)
    r.add_argument("--dry-run", action="store_true")
    r.add_argument("--quiet", action="store_true", help="write the JSON only (between parts)")
    e = commands.add_parser("env", help="probe the environment; write JSON")
    e.add_argument("out", type=Path)
    e.add_argument("--require-cuda", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "env":
        return environment(args.out, args.require_cuda)
    summary = report(read_parts(args.parts), args.budget, args.dry_run)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    if not args.quiet:
        print(table(summary))
        print(f"wrote {args.out}")
    return 0 if summary["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
