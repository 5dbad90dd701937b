"""The project's own tooling: the GPU check script and its report, and the reference libraries the tests use."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _gpu_report():
    spec = importlib.util.spec_from_file_location("gpu_report", REPO / "benchmarks" / "gpu_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", ["gpu_check.sh", "gpu_wheels.sh"])
def test_the_gpu_scripts_are_valid_bash(script):
    result = subprocess.run(["bash", "-n", str(REPO / "benchmarks" / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_gpu_check_refuses_a_bad_call_in_one_line(tmp_path):
    result = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.startswith("usage:") and len(result.stderr.splitlines()) == 1
    result = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), str(tmp_path), "--bogus"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.startswith("usage:")


def _sample_parts(folder: Path) -> Path:
    """A parts file as gpu_check.sh writes it, with results of the shapes the benchmarks write: every kind of
    outcome (ok, a failing test, a timeout, a skip, a result that cannot be read)."""
    (folder / "env.json").write_text(json.dumps({"device_name": "NVIDIA H200", "cuda_version": "13.0", "packages": {
        "torch": "2.11.0", "pydantic": "2.14.4", "diffusers": "0.42.1"}}))
    (folder / "train.json").write_text(json.dumps({"measurements": [
        {"batch": 64, "variant": "eager (pytorch/examples)", "images_per_s": 5000.0, "ratio_vs_eager": 1.0},
        {"batch": 64, "variant": "genzoo (auto, bf16)", "images_per_s": 26000.0, "ratio_vs_eager": 5.2},
        {"batch": 64, "variant": "genzoo (no, fp32)", "images_per_s": 9000.0, "ratio_vs_eager": 1.8},
        {"batch": 512, "variant": "eager (pytorch/examples)", "images_per_s": 25000.0, "ratio_vs_eager": 1.0},
        {"batch": 512, "variant": "genzoo (auto, bf16)", "images_per_s": 61000.0, "ratio_vs_eager": 2.44},
    ]}))
    (folder / "diffusion.json").write_text(json.dumps({"results": {
        "genzoo (bf16 + channels_last + fused AdamW)": {"train_images_per_s": 3000.0, "ddim50_samples_per_s": 400.0},
        "diffusers (fp32/tf32)": {"train_images_per_s": 1500.0, "ddim50_samples_per_s": 100.0},
        "diffusers (bf16 + channels_last + fused AdamW)": {"train_images_per_s": 2000.0, "ddim50_samples_per_s": 125.0},
    }}))
    (folder / "eval.json").write_text(json.dumps({"n": 50000, "fid_relative_difference": 1.7e-6, "timings_s": {
        "features": 20.0, "fid+kid+pr+dc": 5.0, "genzoo total": 25.0, "torchmetrics FID only": 22.5}}))
    (folder / "tests.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="2">'
        '<testcase classname="tests.test_reliability" name="test_bf16[wgan-gp-gan]" time="120.5">'
        '<failure message="AssertionError: a non-finite loss">trace</failure></testcase>'
        '<testcase classname="tests.test_reliability" name="test_bf16[ddpm-ddpm]" time="40.2"/>'
        "</testsuite></testsuites>")
    (folder / "compile.log").write_text("compiling\n\rstep 1/30\rstep 2/30\n\n")
    (folder / "broken.json").write_text("{not json")
    rows = [
        ("install", "install wheels", "0", "100.0", "104.0", "30", "", str(folder / "missing.log"), ""),
        ("environment", "environment", "0", "104.0", "107.0", "30", str(folder / "env.json"), "", ""),
        ("train_speed", "DCGAN train speed", "0", "107.0", "147.0", "75", str(folder / "train.json"), "", ""),
        ("diffusion_speed", "diffusion vs diffusers", "0", "147.0", "197.0", "105", str(folder / "diffusion.json"), "", ""),
        ("eval_speed", "eval speed", "0", "197.0", "257.0", "110", str(folder / "eval.json"), "", ""),
        ("gpu_tests", "gpu tests (pytest -m gpu)", "1", "257.0", "420.0", "170", str(folder / "tests.xml"), "", ""),
        ("diffusion_compile", "diffusion, torch.compile", "124", "420.0", "470.0", "50", str(folder / "none.json"),
         str(folder / "compile.log"), ""),
        ("extra", "a part with no time left", "", "", "", "5", "", "", "not run: 470 s of the 480 s budget spent"),
        ("broken", "a broken result", "0", "470.0", "471.0", "5", str(folder / "broken.json"), "", ""),
    ]
    parts = folder / "parts.tsv"
    parts.write_text("".join("\t".join(row) + "\n" for row in rows))
    return parts


def test_gpu_report_aggregates_the_parts_into_one_json_and_one_table(tmp_path):
    gpu_report = _gpu_report()
    summary = gpu_report.report(gpu_report.read_parts(_sample_parts(tmp_path)), budget=480, dry_run=False)
    assert gpu_report.table(summary).splitlines() == [
        "genzoo GPU check: NVIDIA H200; 371 s of a 480 s budget; SOME PARTS DID NOT PASS",
        "part                        status    seconds  limit  result",
        "install wheels              ok            4.0     30",
        "environment                 ok            3.0     30  NVIDIA H200 (CUDA 13.0); torch 2.11.0, pydantic 2.14.4, "
        "diffusers 0.42.1",
        "DCGAN train speed           ok           40.0     75  b64: 26,000 img/s = 5.20x eager; b512: 61,000 img/s = "
        "2.44x eager",
        "diffusion vs diffusers      ok           50.0    105  train 3,000.0 img/s = 2.00x fp32, 1.50x bf16; DDIM-50 "
        "400.0 samples/s = 4.00x fp32, 3.20x bf16 diffusers",
        "eval speed                  ok           60.0    110  50,000 vs 50,000: features 20.0 s (5,000 img/s), + 4 "
        "metrics 25.0 s; torchmetrics FID 22.5 s; FID diff 2e-06",
        "gpu tests (pytest -m gpu)   failed      163.0    170  exit 1: 1 passed, 1 failed (test_bf16[wgan-gp-gan]); "
        "longest 120 s",
        "diffusion, torch.compile    timeout      50.0     50  after 50 s (limit 50 s): step 2/30",
        "a part with no time left    skipped       0.0      5  not run: 470 s of the 480 s budget spent",
        "a broken result             failed        1.0      5  exit 0 but no readable result in broken.json",
    ]
    by_key = {part["key"]: part for part in summary["parts"]}
    assert summary["all_ok"] is False and summary["device_name"] == "NVIDIA H200" and summary["elapsed_s"] == 371.0
    assert by_key["gpu_tests"]["result"]["tests"][0] == {"test": "tests.test_reliability::test_bf16[wgan-gp-gan]",
                                                         "outcome": "failed", "seconds": 120.5,
                                                         "message": "AssertionError: a non-finite loss"}
    assert by_key["diffusion_compile"]["log_tail"] == ["compiling", "step 1/30", "step 2/30"]
    assert by_key["diffusion_compile"]["rc"] == 124 and by_key["extra"]["rc"] is None
    assert by_key["train_speed"]["result"]["measurements"][1]["images_per_s"] == 26000.0
    json.dumps(summary)  # all of it is plain data

    out = tmp_path / "gpu_check.json"
    ok_parts = tmp_path / "ok.tsv"
    ok_parts.write_text("".join(line + "\n" for line in (tmp_path / "parts.tsv").read_text().splitlines()[:5]))
    assert gpu_report.main(["report", str(ok_parts), str(out), "--quiet"]) == 0  # all ok: exit 0
    assert json.loads(out.read_text())["all_ok"] is True
    assert gpu_report.main(["report", str(tmp_path / "parts.tsv"), str(out), "--quiet"]) == 1

    # gpu tests that all skipped checked nothing: a failure on the GPU machine, fine in a CPU dry run
    (tmp_path / "tests.xml").write_text('<testsuites><testsuite><testcase classname="t" name="a" time="0.1">'
                                        '<skipped message="needs a CUDA GPU"/></testcase></testsuite></testsuites>')
    for dry_run, status in ((False, "failed"), (True, "ok")):
        record = gpu_report.part_record(gpu_report.read_parts(tmp_path / "parts.tsv")[5] | {"rc": "0"}, dry_run)
        assert record["status"] == status and record["summary"].endswith("1 skipped; longest 0 s")


def test_the_reference_libraries_the_tests_compare_against_are_installed():
    """A test that skips for a missing library checks nothing: every `importorskip` in the tests names a library of
    the `test` extra (or a dependency), so in `make test` each one imports and its test runs."""
    names = sorted({name for path in (REPO / "tests").glob("*.py")
                    for name in re.findall(r"""importorskip\(\s*["']([\w.]+)["']""", path.read_text())})
    assert "diffusers" in names  # the step-for-step agreement of the samplers
    assert {"pythia8mc", "fastjet"} <= set(names)  # the jets datasets (the physics extra, in the test extra too)
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as error:
            missing.append(f"{name} ({error})")
    assert not missing, f"install the test extra (pip install -e '.[test]'): {missing}"
