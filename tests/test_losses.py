"""Known answers for the loss terms and the DCGAN networks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genzoo.errors import ConfigError
from genzoo.losses import ADVERSARIAL_LOSSES, gaussian_kl, r1_penalty
from genzoo.nn import DownConvStack, UpConvStack, base_and_doublings


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@pytest.mark.parametrize("real_logit, fake_logit", [(0.0, 0.0), (2.0, -1.0), (-3.0, 4.0)])
def test_gan_objectives_match_goodfellow_eq1(real_logit, fake_logit):
    real, fake = torch.tensor([[real_logit]], dtype=torch.float64), torch.tensor([[fake_logit]], dtype=torch.float64)
    d_real, d_fake = sigmoid(real_logit), sigmoid(fake_logit)
    for name in ("minimax", "non-saturating"):
        loss_d_real, loss_d_fake = ADVERSARIAL_LOSSES.get(name).discriminator(real, fake)
        assert loss_d_real.item() == pytest.approx(-math.log(d_real), rel=1e-12)  # -log D(x)
        assert loss_d_fake.item() == pytest.approx(-math.log(1 - d_fake), rel=1e-12)  # -log(1 - D(G(z)))
    minimax = ADVERSARIAL_LOSSES.get("minimax").generator(fake).item()
    non_saturating = ADVERSARIAL_LOSSES.get("non-saturating").generator(fake).item()
    assert minimax == pytest.approx(math.log(1 - d_fake), rel=1e-12)  # G minimises log(1 - D(G(z)))
    assert non_saturating == pytest.approx(-math.log(d_fake), rel=1e-12)  # G maximises log D(G(z))


def test_hand_values_at_zero_logits():
    zero = torch.zeros(4, 1)
    loss_d_real, loss_d_fake = ADVERSARIAL_LOSSES.get("minimax").discriminator(zero, zero)
    assert loss_d_real.item() == pytest.approx(math.log(2)) and loss_d_fake.item() == pytest.approx(math.log(2))
    assert ADVERSARIAL_LOSSES.get("minimax").generator(zero).item() == pytest.approx(-math.log(2))
    assert ADVERSARIAL_LOSSES.get("non-saturating").generator(zero).item() == pytest.approx(math.log(2))


def test_minimax_saturates_where_non_saturating_does_not():
    # Goodfellow et al. Sec. 3: early on D rejects fakes confidently (logit -10); the minimax
    # generator loss then has a vanishing gradient, the non-saturating one does not.
    gradients = {}
    for name in ("minimax", "non-saturating"):
        logit = torch.tensor([[-10.0]], requires_grad=True)
        ADVERSARIAL_LOSSES.get(name).generator(logit).backward()
        gradients[name] = logit.grad.abs().item()
    assert gradients["minimax"] == pytest.approx(sigmoid(-10.0), rel=1e-5)  # about 4.5e-5
    assert gradients["non-saturating"] == pytest.approx(1 - sigmoid(-10.0), rel=1e-5)  # about 1


def test_gaussian_kl_closed_form():
    assert torch.equal(gaussian_kl(torch.zeros(3, 5), torch.zeros(3, 5)), torch.zeros(3))  # q = prior
    # mu = 1, sigma = 1: 1/2 (1 + 1 - 1 - 0) = 1/2 per dimension
    assert gaussian_kl(torch.ones(2, 4), torch.zeros(2, 4)).tolist() == [2.0, 2.0]
    mu, logvar = torch.randn(16, 8, dtype=torch.float64), torch.randn(16, 8, dtype=torch.float64)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(q, p).sum(1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), expected, rtol=1e-12, atol=1e-12)


def test_r1_penalty_of_a_linear_discriminator_is_its_squared_weight_norm():
    # D(x) = <w, x>: grad_x D = w for every x, so R1 = ||w||^2 exactly
    weight = torch.tensor([[1.0, -2.0, 0.5, 3.0]])
    discriminator = lambda x: x.flatten(1) @ weight.T  # noqa: E731  (B, 4) -> (B, 1)
    real = torch.randn(5, 1, 2, 2)
    assert r1_penalty(discriminator, real).item() == pytest.approx(1 + 4 + 0.25 + 9)
    # D(x) = sum x^2 / 2: grad = x, so R1 = mean_i ||x_i||^2
    assert r1_penalty(lambda x: 0.5 * x.flatten(1).pow(2).sum(1, keepdim=True), real).item() == pytest.approx(
        real.flatten(1).pow(2).sum(1).mean().item(), rel=1e-6)


@pytest.mark.parametrize("size, base, doublings", [(28, 7, 2), (32, 4, 3), (64, 4, 4), (16, 4, 2), (48, 6, 3)])
def test_dcgan_sizes(size, base, doublings):
    assert base_and_doublings(size) == (base, doublings)
    generator, discriminator = UpConvStack(10, size, 3, 8), DownConvStack(size, 3, 8, 1)
    images = generator(torch.randn(2, 10))
    assert images.shape == (2, 3, size, size) and images.abs().max() <= 1
    assert discriminator(images).shape == (2, 1)


@pytest.mark.parametrize("size", [9, 100, 4, 6])
def test_dcgan_refuses_sizes_it_cannot_build(size):
    with pytest.raises(ConfigError, match="data.image_size"):
        base_and_doublings(size)


def test_dcgan_follows_the_guidelines_and_pytorch_examples_sizes():
    generator, discriminator = UpConvStack(100, 64, 3, 64), DownConvStack(64, 3, 64, 1)
    layers = [type(m) for m in list(generator.modules()) + list(discriminator.modules())]
    assert nn.Linear not in layers and nn.MaxPool2d not in layers and nn.AvgPool2d not in layers  # no FC, no pooling
    assert layers.count(nn.ConvTranspose2d) == 5 and isinstance(generator.net[-1], nn.Tanh)
    assert any(isinstance(m, nn.ReLU) for m in generator.modules())
    assert any(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2 for m in discriminator.modules())
    assert not isinstance(discriminator.net[1], nn.BatchNorm2d)  # no batchnorm on the discriminator input layer
    # the pytorch/examples DCGAN: G 3,576,704 parameters; D 2,765,568 plus the final bias
    assert sum(p.numel() for p in generator.parameters()) == 3_576_704
    assert sum(p.numel() for p in discriminator.parameters()) == 2_765_569


def test_least_squares_wasserstein_and_hinge_hand_values():
    real, fake = torch.tensor([[1.5], [0.5]]), torch.tensor([[0.5], [-1.0]])
    lsgan, wgan, hinge = (ADVERSARIAL_LOSSES.get(n) for n in ("lsgan", "wgan", "hinge"))
    # LSGAN (Mao et al. Eq. 2, a=0, b=c=1): 1/2 mean (D(x)-1)^2 = 1/2 * (0.25 + 0.25) / 2; 1/2 mean D(G(z))^2
    assert [v.item() for v in lsgan.discriminator(real, fake)] == pytest.approx([0.125, 0.3125])
    assert lsgan.generator(fake).item() == pytest.approx(0.5 * (0.25 + 4.0) / 2)
    # WGAN: -E D(x), E D(G(z)); G: -E D(G(z))
    assert [v.item() for v in wgan.discriminator(real, fake)] == pytest.approx([-1.0, -0.25])
    assert wgan.generator(fake).item() == pytest.approx(0.25)
    # hinge: E max(0, 1 - D(x)) = (0 + 0.5) / 2, E max(0, 1 + D(G(z))) = (1.5 + 0) / 2
    assert [v.item() for v in hinge.discriminator(real, fake)] == pytest.approx([0.25, 0.75])
    assert hinge.generator(fake).item() == pytest.approx(0.25)
    assert lsgan.probability is False and wgan.weight_clip == 0.01
    assert ADVERSARIAL_LOSSES.get("wgan-gp").gradient_penalty == 10.0


def test_gradient_penalty_known_answers():
    from genzoo.losses import gradient_penalty

    real, fake = torch.randn(8, 1, 4, 4), torch.randn(8, 1, 4, 4)
    unit = torch.randn(16)
    unit = unit / unit.norm()
    # a linear critic D(x) = w.x has gradient w everywhere: penalty (||w|| - 1)^2
    assert gradient_penalty(lambda x: x.flatten(1) @ unit[:, None], real, fake).item() == pytest.approx(0.0, abs=1e-10)
    assert gradient_penalty(lambda x: x.flatten(1) @ (3 * unit)[:, None], real, fake).item() == pytest.approx(4.0, rel=1e-5)
    # D(x) = ||x||^2 / 2 has gradient x: penalty E(||x^|| - 1)^2 on the interpolates
    generator = torch.Generator().manual_seed(0)
    value = gradient_penalty(lambda x: 0.5 * x.flatten(1).pow(2).sum(1, keepdim=True), real, fake, generator=generator)
    eps = torch.rand(8, 1, 1, 1, generator=torch.Generator().manual_seed(0))
    interpolates = eps * real + (1 - eps) * fake
    expected = (interpolates.flatten(1).norm(dim=1) - 1).pow(2).mean()
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    # it stays in float32 under bf16 autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert gradient_penalty(lambda x: x.flatten(1) @ (3 * unit)[:, None], real, fake).dtype == torch.float32


def test_clip_weights_bounds_every_parameter():
    from genzoo.losses import clip_weights

    layer = nn.Linear(10, 10)
    nn.init.normal_(layer.weight, std=1.0)
    clip_weights(layer, 0.01)
    assert max(p.abs().max().item() for p in layer.parameters()) <= 0.01
