"""Image-to-image translation: pix2pix, CycleGAN, StarGAN, paired tasks, their metrics and `genzoo translate`.

Known answers: the PatchGAN's receptive field (measured from gradients), the U-Net's skip shapes, the
losses of each family with constant networks (hand values), the history pool against the paper's
sequential algorithm and its exact restore, the constant-then-linear rate, StarGAN's domain labels and
classification loss, SSIM against scikit-image and torchmetrics, and the translation metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_config
from PIL import Image
from safetensors.torch import load_file
from test_cli import genzoo as run_genzoo

import genzoo
from genzoo.api import make_trainer
from genzoo.config import DataConfig, build_config
from genzoo.data import build_dataset
from genzoo.data.tasks import degrade
from genzoo.errors import DataError, GenzooError
from genzoo.metrics import evaluate
from genzoo.metrics.paired import ssim
from genzoo.metrics.translation import DomainImages, image_source
from genzoo.models.base import DataInfo
from genzoo.models.cyclegan import CycleGAN, CycleGANConfig, HistoryPool
from genzoo.models.pix2pix import Pix2Pix, Pix2PixConfig, UNetGenerator, unet_depth
from genzoo.models.stargan import StarGAN, StarGANConfig, discriminator_layers
from genzoo.nn.image_to_image import PatchDiscriminator, constant_then_linear, patch_layers, receptive_field

PAIRED = DataInfo(channels=1, image_size=16, paired=True, domains=("noisy", "clean"))
UNPAIRED = DataInfo(channels=1, image_size=16, paired=False, domains=("Sneaker", "Ankle boot"))


def constant(conv: torch.nn.Module, value: float) -> None:
    """Make a last convolution output `value` everywhere (zero weights, bias value)."""
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.fill_(value)


# ----------------------------------------------------------------------------- networks


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_patchgan_receptive_field_is_9_2n_minus_2(layers):
    assert receptive_field(layers) == {1: 16, 2: 34, 3: 70}[layers] and receptive_field(5) == 286  # the paper's 16, 70, 286
    torch.manual_seed(0)
    side = 96 if layers < 3 else 128
    network = PatchDiscriminator(1, 2, layers, "batch").eval()  # running statistics: each score depends on its patch only
    x = torch.randn(1, 1, side, side, requires_grad=True)
    scores = network(x)  # (1, 1, h, w)
    h, w = scores.shape[-2:]
    scores[0, 0, h // 2, w // 2].backward()
    seen = x.grad[0, 0].abs() > 0  # (side, side): the pixels the centre score depends on
    rows, cols = seen.any(1).nonzero().flatten(), seen.any(0).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == receptive_field(layers) == cols.max() - cols.min() + 1


def test_patch_size_scales_with_the_image_as_70_of_256():
    assert [patch_layers(s) for s in (16, 28, 32, 64, 128, 256, 1024, 1100)] == [1, 1, 1, 1, 2, 3, 4, 5]
    assert receptive_field(patch_layers(256)) == 70  # the paper's PatchGAN at its 256 px


def test_unet_skips_join_encoder_and_decoder_maps_of_the_same_size():
    assert [unet_depth(s) for s in (256, 32, 28, 16)] == [8, 5, 4, 4]  # down to a 1 x 1 map
    generator = UNetGenerator(channels=1, width=4, depth=4, norm="batch", dropout=0.5, dropout_layers=2)
    shapes = {}
    for i, layer in enumerate(generator.encoder):
        layer.register_forward_hook(lambda m, inputs, out, i=i: shapes.__setitem__(f"down{i}", tuple(out.shape)))
    for j, (_, up, _) in enumerate(generator.decoder):
        up.register_forward_hook(lambda m, inputs, out, j=j: shapes.__setitem__(f"up{j}", (tuple(inputs[0].shape), tuple(out.shape))))
    out = generator(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 1, 28, 28) and out.abs().max() <= 1
    assert [shapes[f"down{i}"] for i in range(4)] == [(2, 4, 14, 14), (2, 8, 7, 7), (2, 16, 3, 3), (2, 32, 1, 1)]
    assert [shapes[f"up{j}"] for j in range(4)] == [  # each decoder input: the map below concatenated with the skip
        ((2, 32, 1, 1), (2, 16, 3, 3)), ((2, 32, 3, 3), (2, 8, 7, 7)), ((2, 16, 7, 7), (2, 4, 14, 14)),
        ((2, 8, 14, 14), (2, 1, 28, 28))]
    dropouts = [after[1].p for _, _, after in generator.decoder[:-1]]
    assert dropouts == [0.5, 0.5, 0.0]  # dropout on the first decoder layers only


def test_constant_then_linear_rate():
    assert [constant_then_linear(s, 200, 0.5) for s in (0, 99, 100, 150, 199)] == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.01])
    assert constant_then_linear(0, 10, 0.0) == 1.0 and constant_then_linear(9, 10, 1.0) == 1.0
    model = CycleGAN(CycleGANConfig(width=4, discriminator_width=4, blocks=1), UNPAIRED)
    scheduled = model.schedule(150, 200)
    assert scheduled.lr == {"generator": 0.5, "discriminator": 0.5} and scheduled.values == {"lr_factor": 0.5}


# ----------------------------------------------------------------------------- pix2pix


def test_pix2pix_losses_with_constant_networks():
    model = Pix2Pix(Pix2PixConfig(width=4, discriminator_width=4), PAIRED)
    constant(model.generator.decoder[-1][1], math.atanh(0.5))  # G(a) = 0.5
    constant(model.discriminator.net[-1], 0.0)  # D = 0: sigma(0) = 1/2
    a, b = torch.rand(4, 1, 16, 16), torch.zeros(4, 1, 16, 16)
    g = model("generator", {"a": a, "b": b})
    assert torch.allclose(g["loss_l1"], torch.tensor(0.5)) and torch.allclose(g["loss_g"], torch.tensor(math.log(2)))
    assert torch.allclose(g["total"], torch.tensor(100 * 0.5 + math.log(2)))  # lambda = 100
    d = model("discriminator", {"a": a, "b": b})
    assert torch.allclose(d["total"], torch.tensor(math.log(2)))  # (log 2 + log 2) / 2: the objective halved for D
    assert [p.name for p in model.phases] == ["discriminator", "generator"]
    l1_only = Pix2Pix(Pix2PixConfig(width=4, discriminator_width=4, adversarial_weight=0), PAIRED)
    assert [p.name for p in l1_only.phases] == ["generator"] and "loss_g" not in l1_only("generator", {"a": a, "b": b})
    unconditional = Pix2Pix(Pix2PixConfig(width=4, discriminator_width=4, conditional_discriminator=False), PAIRED)
    assert unconditional.discriminator.net[0].in_channels == 1 and model.discriminator.net[0].in_channels == 2


def test_pix2pix_refuses_unpaired_domains_and_the_other_direction():
    with pytest.raises(GenzooError, match="paired images"):
        Pix2Pix(Pix2PixConfig(width=4), UNPAIRED)
    model = Pix2Pix(Pix2PixConfig(width=4, discriminator_width=4), PAIRED).eval()
    x = torch.rand(2, 1, 16, 16)
    assert torch.equal(model.translate(x, to="clean"), model.translate(x, to=1))  # deterministic: dropout off
    with pytest.raises(GenzooError, match=r"noisy \(a\) -> clean \(b\) only"):
        model.translate(x, to="a")
    with pytest.raises(Exception, match="penalty or clipping"):
        Pix2PixConfig(objective="wgan-gp")


# ----------------------------------------------------------------------------- CycleGAN


def test_cycle_identity_and_adversarial_losses_with_constant_networks():
    model = CycleGAN(CycleGANConfig(width=4, discriminator_width=4, blocks=1), UNPAIRED)
    constant(model.generator_ab.head[0], math.atanh(0.5))  # G(x) = 0.5
    constant(model.generator_ba.head[0], math.atanh(-0.5))  # F(x) = -0.5
    for discriminator in (model.discriminator_a, model.discriminator_b):
        constant(discriminator.net[-1], 0.25)  # D = 0.25 everywhere
    a, b = torch.zeros(2, 1, 16, 16), torch.ones(2, 1, 16, 16)
    g = model("generator", {"a": a, "b": b})
    # cycles: |F(G(a)) - a| = |-0.5 - 0| and |G(F(b)) - b| = |0.5 - 1|; identity: |G(b) - b| = 0.5, |F(a) - a| = 0.5
    for key in ("loss_cycle_a", "loss_cycle_b", "loss_identity_a", "loss_identity_b"):
        assert torch.allclose(g[key], torch.tensor(0.5)), key
    assert torch.allclose(g["loss_gan_ab"], torch.tensor(0.5625)) and torch.allclose(g["loss_gan_ba"], torch.tensor(0.5625))
    assert torch.allclose(g["total"], torch.tensor(2 * 0.5625 + 10 * 1.0 + 0.5 * 10 * 1.0))  # lambda 10, identity 0.5 lambda
    d = model("discriminator", {"a": a, "b": b})  # 1/2 (0.25 - 1)^2 + 1/2 0.25^2 for each D
    assert torch.allclose(d["loss_d_a"], torch.tensor(0.3125)) and torch.allclose(d["total"], torch.tensor(0.625))
    plain = CycleGAN(CycleGANConfig(width=4, discriminator_width=4, blocks=1, cycle_weight=0, identity_weight=0), UNPAIRED)
    assert set(plain("generator", {"a": a, "b": b})) == {"total", "loss_gan_ab", "loss_gan_ba"}


def test_cyclegan_discriminators_learn_from_the_generators_images_of_the_same_step():
    torch.manual_seed(0)
    model = CycleGAN(CycleGANConfig(width=4, discriminator_width=4, blocks=1), UNPAIRED)
    a, b = torch.rand(3, 1, 16, 16), torch.rand(3, 1, 16, 16)
    model("generator", {"a": a, "b": b})
    made = model._fakes[0].clone()  # G(a) of the generator phase
    with torch.no_grad():
        for p in model.generator_ab.parameters():
            p.add_(1.0)  # the generator's update after its phase
    model("discriminator", {"a": a, "b": b})
    assert torch.equal(model.pool_b.images[:3], made) and model._fakes is None


def sequential_pool(stored: list, count: int, size: int, fakes: torch.Tensor, u: torch.Tensor, slot: torch.Tensor):
    """The paper's pool, one image at a time (as the authors' ImagePool.query), with the same draws."""
    returned = []
    for image, coin, j in zip(fakes, u.tolist(), slot.tolist()):
        if count < size:
            stored[count] = image.clone()
            count += 1
            returned.append(image)
        elif coin > 0.5:
            returned.append(stored[j].clone())
            stored[j] = image.clone()
        else:
            returned.append(image)
    return torch.stack(returned), count


def test_history_pool_returns_and_stores_what_the_sequential_algorithm_does():
    size = 5
    pool = HistoryPool(size, 1, 2)
    stored, count = [torch.zeros(1, 2, 2) for _ in range(size)], 0
    value = 0
    for batch in (2, 2, 3, 1, 7, 4, 6, 2, 9):  # filling, full, batches larger than the pool
        fakes = torch.arange(value, value + batch, dtype=torch.float32)[:, None, None, None].expand(batch, 1, 2, 2)
        value += batch
        state = torch.get_rng_state()
        u, slot = torch.rand(batch), torch.randint(0, size, (batch,))  # the draws the pool makes
        torch.set_rng_state(state)
        got = pool(fakes)
        expected, count = sequential_pool(stored, count, size, fakes, u, slot)
        assert torch.equal(got, expected)
        assert torch.equal(pool.images, torch.stack(stored)) and int(pool.count) == count
    assert int(pool.count) == size and set(pool.images[:, 0, 0, 0].tolist()) <= set(range(value))


def test_history_pool_small_example():
    pool = HistoryPool(2, 1, 1)
    first = pool(torch.tensor([1.0, 2.0]).view(2, 1, 1, 1))
    assert first.flatten().tolist() == [1.0, 2.0] and pool.images.flatten().tolist() == [1.0, 2.0]  # while filling: stored and returned
    torch.manual_seed(3)
    u, slot = torch.rand(4), torch.randint(0, 2, (4,))
    torch.manual_seed(3)
    out = pool(torch.tensor([3.0, 4.0, 5.0, 6.0]).view(4, 1, 1, 1)).flatten().tolist()
    stored = {0: 1.0, 1: 2.0}
    for i, new in enumerate([3.0, 4.0, 5.0, 6.0]):  # by hand
        if u[i] > 0.5:
            assert out[i] == stored[int(slot[i])]
            stored[int(slot[i])] = new
        else:
            assert out[i] == new
    assert pool.images.flatten().tolist() == [stored[0], stored[1]]
    assert HistoryPool(0, 1, 1)(torch.ones(2, 1, 1, 1)).tolist() == torch.ones(2, 1, 1, 1).tolist()  # pool_size 0: no history


def test_the_pool_is_saved_with_the_weights_and_a_resumed_run_equals_a_straight_one(tmp_path):
    extra = {"checkpoint_every": 100, "ema_decay": 0.5}
    model = {"pool_size": 12}  # the 8-image batches fill it at step 2, then swap
    straight = make_trainer(tiny_config("cyclegan", model, steps=4, **extra), tmp_path / "straight", progress=False).fit()
    make_trainer(tiny_config("cyclegan", model, steps=2, **extra), tmp_path / "resumed", progress=False).fit()
    halfway = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert int(halfway["pool_b.count"]) == 12 and halfway["pool_b.images"].abs().sum() > 0
    resumed = make_trainer(tiny_config("cyclegan", model, steps=4, **extra), tmp_path / "resumed", resume=True,
                           progress=False).fit()
    expected, got = load_file(str(straight.weights)), load_file(str(resumed.weights))
    assert expected.keys() == got.keys() and not torch.equal(halfway["pool_b.images"], got["pool_b.images"])
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


# ----------------------------------------------------------------------------- StarGAN


def test_stargan_domain_labels_and_classification_loss():
    info = DataInfo(channels=1, image_size=16, num_classes=3, class_names=("Sandal", "Sneaker", "Ankle boot"))
    model = StarGAN(StarGANConfig(width=4, discriminator_width=4, blocks=1), info)
    assert discriminator_layers(128) == 6 and discriminator_layers(32) == 4 and discriminator_layers(28) == 3
    seen = []
    model.generator.stem.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0]))
    x = torch.rand(4, 1, 16, 16)
    model.eval()
    by_name = model.translate(x, to="sneaker")
    assert seen[-1].shape == (4, 1 + 3, 16, 16) and torch.equal(seen[-1][:, :1], x)
    assert (seen[-1][:, 1:] == torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1)).all()  # one-hot c over every pixel
    assert torch.equal(by_name, model.translate(x, to=1)) and torch.equal(by_name, model.translate(x, to=torch.ones(4, dtype=torch.long)))
    mixed = model.translate(x, to=torch.tensor([0, 1, 2, 1]))
    assert torch.equal(mixed[1], by_name[1]) and not torch.equal(mixed[0], by_name[0])
    for bad, message in (("Boots", "not a domain"), (3, "not a domain"), (torch.tensor([0, 3, 0, 0]), r"\[0, 2\]"),
                         (torch.tensor([0, 1]), "2 target domains for 4 images")):
        with pytest.raises(GenzooError, match=message):
            model.translate(x, to=bad)
    constant_head = model.discriminator.domain
    with torch.no_grad():
        constant_head.weight.zero_()  # logits 0 for every domain: cross-entropy log K
    model.train()
    batch = {"image": x, "label": torch.tensor([0, 1, 2, 1])}
    d = model("discriminator", batch)
    g = model("generator", batch)
    assert torch.allclose(d["loss_d_class"], torch.tensor(math.log(3))) and torch.allclose(g["loss_g_class"], torch.tensor(math.log(3)))
    targets = model.target_domains(batch["label"])
    assert sorted(targets.tolist()) == [0, 1, 1, 2]  # a permutation of the batch's domains
    with pytest.raises(GenzooError, match="labelled dataset"):
        StarGAN(StarGANConfig(), DataInfo(channels=1, image_size=16))


def test_stargan_reconstruction_goes_back_to_the_original_domain():
    torch.manual_seed(0)
    info = DataInfo(channels=1, image_size=16, num_classes=2)
    model = StarGAN(StarGANConfig(width=4, discriminator_width=4, blocks=1), info)
    x, labels = torch.rand(3, 1, 16, 16), torch.tensor([0, 1, 1])
    torch.manual_seed(5)
    losses = model("generator", {"image": x, "label": labels})
    torch.manual_seed(5)
    target = model.target_domains(labels)
    back = model.generate_from(model.generate_from(x, target), labels)
    assert torch.allclose(losses["loss_reconstruction"], (x - back).abs().mean())


# ----------------------------------------------------------------------------- paired tasks and classes


def test_paired_tasks_keep_each_pair_aligned():
    plain = build_dataset(DataConfig(name="fake", image_size=16, max_images=32))
    for task in ("superres", "inpaint", "denoise"):
        data = build_dataset(DataConfig(name="fake", image_size=16, max_images=32, task=task))
        assert data.keys == ("a", "b", "index") and data.info.paired and data.info.domains[1] == "fake"
        assert torch.equal(data.images_b, plain.images)
        indices = torch.tensor([5, 0, 31])
        batch = data.batch(indices)  # a[i] is the degraded b[i], whatever the order
        assert torch.equal(((batch["a"] + 1) * 127.5).round().to(torch.uint8), degrade(plain.images[indices], task)) or task == "denoise"
        assert torch.equal(batch["b"], plain.batch(indices)["image"])
    inpaint = build_dataset(DataConfig(name="fake", image_size=16, max_images=32, task="inpaint"))
    assert (inpaint.images_a[:, :, 4:12, 4:12] == 128).all() and torch.equal(inpaint.images_a[:, :, :4], plain.images[:, :, :4])
    flat = torch.full((2, 1, 16, 16), 77, dtype=torch.uint8)
    assert (degrade(flat, "superres") == 77).all()  # a flat image stays flat through the x4 down- and up-sampling
    again = build_dataset(DataConfig(name="fake", image_size=16, max_images=32, task="denoise"))
    assert torch.equal(again.images_a, build_dataset(DataConfig(name="fake", image_size=16, max_images=32, task="denoise")).images_a)
    swapped = build_dataset(DataConfig(name="fake", image_size=16, max_images=32, task="superres", direction="BtoA"))
    assert torch.equal(swapped.images_a, plain.images) and swapped.info.domains == ("fake", "low-res")
    colour = build_dataset(DataConfig(name="fake", image_size=16, max_images=4, channels=3, task="grey"))
    assert torch.equal(colour.images_a[:, 0], colour.images_a[:, 2])
    with pytest.raises(DataError, match="needs colour images"):
        build_dataset(DataConfig(name="fake", image_size=16, max_images=4, task="grey"))
    with pytest.raises(DataError, match="does not go with"):
        build_dataset(DataConfig(name="fake", image_size=16, max_images=4, task="edges", domains=(0, 1)))


def test_classes_keep_and_relabel():
    data = build_dataset(DataConfig(name="fashion-mnist-sample", classes=("ankle boot", 5), max_images=600))
    full = build_dataset(DataConfig(name="fashion-mnist-sample", max_images=600))
    assert data.info.num_classes == 2 and data.info.class_names == ("Ankle boot", "Sandal")
    assert torch.equal(data.images, full.images[(full.labels == 9) | (full.labels == 5)])
    assert torch.equal(data.labels, (full.labels[(full.labels == 9) | (full.labels == 5)] == 5).long())
    for bad, message in ((("Boots", 5), "not a class"), ((5,), "at least two"), ((5, "sandal"), "same class twice")):
        with pytest.raises(DataError, match=message):
            build_dataset(DataConfig(name="fashion-mnist-sample", classes=bad, max_images=600))


# ----------------------------------------------------------------------------- metrics


def test_ssim_agrees_with_scikit_image_and_torchmetrics():
    from skimage.metrics import structural_similarity
    from torchmetrics.functional.image import structural_similarity_index_measure

    generator = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, 20, 24, generator=generator, dtype=torch.float64)
    y = (x + 0.2 * torch.randn(x.shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    ours = ssim(x, y)
    for i in range(3):
        reference = structural_similarity(x[i].numpy(), y[i].numpy(), channel_axis=0, gaussian_weights=True, sigma=1.5,
                                          use_sample_covariance=False, data_range=1.0)
        assert abs(ours[i].item() - reference) < 1e-9
    _, full = structural_similarity_index_measure(y, x, data_range=1.0, return_full_image=True, reduction="none")
    interior = full[..., 5:-5, 5:-5].flatten(1).mean(1)  # torchmetrics averages over reflect-padded borders too
    assert torch.allclose(ours, interior, atol=1e-9, rtol=0)
    assert torch.allclose(ssim(x, x), torch.ones(3, dtype=torch.float64))
    with pytest.raises(GenzooError, match="at least 11"):
        ssim(x[..., :8, :8], y[..., :8, :8])


@pytest.fixture(scope="module")
def fashion_runs(tmp_path_factory):
    """A CycleGAN on two Fashion-MNIST classes and a pix2pix on super-resolution pairs, 1 step each."""
    root = tmp_path_factory.mktemp("translation-runs")
    tiny = {"steps": 1, "batch_size": 4, "log_every": 1, "sample_every": 1, "checkpoint_every": 1, "num_preview": 4}
    runs = {}
    for name, family, data in (("cyclegan", "cyclegan", {"domains": ["Sneaker", "Ankle boot"]}),
                               ("pix2pix", "pix2pix", {"task": "superres"})):
        config = build_config({"family": family, "model": {"width": 4, "discriminator_width": 4} | ({"blocks": 1} if family == "cyclegan" else {}),
                               "data": {"name": "fashion-mnist-sample", "max_images": 400, **data}, "train": tiny})
        runs[name] = make_trainer(config, root / name, progress=False).fit().path
    return runs


def test_translations_are_scored_against_the_domain_they_go_to(fashion_runs):
    model = genzoo.load(fashion_runs["cyclegan"])
    data = build_dataset(DataConfig(name="fashion-mnist-sample", domains=("Sneaker", "Ankle boot")))  # as evaluate reads it
    source = image_source(model, data, 30, 8, seed=0)
    assert isinstance(source.real, DomainImages) and torch.equal(source.real.images, data.images_b) and source.count == 30
    assert "translated from domain a ('Sneaker') to b ('Ankle boot')" in source.protocol["fake"]
    fakes = torch.cat(list(source.batches()))
    order = torch.randperm(len(data.images), generator=torch.Generator().manual_seed(0))[:30]
    assert torch.equal(fakes, model.translate(data.images[order].float() / 127.5 - 1, to="b"))
    back = image_source(model, data, 1000, 64, seed=0, to="a")
    assert back.count == len(data.images_b) and torch.equal(back.real.images, data.images)  # at most every image of b
    scores = {s.name: s for s in evaluate(fashion_runs["cyclegan"], ["fid", "cycle", "domain-accuracy"], num_samples=200,
                                          use_cache=False)}
    assert scores["fid-fmnist"].protocol["translation"] == "a->b" and scores["fid-fmnist"].protocol["n_fake"] == 200
    x = data.images[torch.randperm(len(data.images), generator=torch.Generator().manual_seed(0))[:200]].float() / 127.5 - 1
    cycle = ((model.translate(model.translate(x, to="b"), to="a") - x) / 2).abs().mean()
    assert abs(scores["cycle-l1-a"].value - cycle.item()) < 1e-6 and 0 <= scores["domain-accuracy-fmnist-b"].value <= 1


def test_paired_metric_scores_each_output_against_its_own_target(fashion_runs):
    run = fashion_runs["pix2pix"]
    scores = {s.name: s for s in evaluate(run, ["paired"], num_samples=50, use_cache=False)}
    model = genzoo.load(run)
    data = build_dataset(build_config(genzoo.api.RunFolder(run).read_config()).data.model_copy(update={"max_images": None}))
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:50]
    batch = data.batch(order)
    u, u_hat = (batch["b"].double() + 1) / 2, (model.translate(batch["a"]).double() + 1) / 2
    assert abs(scores["l1"].value - (u - u_hat).abs().mean().item()) < 1e-9
    assert abs(scores["psnr"].value - 10 * math.log10(1 / (u - u_hat).pow(2).mean().item())) < 1e-6
    assert abs(scores["ssim"].value - ssim(u_hat, u).mean().item()) < 1e-9 and scores["l1"].protocol["n_fake"] == 50
    with pytest.raises(GenzooError, match="paired data"):
        evaluate(fashion_runs["cyclegan"], ["paired"], num_samples=50, use_cache=False)
    with pytest.raises(GenzooError, match="both ways"):
        evaluate(run, ["cycle"], num_samples=50, use_cache=False)


def test_report_pictures_and_evaluation_during_training(fashion_runs, tmp_path):
    assert sorted(p.name for p in (fashion_runs["cyclegan"] / "pictures").iterdir()) == ["cycles.png", "swaps.png"]
    assert Image.open(fashion_runs["cyclegan"] / "pictures" / "cycles.png").size[0] == 6 * 29 + 1  # 6 columns of 28 px
    assert sorted(p.name for p in (fashion_runs["pix2pix"] / "pictures").iterdir()) == ["translations.png"]
    config = tiny_config("stargan", steps=2, eval_every=2, eval_metrics=["kid", "cycle"], eval_samples=16, eval_real=32)
    run = make_trainer(config, tmp_path / "stargan", progress=False).fit().path
    record = [line for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert '"cycle-l1"' in record and "translated to another domain" in record
    assert (run / "pictures" / "translations.png").is_file()


# ----------------------------------------------------------------------------- genzoo translate


def test_translate_command_writes_each_input_translated(fashion_runs, tmp_path, capsys):
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 30), dtype=np.uint8)).save(inputs / "x.jpg")
    Image.fromarray(rng.integers(0, 255, (28, 28, 3), dtype=np.uint8)).save(inputs / "sub" / "y.png")
    code, out, err = run_genzoo(capsys, "translate", fashion_runs["cyclegan"], inputs, "--to", "a", "-o", tmp_path / "out",
                            "--grid", tmp_path / "grid.png")
    assert code == 0, err
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png")) == ["sub/y.png", "x.png"]
    model = genzoo.load(fashion_runs["cyclegan"])
    from genzoo.translation import read_images

    expected = model.translate(read_images([inputs / "x.jpg"], 1, 28), to="a")
    written = torch.from_numpy(np.array(Image.open(tmp_path / "out" / "x.png").convert("L"))).float()
    assert (written - ((expected[0, 0] + 1) / 2 * 255)).abs().max() <= 1  # 8-bit rounding
    assert (tmp_path / "grid.png").is_file() and "wrote 2 translated images" in out
