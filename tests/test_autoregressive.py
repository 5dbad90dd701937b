"""Autoregressive families: the PixelCNN's masks and receptive field, exact likelihoods and their units,
sampling (cached = full network, temperature, top-k, beam search against brute force), completion,
and the commands that use them (`genzoo sample` for text, `genzoo complete`, `genzoo eval --metrics nll`)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from conftest import TINY_TEXT, tiny_config

from genzoo.api import train
from genzoo.config import DataConfig
from genzoo.errors import GenzooError
from genzoo.metrics.evaluate import evaluate
from genzoo.models.base import DataInfo
from genzoo.models.char_lm import CharLM, CharLMConfig
from genzoo.models.pixelcnn import PixelCNN, PixelCNNConfig, RasterCache, channel_groups
from test_cli import genzoo

# ----------------------------------------------------------------------------- PixelCNN


def pixelcnn(channels: int = 1, size: int = 6, **config) -> PixelCNN:
    settings = {"width": 6, "layers": 6, "first_kernel_size": 3, **config}
    return PixelCNN(PixelCNNConfig(**settings), DataInfo(channels=channels, image_size=size, num_classes=3)).eval()


@pytest.mark.parametrize("channels", [1, 3])
def test_each_value_depends_on_exactly_the_values_before_it_no_blind_spot(channels):
    """Masks A and B and the two stacks: the stacks' features of colour c at pixel (i, j) move with every value
    before (c, i, j) in raster and channel order (no blind spot: up-right of the pixel too) and with none at or
    after it; the logits (through the masked 1 x 1 head) with none at or after it either. 6 blocks of reach >= 1
    cover the whole 6 x 6 image, so "depends" must be exactly "comes before". One backward pass each: copy r
    of the image asks for the gradient of the value of rank r. (The features are tested for the full set
    because tanh and sigmoid never have a zero derivative; a ReLU of the head may, at random.)"""
    model, values = pixelcnn(channels), channels * 6 * 6
    order = torch.arange(values).view(6, 6, channels).permute(2, 0, 1)  # (C, H, W): rank (i W + j) C + c
    groups = channel_groups(model.config.width, channels)  # the colour of each feature
    x = (torch.rand(1, channels, 6, 6) * 2 - 1).expand(values, -1, -1, -1).clone().requires_grad_(True)
    features = model.network.horizontal_stack(x, model.network.vertical_stack(x))  # (values, p, H, W)
    by_colour = torch.stack([features[:, groups == c].sum(1) for c in range(channels)], 1)  # (values, C, H, W)
    rank = torch.arange(values)
    for outputs, exact in ((by_colour, True), (model.network.logits(features).sum(2), False)):
        chosen = outputs.permute(0, 2, 3, 1).reshape(values, values)[rank, rank]  # copy r: the value of rank r
        (gradient,) = torch.autograd.grad(chosen.sum(), x, retain_graph=True)
        depends = gradient.abs() > 0  # (rank, C, H, W)
        for r in range(values):
            before = order < r
            assert torch.equal(depends[r], before) if exact else not (depends[r] & ~before).any(), r


def test_a_plain_masked_convolution_stack_has_the_blind_spot_the_two_stacks_remove():
    """The reason for the vertical stack: 3 x 3 mask-B convolutions stacked never see the pixels up and to the
    right beyond the diagonal (van den Oord et al. 2016b, Fig. 1); the gated stacks see them (test above)."""
    mask_a = torch.ones(1, 1, 3, 3)
    mask_a[..., 2, :], mask_a[..., 1, 1:] = 0, 0  # mask A: the row above, and left in the row
    mask_b = mask_a.clone()
    mask_b[..., 1, 1] = 1  # mask B: the pixel itself too
    x = torch.rand(1, 1, 7, 7, requires_grad=True)
    h = torch.nn.functional.conv2d(x, mask_a, padding=1)
    for _ in range(5):
        h = torch.nn.functional.conv2d(h, mask_b, padding=1)
    (gradient,) = torch.autograd.grad(h[0, 0, 4, 3], x)
    seen = gradient[0, 0].abs() > 0
    assert seen[3, 4] and seen[1, 6] and seen[4, 0]  # up-right on the diagonal, and left: seen
    assert not seen[3, 5] and not seen[2, 6]  # up-right beyond the diagonal, within reach: the blind spot


@pytest.mark.parametrize("channels, conditional", [(1, False), (3, True)])
def test_cached_sampling_logits_equal_the_whole_network(channels, conditional):
    """Sampling keeps each block's outputs for the rows and columns done and computes one row (vertical) and
    one column (horizontal) of each block per step; the logits are those of the whole network on the image."""
    model = pixelcnn(channels, size=7, layers=3, first_kernel_size=5, conditional=conditional)
    x = torch.rand(2, channels, 7, 7) * 2 - 1
    labels = torch.tensor([0, 2]) if conditional else None
    with torch.no_grad():
        full = model.network(x, labels)  # (B, C, K, H, W)
        cache = RasterCache(model.network, x, labels)
        for row in range(7):
            cache.begin_row(row)
            for column in range(7):
                assert torch.allclose(cache.logits(row, column), full[..., row, column], atol=1e-5), (row, column)


def uniform(model: torch.nn.Module) -> torch.nn.Module:
    """The model with its output layer zeroed: every logit 0, so every conditional is uniform."""
    head = model.network.head[-1] if isinstance(model, PixelCNN) else model.network.head  # (a ReLU MLP, or a linear layer)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    return model


@pytest.mark.parametrize("likelihood, bits", [("categorical", 8.0), ("bernoulli", 1.0)])
def test_a_uniform_pixelcnn_scores_8_bits_per_dim_and_the_metric_converts_units(likelihood, bits):
    data = DataConfig(name="fake", image_size=8, max_images=16)
    model = uniform(pixelcnn(size=8, layers=2, likelihood=likelihood))
    scores = {score.name: score for score in evaluate(model, ["nll"], data=data, num_samples=16, num_real=16, use_cache=False)}
    assert scores["nll"].value == pytest.approx(64 * bits * math.log(2), rel=1e-6)  # nats per image
    assert scores["bits/dim"].value == pytest.approx(bits, rel=1e-6)
    assert scores["nll"].protocol["estimate"] == "exact" and scores["nll"].protocol["n_real"] == 16


def test_values_and_binarisation_round_trip():
    model, binary = pixelcnn(), pixelcnn(likelihood="bernoulli")
    values = torch.arange(256).view(1, 1, 16, 16)
    assert torch.equal(model.to_values(model.to_image(values)), values)  # [-1, 1] <-> 0..255 exactly
    x = model.to_image(values)
    assert torch.equal(binary.to_values(x), (values >= 128).long())  # above half intensity


def test_samples_come_from_the_model_conditionals():
    """A model that puts all its mass on the value 200 draws only 200, and a completion keeps its given rows
    bit for bit while it samples the rest."""
    model = uniform(pixelcnn(size=5, layers=2))
    model.network.head[-1].bias.data[200] = 100.0  # logit 100 for value 200: probability 1 - 255 e^-100
    images = model.generate(3, labels=None, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.to_values(images), torch.full((3, 1, 5, 5), 200))
    x = torch.rand(2, 1, 5, 5) * 2 - 1
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[..., :2, :] = True
    completed = model.complete(x, mask, generator=torch.Generator().manual_seed(0))
    assert torch.equal(completed[mask], x[mask]) and torch.equal(model.to_values(completed)[~mask], torch.full((30,), 200))


def test_conditional_pixelcnn_labels():
    model = pixelcnn(conditional=True)
    x = torch.rand(1, 1, 6, 6) * 2 - 1
    assert not torch.allclose(model.network(x, torch.tensor([0])), model.network(x, torch.tensor([1])))
    assert model.generate(3, generator=torch.Generator().manual_seed(0)).shape == (3, 1, 6, 6)  # classes in turn
    with pytest.raises(GenzooError, match="class indices"):
        model.generate(1, labels=torch.tensor([3]))
    with pytest.raises(GenzooError, match="unconditional"):
        pixelcnn().generate(1, labels=torch.tensor([0]))


# ----------------------------------------------------------------------------- character models

NETWORKS = ["lstm", "gru", "transformer"]
ABC = DataInfo(vocabulary="abc", vocab_size=3, sequence_length=5)


def char_lm(network: str, info: DataInfo = ABC, **config) -> CharLM:
    return CharLM(CharLMConfig(network=network, width=8, layers=2, heads=2, **config), info).eval()


@pytest.mark.parametrize("network", NETWORKS)
def test_a_prediction_never_depends_on_its_own_or_later_tokens(network):
    model = char_lm(network)
    tokens = torch.randint(0, 3, (1, 6), generator=torch.Generator().manual_seed(0))
    logits = model.logits(tokens)  # (1, 6, V): position t predicts token t from tokens < t
    for t in range(6):
        changed = tokens.clone()
        changed[0, t:] = (changed[0, t:] + 1) % 3
        assert torch.allclose(model.logits(changed)[0, : t + 1], logits[0, : t + 1], atol=1e-6), t
        if t < 5:
            assert not torch.allclose(model.logits(changed)[0, t + 1], logits[0, t + 1])


@pytest.mark.parametrize("network", NETWORKS)
def test_decoding_step_by_step_equals_teacher_forcing(network):
    """The cached decoder (recurrent state, or the transformer's keys and values) gives the logits of the
    whole-window forward pass; past the transformer's context, BOS and the last L tokens in full."""
    model = char_lm(network)
    tokens = torch.randint(0, 3, (2, 9), generator=torch.Generator().manual_seed(1))
    logits, state = model.start(2)
    steps = [logits]
    for t in range(8):
        logits, state = model.network.step(tokens[:, t], state)
        steps.append(logits)
    stepped = torch.stack(steps, dim=1)  # (2, 9, V)
    assert torch.allclose(stepped[:, :6], model.logits(tokens[:, :6]), atol=1e-5)  # within the context (6)
    if network == "transformer":  # position 8 reads BOS + tokens 3..7
        assert torch.allclose(stepped[:, 8], model.logits(tokens[:, 3:9])[:, -1], atol=1e-5)
    else:
        assert torch.allclose(stepped, model.logits(tokens), atol=1e-5)


def test_truncated_bptt_carries_the_state_but_stops_the_gradient():
    """With bptt = 2 the logits are the untruncated ones (the state runs through the window), but the gradient
    of the last segment's loss no longer reaches the inputs of earlier segments."""
    full, truncated = char_lm("lstm"), char_lm("lstm", bptt=2)
    truncated.load_state_dict(full.state_dict())
    tokens = torch.randint(0, 3, (2, 6), generator=torch.Generator().manual_seed(2))
    assert torch.allclose(full.logits(tokens), truncated.logits(tokens), atol=1e-6)
    for model, reaches_back in ((full, True), (truncated, False)):
        embedded = []  # the embedded inputs of each segment, (B, t, width)
        hook = model.network.embedding.register_forward_hook(lambda module, args, out: embedded.append(out) or out.retain_grad())
        model.logits(tokens)[:, 4:].sum().backward()  # positions 4 and 5: the last segment of the truncated model
        hook.remove()
        gradient = torch.cat([e.grad if e.grad is not None else torch.zeros_like(e) for e in embedded], dim=1)  # (B, 6, width)
        assert gradient[:, 4:].abs().sum() > 0 and bool(gradient[:, :4].abs().sum() > 0) == reaches_back


@pytest.mark.parametrize("network", ["lstm", "transformer"])
def test_a_uniform_model_scores_log2_v_bits_per_char(network):
    data = DataConfig(name="text", root=str(TINY_TEXT), sequence_length=16, split="test")
    model = uniform(char_lm(network, info=_tiny_text_info()))
    scores = {score.name: score for score in evaluate(model, ["nll"], data=data, num_samples=8, use_cache=False)}
    v = model.vocab
    assert scores["bits/char"].value == pytest.approx(math.log2(v), rel=1e-6)
    assert scores["nll"].value == pytest.approx(17 * math.log(v), rel=1e-6)  # L + 1 tokens per window


def _tiny_text_info() -> DataInfo:
    from genzoo.data import build_dataset

    return build_dataset(DataConfig(name="text", root=str(TINY_TEXT), sequence_length=16)).info


@pytest.mark.parametrize("network", NETWORKS)
def test_temperature_to_zero_and_top_1_are_greedy_decoding(network):
    model = char_lm(network)
    greedy = model.generate(1, beam=1, length=8)  # beam search with one beam keeps the argmax
    logits, state, expected = *model.start(1), []
    for _ in range(8):  # argmax decoding, written out
        expected.append(logits.argmax(-1))
        logits, state = model.network.step(expected[-1], state)
    assert torch.equal(greedy, torch.stack(expected, dim=1))
    cold = model.generate(4, length=8, temperature=1e-6, generator=torch.Generator().manual_seed(0))
    top_1 = model.generate(4, length=8, top_k=1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(cold, greedy.expand(4, -1)) and torch.equal(top_1, greedy.expand(4, -1))


def test_temperature_and_top_k_sample_the_tempered_distribution():
    """p_T(w) ∝ p(w)^(1/T): a model whose first token has p = (0.5, 0.3, 0.2) drawn 20,000 times."""
    model = uniform(char_lm("lstm"))
    p = torch.tensor([0.5, 0.3, 0.2])
    model.network.head.bias.data = p.log()
    for temperature, top_k in ((1.0, None), (0.5, None), (2.0, 2)):
        drawn = model.generate(20_000, length=1, temperature=temperature, top_k=top_k,
                               generator=torch.Generator().manual_seed(0))[:, 0]
        expected = p ** (1 / temperature)
        if top_k:
            expected[2] = 0
        expected /= expected.sum()
        frequencies = torch.bincount(drawn, minlength=3).float() / len(drawn)
        assert torch.allclose(frequencies, expected, atol=0.015), (temperature, frequencies, expected)


@pytest.mark.parametrize("network", NETWORKS)
def test_beam_search_is_exact_against_brute_force(network):
    """With B >= V^(T-1) beams nothing is pruned: the best sequences are the brute-force best of all V^T.
    With 2 beams it equals the definition written out: keep the 2 best one-token extensions each step."""
    model = char_lm(network)
    everything = torch.tensor(list(itertools.product(range(3), repeat=4)))  # (81, 4)
    log_p = -model.nll({"tokens": everything})  # log p(w_0..w_3 | BOS), teacher-forced, not the decoder
    best = everything[log_p.argsort(descending=True)[:3]]
    assert torch.equal(model.generate(3, beam=27, length=4), best)
    kept = torch.zeros(1, 0, dtype=torch.long)
    for t in range(4):
        candidates = torch.cat([kept.repeat_interleave(3, 0), torch.arange(3).repeat(len(kept))[:, None]], 1)
        scores = -model.nll({"tokens": candidates})
        kept = candidates[scores.argsort(descending=True)[:2]]
    assert torch.equal(model.generate(2, beam=2, length=4), kept)


def test_prompts_and_completion_keep_the_given_text():
    model = char_lm("gru")
    out = model.generate(2, prompt="cab", length=4, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 7) and out[:, :3].tolist() == [[2, 0, 1]] * 2
    assert model.generate(2, prompt="cab", beam=3, length=2)[:, :3].tolist() == [[2, 0, 1]] * 2
    x = torch.randint(0, 3, (3, 6), generator=torch.Generator().manual_seed(0))
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[:, :2] = True
    completed = model.complete(x, mask, generator=torch.Generator().manual_seed(0))
    assert torch.equal(completed[:, :2], x[:, :2]) and completed.dtype == torch.long
    for bad, phrase in (({"prompt": "abz"}, "not in the model's vocabulary"), ({"temperature": 0.0}, "above 0"),
                        ({"temperature": -1.0}, "above 0"), ({"beam": 2, "length": 3}, "beams")):
        with pytest.raises(GenzooError, match=phrase):
            model.generate(3, **bad)


# ----------------------------------------------------------------------------- commands


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("autoregressive-runs")
    return {family: train(tiny_config(family), root / family, progress=False) .path for family in ("pixelcnn", "char-lm")}


def test_sample_prints_and_writes_text(runs, tmp_path, capsys):
    code, out, err = genzoo(capsys, "sample", runs["char-lm"], "-n", "2", "--prompt", "The ", "--length", "12",
                            "--temperature", "0.8", "--top-k", "5", "-o", tmp_path / "s.txt")
    assert code == 0, err
    text = (tmp_path / "s.txt").read_text()
    assert text.count("--- ") == 2 and text.count("The ") >= 2 and "The " in out
    code, out, err = genzoo(capsys, "sample", runs["char-lm"], "-n", "2", "--beam", "3", "-o", tmp_path / "b.txt")
    assert code == 0, err
    assert (tmp_path / "b.txt").read_text().count("--- ") == 2
    report = (runs["char-lm"] / "report.html").read_text()
    assert "temperature 0.5" in report and "beam search" in report  # text samples in the report


def test_complete_writes_a_grid_of_completions(runs, tmp_path, capsys):
    from PIL import Image

    code, out, err = genzoo(capsys, "complete", runs["pixelcnn"], "--rows", "4", "-n", "2", "-k", "3",
                            "-o", tmp_path / "c.png")
    assert code == 0, err
    assert Image.open(tmp_path / "c.png").size == (5 * 9 + 1, 2 * 9 + 1)  # 5 columns of 8 px + 1 px padding
    assert (runs["pixelcnn"] / "pictures" / "completions.png").is_file()


@pytest.mark.parametrize("family, unit", [("pixelcnn", "bits/dim"), ("char-lm", "bits/char")])
def test_eval_reports_exact_nll_and_its_units(runs, family, unit, capsys):
    code, out, err = genzoo(capsys, "eval", runs[family], "--metrics", "nll", "-n", "8")
    assert code == 0, err
    assert "nll" in out and unit in out
