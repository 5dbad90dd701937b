"""Start-up time of the `genzoo` command, hyperfine-style: each command run as a fresh process, repeatedly.

What is measured: the wall time from starting a process to its exit, `time.perf_counter()` around
`subprocess.run`, after one untimed warm-up run of each command (the OS file cache, genzoo's catalogue
cache), and the CPU time the process used (user + system, from `getrusage`), which other load on a
shared machine disturbs far less than the wall time: on an idle machine a start-up's wall time is about
its CPU time (it runs on one core). The commands take turns, run by run, so that load falls on all of
them alike; min and median over the runs are reported, min being the least disturbed.

Commands:
- `python -c "pass"`: the interpreter alone;
- `python -c "import torch"`: the baseline any command that touches a model pays;
- `genzoo --help` and `genzoo list` (targets: <= 0.5 s on the project's 2-core machine): no torch;
  `list` reads the catalogue cache (`genzoo.catalogue`), written by the warm-up run;
- `genzoo list` with an empty cache (a fresh cache folder each time, 3 runs): the first `list` ever;
- `genzoo sample RUN -n 64` of a small run (the demo's DCGAN, 32 wide; target <= 3 s): torch,
  the model, one batch of samples and the PNG grid.

Run: python benchmarks/startup.py [--runs N] [--json PATH]
The table is printed and a JSON file is written (default benchmarks/results/startup.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
TARGETS = {"genzoo --help": 0.5, "genzoo list": 0.5, "genzoo sample (small run)": 3.0}


def small_run(folder: Path) -> Path:
    """The demo's DCGAN (widths 32) trained 2 steps on the embedded sample: a small run to sample from."""
    out = folder / "run"
    command = [sys.executable, "-m", "genzoo", "train", "demo", "train.steps=2", "train.batch_size=16",
               "train.eval_every=null", "train.sample_every=1000", "--out", str(out), "--no-progress"]
    subprocess.run(command, check=True, capture_output=True, env=environment(folder / "cache"))
    return out


def environment(cache: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "GENZOO_CACHE": str(cache)}


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system of the process and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, env=env)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr.decode()[-2000:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path, default=RESULTS / "startup.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        env = environment(folder / "cache")
        run = small_run(folder)
        python, genzoo = [sys.executable], [sys.executable, "-m", "genzoo"]
        commands = {
            "python -c pass": (python + ["-c", "pass"], env),
            "python -c 'import torch'": (python + ["-c", "import torch"], env),
            "genzoo --help": (genzoo + ["--help"], env),
            "genzoo list": (genzoo + ["list"], env),
            "genzoo sample (small run)": (genzoo + ["sample", str(run), "-n", "64", "-o", str(folder / "grid.png")], env),
        }
        for command, command_env in commands.values():  # warm-up: file cache, catalogue cache
            timed(command, command_env)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        times["genzoo list (empty cache)"] = []
        for index in range(args.runs):
            for name, (command, command_env) in commands.items():
                times[name].append(timed(command, command_env))
            if index < 3:  # seconds each (it imports every family): a few runs
                times["genzoo list (empty cache)"].append(timed(genzoo + ["list"], environment(folder / f"fresh-{index}")))

    rows = []
    for name, values in times.items():
        wall, cpu = [v[0] for v in values], [v[1] for v in values]
        rows.append({"command": name, "runs": len(values), "min_s": min(wall), "median_s": statistics.median(wall),
                     "mean_s": statistics.fmean(wall), "cpu_min_s": min(cpu), "cpu_median_s": statistics.median(cpu),
                     "target_s": TARGETS.get(name), "wall_s": wall, "cpu_s": cpu})
    report = {"benchmark": "startup", "python": platform.python_version(), "machine": platform.machine(),
              "cpus": os.cpu_count(), "load_average": os.getloadavg(), "time": time.strftime("%Y-%m-%d %H:%M"),
              "results": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")

    from rich.console import Console
    from rich.table import Table

    table = Table("command", "runs", "wall min s", "wall median s", "CPU min s", "CPU median s", "target (wall min)",
                  title="start-up time (fresh processes)")
    for row in rows:
        target = "" if row["target_s"] is None else f"<= {row['target_s']:g} s " + (
            "(met)" if row["min_s"] <= row["target_s"] else "(missed)")
        table.add_row(row["command"], str(row["runs"]), f"{row['min_s']:.2f}", f"{row['median_s']:.2f}",
                      f"{row['cpu_min_s']:.2f}", f"{row['cpu_median_s']:.2f}", target)
    Console().print(table)
    print(f"load average during the run: {', '.join(f'{v:.1f}' for v in report['load_average'])}; wrote {args.json}")


if __name__ == "__main__":
    main()
