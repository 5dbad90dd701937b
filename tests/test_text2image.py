"""Text to image beyond the contract: captions measured back from real images, the tokenizer, the text
encoder and cross-attention with padding, the first stage's loss terms, prompt dropout, guidance with
prompts, the caption bank, prompt accuracy, the latent path of latent diffusion, exact stop/resume, and
`genzoo sample --prompt/--prompts`."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import single_thread, tiny_config
from PIL import Image
from safetensors.torch import load_file

import genzoo
from genzoo.config import DataConfig
from genzoo.data import build_dataset
from genzoo.data.captions import FashionGrammar, Tokenizer, fashion_attributes
from genzoo.data.shapes import HELD_OUT, WORDS, ShapesGrammar, draw_scenes, parse, render
from genzoo.errors import GenzooError
from genzoo.losses import ImageLoss
from genzoo.metrics.context import EvalContext
from genzoo.metrics.evaluate import compute
from genzoo.metrics.features import load_features
from genzoo.metrics.prompts import prompt_accuracy
from genzoo.models.autoencoder_kl import adaptive_weight, first_stage_losses
from genzoo.models.ddpm import classifier_free_guidance
from genzoo.models.latent_diffusion import drop_prompts
from genzoo.nn.text import CaptionBank, TextEncoder, empty_prompts
from genzoo.nn.unet import CrossAttention
from genzoo.registry import MODELS
from genzoo.train.trainer import Trainer
from test_cli import genzoo as cli
from test_contract import check_contract


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


# ----------------------------------------------------------------------------- captions <-> pixels, on real data


def test_shapes_captions_are_measured_back_from_the_images_they_describe():
    data = build_dataset(DataConfig(name="shapes", split="test", max_images=400))
    indices = torch.arange(len(data))
    judged = data.grammar.judge(data.batch(indices)["image"], data.texts(indices))
    for attribute, values in judged.items():  # >= 99% asked; every attribute of every caption holds
        assert torch.nanmean(values).item() == 1.0, attribute
    assert judged["relation"].isnan().float().mean().item() == pytest.approx(0.5, abs=0.08)  # half the scenes have one shape
    held_out = draw_scenes(100, torch.Generator().manual_seed(5), held_out=True)  # combinations training never shows
    images = render(held_out, 32, torch.Generator().manual_seed(6)).float() / 127.5 - 1
    assert all(torch.nanmean(v).item() == 1.0 for v in ShapesGrammar().judge(images, held_out.captions()).values())


def test_shapes_hold_their_combinations_out_of_every_split_and_prompts_obey_the_grammar():
    texts = [t for split in ("train", "test") for t in build_dataset(DataConfig(name="shapes", split=split,
                                                                                 max_images=1000)).texts(torch.arange(1000))]
    assert not any(f"{colour} {shape}" in text for text in texts for colour, shape in HELD_OUT)
    assert all(f"{colour} {shape}" in " ".join(texts) for colour in ("red", "green", "blue", "yellow")
               for shape in ("circle", "square", "triangle") if (colour, shape) not in HELD_OUT)
    unseen = ShapesGrammar().prompts(100, True, torch.Generator().manual_seed(0))
    assert all(any(f"{c} {s}" in p for c, s in HELD_OUT) for p in unseen)
    assert parse("A small red circle, left of a large blue square.") == parse("a small red circle left of a large blue square")
    with pytest.raises(GenzooError, match="not a shapes caption"):
        parse("a red circle")


def test_fashion_captions_agree_with_their_images_and_split_each_class_in_half():
    data = build_dataset(DataConfig(name="fashion-mnist-captions", split="test", max_images=2000))
    indices = torch.arange(len(data))
    batch = data.batch(indices)
    texts = data.texts(indices)
    assert texts[0].startswith("a ") and texts[0].split()[-1] in ("boot", "trouser", "pullover", "dress", "coat",
                                                                   "sandal", "shirt", "sneaker", "bag", "t-shirt/top")
    truth = FashionGrammar().judge(batch["image"], texts, classify=lambda images: batch["label"])  # the true class
    assert all(v.float().mean().item() == 1.0 for v in truth.values())
    network = load_features("fmnist")
    by_classifier = FashionGrammar().judge(batch["image"][:500], texts[:500], lambda x: network(x)["logits"].argmax(1))
    assert by_classifier["class"].float().mean().item() > 0.88  # the classifier's accuracy (93%) is the class's ceiling
    dark = torch.tensor(["dark" in t for t in texts])
    for label in range(10):  # thresholds are the train split's medians: about half of each class is dark
        assert 0.3 < dark[batch["label"] == label].float().mean().item() < 0.7
    tone, width = fashion_attributes(torch.full((1, 1, 28, 28), -1.0))
    assert tone.item() == 0 and math.isfinite(width.item())


# ----------------------------------------------------------------------------- tokens, text encoder, cross-attention


def test_tokenizer_round_trip_and_refusals():
    tokenizer = Tokenizer.for_words(WORDS, 10)
    texts = ["a small red circle left of a large blue square", "a large yellow triangle", ""]
    tokens = tokenizer.encode(texts)
    assert tokens.shape == (3, 11) and tokens.dtype == torch.long
    assert tokens[:, 0].tolist() == [1, 1, 1] and tokens[2, 1:].eq(0).all()  # <s> first; the empty prompt is <s> alone
    assert tokenizer.decode(tokens) == texts
    assert tokenizer.decode(tokenizer.encode(["A Large, Yellow triangle!"])) == ["a large yellow triangle"]
    assert Tokenizer.from_info(build_dataset(DataConfig(name="shapes", max_images=8)).info, "test") == tokenizer
    with pytest.raises(GenzooError, match="'purple', 'hexagon'"):
        tokenizer.encode(["a purple hexagon"])
    with pytest.raises(GenzooError, match="at most 10"):
        tokenizer.encode(["a small red circle left of a large blue square above a"])
    with pytest.raises(GenzooError, match="'<s>'"):
        tokenizer.encode(["<s> a small red circle"])


def test_cross_attention_shapes_and_padding_mask():
    torch.manual_seed(0)
    layer = CrossAttention(8, 6, heads=2)
    torch.nn.init.normal_(layer.proj.weight)  # (starts at zero: the block is the identity until trained)
    x, context = torch.randn(3, 8, 5, 4), torch.randn(3, 7, 6)  # (B, C, H, W), (B, L, D)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0, 0]], dtype=torch.bool)
    out = layer(x, context, mask)
    assert out.shape == x.shape
    changed = torch.where(mask[:, :, None], context, torch.randn_like(context) * 100)  # other values at the padding
    torch.testing.assert_close(layer(x, changed, mask), out)
    for b, real in enumerate(mask.sum(1).tolist()):  # the same as attending to the real tokens alone
        torch.testing.assert_close(layer(x[b : b + 1], context[b : b + 1, :real]), out[b : b + 1])
    # Eq. 3 by hand for one head: x + W_o softmax(Q K^T / sqrt(d)) V
    single = CrossAttention(4, 3, heads=1)
    torch.nn.init.normal_(single.proj.weight)
    x, context = torch.randn(1, 4, 2, 2), torch.randn(1, 5, 3)
    q = single.q(single.norm(x).flatten(2).transpose(1, 2))  # (1, 4, 4)
    k, v = single.kv(context).chunk(2, dim=-1)  # (1, 5, 4) each
    attended = torch.softmax(q @ k.transpose(1, 2) / 2.0, dim=-1) @ v
    expected = x + single.proj(attended).transpose(1, 2).reshape(1, 4, 2, 2)
    torch.testing.assert_close(single(x, context), expected)


def test_text_encoder_reads_only_real_tokens():
    torch.manual_seed(0)
    encoder = TextEncoder(vocab_size=17, max_length=11, width=8, depth=2, heads=2)
    tokens = Tokenizer.for_words(WORDS, 10).encode(["a small red circle", "a large blue square above a small red circle"])
    context, mask = encoder(tokens)
    assert context.shape == (2, 11, 8) and mask.tolist()[0] == [True] * 5 + [False] * 6
    short, _ = encoder(tokens[:1, :5])  # the same caption without its padding
    torch.testing.assert_close(context[:1, :5], short)


def test_prompt_dropout_replaces_captions_by_the_empty_prompt_at_its_rate():
    tokens = Tokenizer.for_words(WORDS, 10).encode(["a small red circle left of a large blue square"] * 20_000)
    dropped = drop_prompts(tokens, 0.25, torch.Generator().manual_seed(0))
    empty = (dropped == empty_prompts(1, 11, "cpu")).all(1)
    kept = (dropped == tokens).all(1)
    assert bool((empty | kept).all())
    assert abs(empty.float().mean().item() - 0.25) < 4 * math.sqrt(0.25 * 0.75 / 20_000)  # within 4 standard errors
    assert torch.equal(drop_prompts(tokens[:50], 0.0), tokens[:50])
    assert torch.equal(drop_prompts(tokens[:50], 1.0), empty_prompts(50, 11, "cpu"))


def test_caption_bank_keeps_the_last_captions_and_draws_only_those():
    bank = CaptionBank(length=3, size=4)
    assert torch.equal(bank.draw(2), empty_prompts(2, 3, "cpu"))  # nothing seen yet: the empty prompt
    bank.add(torch.tensor([[1, 2, 0], [1, 3, 0]]))
    assert set(map(tuple, bank.draw(50, torch.Generator().manual_seed(0)).tolist())) == {(1, 2, 0), (1, 3, 0)}
    bank.add(torch.tensor([[1, 4, 0], [1, 5, 0], [1, 6, 0]]))  # wraps around: the oldest is overwritten
    assert sorted(bank.captions[:, 1].tolist()) == [3, 4, 5, 6] and int(bank.count) == 5


# ----------------------------------------------------------------------------- the first stage


def test_first_stage_reconstruction_and_kl_terms():
    x = torch.tensor([[[[0.5, -0.5], [1.0, 0.0]]]])  # (1, 1, 2, 2)
    x_hat = torch.tensor([[[[0.0, -0.5], [0.5, 0.5]]]])
    mu, logvar = torch.tensor([[[[1.0]], [[0.0]]]]), torch.tensor([[[[0.0]], [[math.log(4.0)]]]])  # (1, 2, 1, 1)
    terms = first_stage_losses(x, x_hat, mu, logvar, ImageLoss({"mae": 1.0}), kl_weight=0.1)
    assert terms["reconstruction"].item() == pytest.approx((0.5 + 0 + 0.5 + 0.5) / 4)  # L1, mean over pixels
    kl = 0.5 * (1.0 + 1.0 - 1.0 - 0.0) + 0.5 * (0.0 + 4.0 - 1.0 - math.log(4.0))  # 1/2 (mu^2 + s^2 - 1 - log s^2)
    assert terms["kl"].item() == pytest.approx(kl)
    reference = torch.distributions.kl_divergence(torch.distributions.Normal(mu.flatten(), logvar.mul(0.5).exp().flatten()),
                                                  torch.distributions.Normal(0.0, 1.0)).sum()
    assert terms["kl"].item() == pytest.approx(reference.item())
    assert terms["total"].item() == pytest.approx(0.375 + 0.1 * kl / 4)  # w_KL KL / (C H W)


def test_adaptive_weight_of_the_patch_adversarial_term():
    last = torch.tensor([1.0, 2.0], requires_grad=True)  # G_L, the decoder's last layer
    reconstruction, adversarial = (last * torch.tensor([3.0, 4.0])).sum(), (last * torch.tensor([0.0, 0.5])).sum()
    weight = adaptive_weight(reconstruction, adversarial, last)  # ||grad L_rec|| / (||grad L_adv|| + 1e-4): 5 / 0.5001
    assert weight.item() == pytest.approx(5.0 / (0.5 + 1e-4)) and not weight.requires_grad
    flat = (last * 0.0).sum()  # an adversarial term that does not move G_L: the weight is clamped at 1e4
    assert adaptive_weight(reconstruction, flat, last).item() == pytest.approx(1e4)


# ----------------------------------------------------------------------------- guidance with prompts


def _tiny_text_model(family: str = "latent-diffusion", **model):
    data = build_dataset(tiny_config(family).data)
    config = tiny_config(family, model=model)
    return MODELS.get(family)(config.model, data.info).eval(), data


def test_guidance_zero_and_one_with_prompts():
    torch.manual_seed(0)
    model, data = _tiny_text_model()
    torch.nn.init.normal_(model.denoiser.out[-1].weight, std=0.1)  # a U-Net that does not predict 0 everywhere
    for layer in model.denoiser.modules():
        if isinstance(layer, CrossAttention):
            torch.nn.init.normal_(layer.proj.weight, std=0.3)  # and that reads its prompt
    tokens = data.batch(torch.arange(4))["caption"]
    empty = empty_prompts(4, tokens.shape[1], "cpu")
    x, t = torch.randn(4, 3, 16, 16), torch.tensor([1, 3, 5, 9])
    conditional, unconditional = model.predict_eps(x, t, tokens), model.predict_eps(x, t, empty)
    assert not torch.allclose(conditional, unconditional)
    torch.testing.assert_close(model.eps_denoiser(tokens, 1.0)(x, t), conditional)
    torch.testing.assert_close(model.eps_denoiser(tokens, 0.0)(x, t), unconditional)
    torch.testing.assert_close(model.eps_denoiser(tokens, 4.0)(x, t), classifier_free_guidance(conditional, unconditional, 4.0))
    with pytest.raises(GenzooError, match="prompts, not class labels"):
        model.generate(2, labels=torch.tensor([0, 1]))
    with pytest.raises(GenzooError, match="3 prompts for 2 samples"):
        model.generate(2, prompts=["a small red circle"] * 3)


# ----------------------------------------------------------------------------- prompt accuracy


class Oracle:
    """A 'model' that renders exactly what each prompt says (the dataset's renderer): prompt accuracy 1."""

    device = torch.device("cpu")

    def generate(self, n, labels=None, generator=None, prompts=None):  # noqa: ANN001, ANN201
        from genzoo.data.shapes import Scenes

        scenes = [parse(p) for p in prompts]
        things = torch.tensor([[[t.size, t.colour, t.shape] for t in (ts * 2)[:2]] for ts, _ in scenes])
        pair = torch.tensor([len(ts) == 2 for ts, _ in scenes])
        relation = torch.tensor([-1 if r is None else r for _, r in scenes])
        return render(Scenes(things, pair, relation), 32, generator).float() / 127.5 - 1


def test_prompt_accuracy_is_one_for_an_oracle_and_low_for_mismatched_prompts():
    grammar = ShapesGrammar()
    for held_out in (False, True):
        scores = prompt_accuracy(Oracle(), grammar, 60, held_out, seed=1)
        assert scores == {name: 1.0 for name in (*grammar.attributes, "all")}
    shifted = Oracle()
    shifted.generate = lambda n, generator=None, prompts=None: Oracle().generate(n, prompts=prompts[1:] + prompts[:1],
                                                                               generator=generator)
    wrong = prompt_accuracy(shifted, grammar, 60, seed=1)  # every image drawn for another prompt
    assert wrong["all"] < 0.1 and wrong["colour"] < 0.5


# ----------------------------------------------------------------------------- the latent path, end to end


def test_latent_diffusion_on_a_first_stage_passes_the_contract(tiny_first_stage, tmp_path):
    config = tiny_config("latent-diffusion", model={"first_stage": str(tiny_first_stage)}, ema_decay=0.5)
    check_contract(config, tmp_path)
    model = genzoo.load(tmp_path / "run")
    assert model.latent_size == (2, 8, 8) and model.latent.scale.item() > 0  # rescaled on the first batch
    first = load_file(str(tiny_first_stage / "model.safetensors"))
    assert torch.equal(model.first_stage.decoder.last.weight, first["ema.decoder.last.weight"])  # its EMA weights, frozen
    assert sorted(p.name for p in (tmp_path / "run" / "pictures").glob("prompts-*.png")) == ["prompts-held-out.png",
                                                                                            "prompts-seen.png"]
    real = build_dataset(tiny_config("latent-diffusion").data)
    context = EvalContext(load_features("fmnist"), real, {"dataset": "shapes"}, 8, None, 6, model=model, seed=0,
                          protocol={"ema": True, "sampler": model.sampling_protocol()}, use_cache=False)
    scores = compute(context, ["prompt-accuracy"])
    names = {s.name for s in scores}
    assert {"prompt-accuracy-seen", "prompt-accuracy-held-out", "prompt-relation-held-out"} <= names
    assert all(0 <= s.value <= 1 and s.protocol["grammar"] == "shapes" for s in scores)
    protocol = scores[0].protocol  # how the score was computed: prompts, grammar, sampler with guidance, EMA, seed
    assert protocol["prompts"] in ("seen", "held-out") and protocol["ema"] is True and protocol["seed"] == 0
    assert protocol["sampler"]["guidance"] == model.config.guidance and protocol["sampler"]["space"].startswith("latent")


@pytest.mark.parametrize("family, model", [("autoencoder-kl", {}), ("gan-cls", {}), ("latent-diffusion", "first stage")])
def test_stop_and_resume_equals_a_straight_run(family, model, tiny_first_stage, tmp_path):
    model = {"first_stage": str(tiny_first_stage)} if model == "first stage" else model
    extra = {"ema_decay": 0.9, "checkpoint_every": 100, "sample_every": 100}
    straight = Trainer(tiny_config(family, model=model, steps=3, **extra), tmp_path / "straight", progress=False).fit()
    Trainer(tiny_config(family, model=model, steps=1, **extra), tmp_path / "resumed", progress=False).fit()
    resumed = Trainer(tiny_config(family, model=model, steps=3, **extra), tmp_path / "resumed", resume=True, progress=False).fit()
    expected, got = load_file(str(straight.weights)), load_file(str(resumed.weights))
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


# ----------------------------------------------------------------------------- genzoo sample with prompts


def test_sample_with_a_prompt_and_a_prompts_file(tiny_text_runs, tmp_path, capsys):
    run = tiny_text_runs["latent-diffusion"]
    code, out, err = cli(capsys, "sample", run, "--prompt", "a small red circle left of a large blue square", "-n", "4",
                         "-o", tmp_path / "one.png", "--guidance", "4")
    assert code == 0 and "wrote a grid of 4 samples" in out, err
    (tmp_path / "prompts.txt").write_text("a large green triangle\n\n  a small red triangle above a small blue circle  \n")
    code, out, err = cli(capsys, "sample", run, "--prompts", tmp_path / "prompts.txt", "-n", "3", "-o", tmp_path / "rows.png")
    assert code == 0 and "wrote a grid of 6 samples" in out, err
    width, height = Image.open(tmp_path / "rows.png").size
    assert width > 3 * 16 * 3 and height >= 2 * 16 * 3  # two rows of three images, three times enlarged, after the text
    code, out, err = cli(capsys, "sample", tiny_text_runs["gan-cls"], "--prompt", "a large green triangle", "-n", "2",
                         "-o", tmp_path / "gan.png")
    assert code == 0, err
