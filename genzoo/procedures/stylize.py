"""Stylize: neural style transfer by optimising an image (Gatys, Ecker & Bethge, CVPR 2016).

The image x is optimised, with a fixed feature network, to minimise (Gatys et al., Eq. 7)
    L(x) = alpha L_content(x, p) + beta L_style(x, a) + gamma TV(x),
L_content the squared feature difference to the content image p at one layer (Eq. 1), L_style the
Gram-matrix differences to the style image a over several layers with weights summing to 1 (Eq. 4-5),
TV an optional smoothness term (`genzoo.losses`). x starts from the content image or from noise and
is optimised with L-BFGS (as Gatys et al.; here with a strong-Wolfe line search, which may evaluate the
loss more than once per iteration: `result.json` counts both) or Adam, clipped to the image range.

Options: several style images (their Gram targets blended with `style_blend`); a sweep of style
weights (one image per beta, shown as a grid); colour preservation by luminance-only transfer
(Gatys, Bethge, Hertzmann & Shechtman, "Preserving Color in Neural Artistic Style Transfer", 2016,
Sec. 3: the style's luminance matched to the content's mean and variance, transfer on luminance
alone, the content's I and Q chroma channels (YIQ) put back); texture synthesis (no content: style
alone, from noise). The feature network is VGG-19 where its weights are present, or random
multi-scale filters that need none (`style_networks`), and the report names which one ran.

    genzoo stylize skimage:chelsea skimage:gravel -o cat.png
    genzoo stylize photo.jpg starry.jpg --network vgg19 --weights vgg19-dcbb9e9d.pth -o out.png
    genzoo run stylize style=skimage:brick steps=200          # texture synthesis
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import NonNegativeFloat, PositiveFloat, PositiveInt
from torch import Tensor

from genzoo.errors import GenzooError
from genzoo.procedures.base import Procedure, ProcedureConfig, ProcedureContext, free_folder
from genzoo.registry import PROCEDURES

# RGB <-> YIQ (NTSC 1953, FCC): the Y row is ITU-R 601 luma; I and Q carry the colour
YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]],
                   dtype=torch.float64)


def rgb_to_yiq(x: Tensor) -> Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> YIQ."""
    return torch.einsum("ij,bjhw->bihw", YIQ.to(x), x)


def yiq_to_rgb(x: Tensor) -> Tensor:
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(YIQ.double()).to(x), x)


def with_chroma_of(luminance: Tensor, content: Tensor) -> Tensor:
    """Luminance (B, 1, H, W) in [0, 1] with the I and Q channels of `content` (B, 3, H, W, RGB in [0, 1]) -> RGB."""
    return yiq_to_rgb(torch.cat([luminance, rgb_to_yiq(content)[:, 1:]], dim=1))


def match_luminance(style_y: Tensor, content_y: Tensor) -> Tensor:
    """Gatys et al. 2016 (colour), Eq. 1: L_s' = sigma_c / sigma_s (L_s - mu_s) + mu_c. (B, 1, H, W) each."""
    return content_y.std() / style_y.std().clamp_min(1e-8) * (style_y - style_y.mean()) + content_y.mean()


class StylizeConfig(ProcedureConfig):
    content: str | None = None  # image file or bundled photo (skimage:astronaut, sklearn:china, ...); None: texture synthesis
    style: str | tuple[str, ...]  # one or more style images (files or bundled: skimage:gravel, opencv:starry_night)
    style_blend: tuple[PositiveFloat, ...] | None = None  # weight of each style (normalised to sum 1); None: equal
    size: PositiveInt = 256  # longer side of the result in pixels (texture synthesis: a square of this side)
    style_size: PositiveInt | None = None  # longer side the style images are resized to; None: size
    network: Literal["random", "vgg19"] = "random"  # random: needs no weights; vgg19: weights from a file or the cache
    weights: str | None = None  # VGG-19 weights file (torchvision's vgg19-dcbb9e9d.pth)
    content_layer: str | None = None  # None: the network's (relu4_2; scale2)
    style_layers: tuple[str, ...] | None = None  # None: the network's; weighted equally
    content_weight: NonNegativeFloat = 1.0  # alpha
    style_weight: NonNegativeFloat | None = None  # beta; None: the network's default (vgg19 1e3, random 1e7)
    tv_weight: NonNegativeFloat = 0.0  # gamma, on images in [0, 1]
    init: Literal["content", "noise"] = "content"  # texture synthesis always starts from noise
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    steps: PositiveInt = 300  # L-BFGS iterations or Adam steps
    lr: PositiveFloat | None = None  # None: 1 for L-BFGS, 0.02 for Adam (images in [-1, 1])
    preserve_colour: bool = False  # luminance-only transfer
    sweep: tuple[NonNegativeFloat, ...] | None = None  # several betas: one result each, in a grid
    snapshot_every: PositiveInt = 50  # steps between the intermediate images in the report
    output: str | None = None  # also write the result here (PNG)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0


