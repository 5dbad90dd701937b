"""Style transfer: loss reached and seconds per image for L-BFGS and Adam, per feature network.

One content photo (scikit-image's chelsea) in three styles (scikit-image's gravel, brick and grass
textures; Van Gogh's Starry Night from Debian's opencv-doc where installed), `--size` px, `--steps`
iterations, with the random multi-scale network (needs no weights) and VGG-19 where its weights are
present (`--vgg-weights`, or torchvision's cache; otherwise the table says so); plus texture
synthesis (style alone, from noise). Every run is `genzoo.stylize` with its run folder and report.

`--speed` measures the issue's GPU target instead: 500 L-BFGS iterations at 512 px with VGG-19
(Gatys-era implementations: 22-169 s on 2015-16 GPUs); VGG-19 with random weights has the same cost
as with trained ones, so it needs no download.

    nice python benchmarks/style.py                    # about 15 CPU minutes on 2 shared cores
    python benchmarks/style.py --speed --device cuda   # the 512 px, 500-iteration timing
Prints a table, writes benchmarks/results/style.json and docs/style.png (`--picture`).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from genzoo.errors import GenzooError
from genzoo.procedures.images import OPENCV_DATA
from genzoo.procedures.stylize import stylize

CONTENT = "skimage:chelsea"
STYLES = ["skimage:gravel", "skimage:brick", "skimage:grass"]
GATYS_ERA_SECONDS = (22, 169)  # 500 L-BFGS iterations at 512 px, 2015-16 GPUs


def speed(args: argparse.Namespace) -> None:
    from safetensors.torch import save_file

    from genzoo.procedures.style_networks import VGG19Features

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "vgg19-random.safetensors"
        save_file({f"features.{k}": v.contiguous() for k, v in VGG19Features().features.state_dict().items()}, str(weights))
        for optimizer in ("lbfgs",):
            run = stylize(CONTENT, STYLES[0], None, out=Path(folder) / "run", network="vgg19", weights=str(weights),
                          size=args.size, steps=args.steps, optimizer=optimizer, device=args.device, progress=False)
            result = json.loads((run.path / "result.json").read_text())
    row = {"what": f"{args.steps} L-BFGS iterations, {result['size']} px, VGG-19 (random weights: same cost)",
           "device": result["device"], "seconds": result["seconds"], "seconds_per_step": result["seconds_per_step"],
           "gatys_era_seconds": GATYS_ERA_SECONDS, "torch": torch.__version__,
           "machine": torch.cuda.get_device_name() if result["device"].startswith("cuda") else platform.machine()}
    print(json.dumps(row, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).with_name("style_speed.json").write_text(json.dumps(row, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--vgg-weights", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", default="benchmarks/runs/style")
    parser.add_argument("--out", default="benchmarks/results/style.json")
    parser.add_argument("--picture", default="docs/style.png")
    parser.add_argument("--speed", action="store_true", help="500 L-BFGS iterations at 512 px with VGG-19")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # more threads than free cores spin on a shared machine
    if args.speed:
        args.size, args.steps = (512, 500) if not args.quick else (64, 5)
        return speed(args)
    if args.quick:
        args.size, args.steps = 32, 5
    styles = STYLES + (["opencv:starry_night"] if (OPENCV_DATA / "starry_night.jpg").is_file() else [])
    networks = {"random": None}
    try:
        from genzoo.procedures.style_networks import vgg19_network

        vgg19_network(args.vgg_weights)
        networks["vgg19"] = args.vgg_weights
    except GenzooError as error:
        print(f"VGG-19 not run: {error}")
    rows, pictures = [], {}
    runs = Path(args.runs)
    for network, weights in networks.items():
        for style in styles:
            for content, optimizer in ((CONTENT, "lbfgs"), (CONTENT, "adam"), (None, "lbfgs")):
                name = f"{network}-{style.split(':')[-1]}-{optimizer}{'' if content else '-texture'}"
                folder = runs / name
                if not (folder / "result.json").is_file():  # an earlier run of the benchmark is reused
                    stylize(content, style, None, out=folder, network=network, weights=weights, size=args.size,
                            steps=args.steps, optimizer=optimizer, device=args.device, progress=False)
                result = json.loads((folder / "result.json").read_text())
                row = {"network": network, "style": style, "task": "stylize" if content else "texture",
                       "optimizer": optimizer, "steps": args.steps, "size": result["size"],
                       "final_total": result["final_total"], "final_style": result["final_style"],
                       "final_content": result.get("final_content"), "seconds": result["seconds"],
                       "seconds_per_step": result["seconds_per_step"], "run": str(folder)}
                rows.append(row)
                pictures[(network, style, optimizer, row["task"])] = folder / "pictures" / "result.png"
                print(json.dumps(row), flush=True)
    print("| network | style | task | optimizer | final loss | style term | content term | s / image | s / step |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        content = "–" if r["final_content"] is None else f"{r['final_content']:.4g}"
        print(f"| {r['network']} | {r['style']} | {r['task']} | {r['optimizer']} | {r['final_total']:.4g} | "
              f"{r['final_style']:.3g} | {content} | {r['seconds']:.1f} | {r['seconds_per_step']:.3f} |")
    if "vgg19" not in networks:
        print("| vgg19 | – | – | – | not run: no VGG-19 weights here (genzoo never downloads them) | | | | |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rows": rows, "content": CONTENT, "vgg19": "vgg19" in networks,
                                          "machine": f"{platform.machine()}, {args.threads} thread(s)",
                                          "torch": torch.__version__}, indent=2) + "\n")
    if args.picture:
        picture(pictures, styles, networks, args.picture)
    print(f"wrote {args.out}")


def picture(pictures: dict, styles: list[str], networks: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from genzoo.procedures.images import load_image

    columns = ["style", "L-BFGS", "Adam", "texture (L-BFGS, from noise)"]
    rows = [(n, s) for n in networks for s in styles]
    figure, axes = plt.subplots(len(rows), len(columns), figsize=(2.6 * len(columns), 2.1 * len(rows)), squeeze=False)
    for r, (network, style) in enumerate(rows):
        images = [((load_image(style, 128)[0].permute(1, 2, 0) + 1) / 2).clamp(0, 1).numpy()]
        for optimizer, task in (("lbfgs", "stylize"), ("adam", "stylize"), ("lbfgs", "texture")):
            images.append(Image.open(pictures[(network, style, optimizer, task)]))
        for c, image in enumerate(images):
            axes[r][c].imshow(image)
            axes[r][c].axis("off")
            if r == 0:
                axes[r][c].set_title(columns[c], fontsize=9)
        axes[r][0].set_title(f"{style.split(':')[-1]} ({network})", fontsize=8, loc="left")
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")


if __name__ == "__main__":
    main()
