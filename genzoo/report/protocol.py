"""A score's protocol (the dict every `Score` carries) in words: the columns the report's metrics table
shows and the line `genzoo eval` prints under its table. Plain Python: nothing heavy is imported."""

from __future__ import annotations

from typing import Any

COLUMNS = ("extractor", "images", "reference", "EMA", "sampler", "seed", "other")
SHOWN = {"metric", "extractor", "extractor_sha256", "n_real", "n_fake", "reference", "ema", "ema_decay", "ema_warmup",
         "sampler", "seed", "run", "histogram"}  # keys the columns already show, or too long to show


def protocol_columns(protocol: dict[str, Any]) -> dict[str, str]:
    """COLUMNS -> text; a column the protocol says nothing about is empty."""
    columns = dict.fromkeys(COLUMNS, "")
    if protocol.get("extractor"):
        sha = str(protocol.get("extractor_sha256") or "")
        columns["extractor"] = protocol["extractor"] + (f" (sha256 {sha[:12]}…)" if sha else "")
    counts = [f"{protocol[key]:,} {key[2:]}" for key in ("n_real", "n_fake") if isinstance(protocol.get(key), int)]
    columns["images"] = " / ".join(counts)
    reference = protocol.get("reference")
    if isinstance(reference, dict):
        columns["reference"] = " ".join(str(reference[key]) for key in ("dataset", "split") if reference.get(key))
        if reference.get("source"):
            columns["reference"] += f" ({reference['source']})"
    if protocol.get("ema") is not None:
        columns["EMA"] = "on" if protocol["ema"] else "off"
        if protocol["ema"] and protocol.get("ema_decay") is not None:
            columns["EMA"] += f", decay {protocol['ema_decay']:g}" + (", warm-up" if protocol.get("ema_warmup") else "")
    sampler = protocol.get("sampler")
    if isinstance(sampler, dict):
        columns["sampler"] = ", ".join(f"{key} {value}" for key, value in sampler.items())
    elif sampler:
        columns["sampler"] = str(sampler)
    if protocol.get("seed") is not None:
        columns["seed"] = str(protocol["seed"])
    columns["other"] = "; ".join(f"{key}: {value}" for key, value in protocol.items()
                                 if key not in SHOWN and value not in (None, ""))
    return columns


def describe(protocol: dict[str, Any]) -> str:
    """One line: 'extractor fmnist (sha256 9e0580543c79…); 2,000 real / 2,000 fake; reference ...; EMA on; seed 0'."""
    labels = {"extractor": "extractor ", "reference": "reference ", "EMA": "EMA ", "sampler": "sampler: ", "seed": "seed "}
    return "; ".join(f"{labels.get(name, '')}{text}" for name, text in protocol_columns(protocol).items() if text)