@PROCEDURES.register("stylize")
class Stylize(Procedure):
    Config = StylizeConfig

    def __init__(self, config: StylizeConfig) -> None:
        super().__init__(config)
        from genzoo.procedures.images import load_image
        from genzoo.procedures.style_networks import NETWORKS

        self.device = torch.device("cuda" if config.device == "auto" and torch.cuda.is_available() else
                                   "cpu" if config.device == "auto" else config.device)
        styles = (config.style,) if isinstance(config.style, str) else config.style
        if not styles:
            raise GenzooError("give at least one style image.")
        blend = config.style_blend or (1.0,) * len(styles)
        if len(blend) != len(styles):
            raise GenzooError(f"style_blend has {len(blend)} weights for {len(styles)} style images; give one per style.")
        self.blend = [b / sum(blend) for b in blend]
        if config.output is not None:
            output = Path(config.output)
            if output.is_dir() or not output.parent.is_dir():
                raise GenzooError(f"cannot write {config.output!r}: give a file name in a folder that exists.")
        self.content = None if config.content is None else load_image(config.content, config.size)
        self.styles = [load_image(s, config.style_size or config.size) for s in styles]
        self.network = NETWORKS[config.network](config.weights)
        self.network.module.to(self.device).eval().requires_grad_(False)
        self.style_layers = config.style_layers or self.network.style_layers
        self.content_layer = config.content_layer or self.network.content_layer
        self.network(torch.zeros(1, 3, 32, 32, device=self.device), {*self.style_layers, self.content_layer})  # names checked
        self.beta = self.network.style_weight if config.style_weight is None else config.style_weight
        self.styles_text = ", ".join(styles)

    # ------------------------------------------------------------------ the optimisation

    def _targets(self) -> tuple[Tensor | None, list[Tensor]]:
        """Content features P (1, N, h, w) and the blended style Grams A^l (1, N, N), colour handled."""
        from genzoo.losses import gram_matrix

        content, styles = self.content, self.styles
        if self.config.preserve_colour:
            luminance = None if content is None else rgb_to_yiq((content + 1) / 2)[:, :1]  # (1, 1, H, W)
            styles = [rgb_to_yiq((s + 1) / 2)[:, :1] for s in styles]
            if luminance is not None:
                styles = [match_luminance(s, luminance) for s in styles]
            styles = [(s * 2 - 1).expand(-1, 3, -1, -1) for s in styles]
            content = None if content is None else (luminance * 2 - 1).expand(-1, 3, -1, -1)
        with torch.no_grad():
            grams = [torch.zeros(())] * len(self.style_layers)
            for weight, style in zip(self.blend, styles):
                features = self.network(style.to(self.device), set(self.style_layers))
                grams = [g + weight * gram_matrix(features[name]) for g, name in zip(grams, self.style_layers)]
            target = None if content is None else self.network(content.to(self.device), {self.content_layer})[self.content_layer]
        return target, grams

    def _optimise(self, beta: float, content_target: Tensor | None, grams: list[Tensor], progress, task):  # noqa: ANN001
        from genzoo.losses import content_loss, style_loss, total_variation

        config = self.config
        generator = torch.Generator().manual_seed(config.seed)
        if self.content is not None and config.init == "content":
            start = self.content
        else:
            shape = self.content.shape if self.content is not None else (1, 3, config.size, config.size)
            start = (torch.rand(shape, generator=generator) * 2 - 1) * 0.5  # noise around mid-grey
        if config.preserve_colour:
            start = (rgb_to_yiq((start + 1) / 2)[:, :1] * 2 - 1)  # (1, 1, H, W): only luminance is optimised
        x = start.clone().to(self.device).requires_grad_(True)
        layers = {*self.style_layers, self.content_layer}
        weights = [1.0 / len(self.style_layers)] * len(self.style_layers)
        alpha = config.content_weight if content_target is not None else 0.0
        history: list[Tensor] = []  # per step
        evaluations: list[Tensor] = []  # per function evaluation (L-BFGS's line search makes several per step)
        snapshots = [(0, self._rgb(x.detach()))]

        def closure() -> Tensor:
            optimizer.zero_grad(set_to_none=True)
            image = x.expand(-1, 3, -1, -1) if config.preserve_colour else x  # (1, 3, H, W)
            features = self.network(image, layers)
            parts = {"style": style_loss([features[n] for n in self.style_layers], grams, weights)}
            if alpha:
                parts["content"] = content_loss(features[self.content_layer], content_target)
            if config.tv_weight:
                parts["tv"] = total_variation((image + 1) / 2)
            total = alpha * parts.get("content", 0.0) + beta * parts["style"] + config.tv_weight * parts.get("tv", 0.0)
            total.backward()
            evaluations.append(torch.stack([total.detach(), *(parts[k].detach() for k in ("content", "style", "tv") if k in parts)]))
            return total

        if config.optimizer == "lbfgs":  # one iteration per call; the strong-Wolfe line search keeps it from diverging
            optimizer = torch.optim.LBFGS([x], lr=config.lr or 1.0, max_iter=1, history_size=100, line_search_fn="strong_wolfe",
                                          tolerance_grad=0.0, tolerance_change=0.0)  # never stop early: `steps` iterations
        else:
            optimizer = torch.optim.Adam([x], lr=config.lr or 0.02)
        started = time.perf_counter()
        for step in range(1, config.steps + 1):
            first = len(evaluations)
            if config.optimizer == "lbfgs":
                optimizer.step(closure)
            else:
                closure()
                optimizer.step()
                with torch.no_grad():  # projected: Adam's iterates stay images (L-BFGS is clipped once, at the end,
                    x.clamp_(-1, 1)    # as Gatys-era implementations do: clipping would break its line search)
            history.append(evaluations[first])  # the loss at the iterate this step started from
            if step % config.snapshot_every == 0 or step == config.steps:
                snapshots.append((step, self._rgb(x.detach().clamp(-1, 1))))
            progress.advance(task)
        seconds = time.perf_counter() - started
        with torch.no_grad():
            x.clamp_(-1, 1)
        names = ["total", *(k for k, on in (("content", alpha), ("style", True), ("tv", config.tv_weight)) if on)]
        values = torch.stack(history).cpu()  # (steps, terms): one read at the end
        self.evaluations = len(evaluations)
        return self._rgb(x.detach()), snapshots, {n: values[:, i].tolist() for i, n in enumerate(names)}, seconds

    def _rgb(self, x: Tensor) -> Tensor:
        """The optimised image as RGB in [-1, 1] (1, 3, H, W): luminance put back with the content's chroma."""
        if not self.config.preserve_colour:
            return x.cpu()
        y = (x.cpu() + 1) / 2  # (1, 1, H, W)
        if self.content is None:
            return (y * 2 - 1).expand(-1, 3, -1, -1)
        return with_chroma_of(y, (self.content + 1) / 2).clamp(0, 1) * 2 - 1

    def run(self, context: ProcedureContext) -> None:
        from rich.progress import Progress

        config = self.config
        betas = list(config.sweep) if config.sweep else [self.beta]
        content_target, grams = self._targets()
        results, histories, seconds, evaluations = [], {}, [], 0
        with Progress(disable=not context.progress, transient=True) as progress:
            task = progress.add_task("stylizing" if self.content is not None else "synthesising a texture",
                                     total=config.steps * len(betas))
            for beta in betas:
                image, snapshots, history, elapsed = self._optimise(beta, content_target, grams, progress, task)
                results.append(image)
                histories[beta] = history
                seconds.append(elapsed)
                evaluations += self.evaluations
        for step in range(config.steps):
            record = {}
            for beta, history in histories.items():
                prefix = "stylize" if len(betas) == 1 else f"beta={beta:g}"
                record.update({f"{prefix}/{name}": values[step] for name, values in history.items()})
            context.record(step + 1, **record)
        final = results[-1] if len(results) == 1 else None
        inputs = ([self.content] if self.content is not None else []) + self.styles
        same_size = [i for i in inputs if i.shape[-2:] == results[0].shape[-2:]]
        if final is not None:
            path = context.picture("result", final, "the result")
            context.picture("progress", torch.cat([s for _, s in snapshots]),
                            "the image every " + f"{config.snapshot_every} steps: " + ", ".join(str(s) for s, _ in snapshots),
                            columns=len(snapshots))
            if same_size:
                context.picture("inputs", torch.cat(same_size + [final]), "inputs of the result's size, and the result")
        else:
            path = context.picture("sweep", torch.cat(results), "style weight beta = " + ", ".join(f"{b:g}" for b in betas),
                                   columns=len(results))
        for index, style in enumerate(self.styles):
            context.picture(f"style-{index}", style, f"style image {index + 1}")
        if config.output is not None:
            shutil.copyfile(path, config.output)
        last = {name: values[-1] for name, values in histories[betas[-1]].items()}
        context.result(network=self.network.name, content=config.content or "none (texture synthesis)",
                       style=self.styles_text, optimizer=config.optimizer, steps=config.steps,
                       size=f"{results[0].shape[-1]}x{results[0].shape[-2]}", beta=betas if config.sweep else betas[0],
                       preserve_colour=config.preserve_colour, **{f"final_{k}": v for k, v in last.items()},
                       evaluations=evaluations, seconds=sum(seconds), seconds_per_step=sum(seconds) / (config.steps * len(betas)),
                       device=str(self.device), output=config.output or str(path))


def stylize(content: str | None, style: str | list[str], output: str | Path | None = None, *,
            out: str | Path | None = None, progress: bool = True, **settings: Any):
    """`genzoo stylize` from Python: the content image (None: texture synthesis) in the style of `style`
    (one or more images), written to `output` (PNG) and a run folder `out` (default runs/stylize,
    runs/stylize-2, ...) with the report. Settings are StylizeConfig's keys. Returns the RunFolder."""
    import json

    from genzoo.procedures.base import run

    values = {"content": content, "style": style if isinstance(style, str) else list(style),
              "output": None if output is None else str(output), **settings}
    items = [f"{key}={json.dumps(value)}" for key, value in values.items() if value is not None]
    return run("stylize", items, out or free_folder(Path("runs") / "stylize"), progress=progress)
