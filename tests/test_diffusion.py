"""The diffusion family beyond the contract: schedules, the forward process, prediction targets,
samplers against analytic denoisers, classifier-free guidance, the U-Net, and bad input."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import tiny_config
from PIL import Image

from test_cli import genzoo
from genzoo.config import build_config
from genzoo.errors import ConfigError, GenzooError
from genzoo.models.ddpm import (
    Schedule,
    classifier_free_guidance,
    cosine_betas,
    ddim_sample,
    ddpm_sample,
    guided,
    linear_betas,
    q_sample,
    timestep_sequence,
    to_target,
    to_x0_eps,
)
from genzoo.models.base import DataInfo
from genzoo.nn.unet import UNet
from genzoo.registry import MODELS
from genzoo.api import make_trainer



def tiny_model(**model):
    """The tiny ddpm of the contract test (T = 10) on 16 px grey images of 2 classes, in eval mode."""
    config = tiny_config("ddpm", model=model)
    return MODELS.get("ddpm")(config.model, DataInfo(channels=1, image_size=16, num_classes=2)).eval()


# ----------------------------------------------------------------------------- schedules


def test_linear_schedule_alpha_bar_is_the_product_of_one_minus_beta():
    alpha_bar = Schedule(linear_betas(1000)).alpha_bar
    expected, product = [], 1.0
    for t in range(1000):  # beta_t = 1e-4 + (0.02 - 1e-4) * t / 999, Ho et al. Sec. 4
        product *= 1 - (1e-4 + (0.02 - 1e-4) * t / 999)
        expected.append(product)
    torch.testing.assert_close(alpha_bar, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=0)
    assert alpha_bar[0].item() == pytest.approx(1 - 1e-4, abs=1e-15)
    assert alpha_bar[-1].item() == pytest.approx(4.0358e-05, rel=1e-4)  # abar_T: x_T is almost pure noise
    assert alpha_bar[499].item() == pytest.approx(0.078587, rel=1e-4)


def test_cosine_schedule_alpha_bar_is_f_t_over_f_0_until_the_clip():
    T, s = 1000, 0.008
    betas = cosine_betas(T)
    alpha_bar = Schedule(betas).alpha_bar
    f = [math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2 for t in range(T + 1)]
    expected = torch.tensor([f[t] / f[0] for t in range(1, T + 1)], dtype=torch.float64)  # abar at paper's t = 1..T
    clipped = betas >= 0.999
    assert betas.max() <= 0.999 and clipped.sum() == 1 and clipped[-1]  # only beta_T reaches the clip
    torch.testing.assert_close(alpha_bar[:-1], expected[:-1], rtol=1e-9, atol=1e-15)
    assert alpha_bar[0].item() == pytest.approx(f[1] / f[0]) and 0 < alpha_bar[-1] < 1e-7
    assert (alpha_bar[1:] < alpha_bar[:-1]).all()


def test_timestep_sequences():
    assert timestep_sequence(1000, 1000) == list(range(999, -1, -1))
    assert timestep_sequence(1000, 1) == [999]
    assert timestep_sequence(1000, 4) == [999, 666, 333, 0]
    ten = timestep_sequence(1000, 10)
    assert len(set(ten)) == 10 and ten[0] == 999 and ten[-1] == 0
    for steps in (0, 1001):
        with pytest.raises(GenzooError, match="between 1 and the schedule's T = 1000"):
            timestep_sequence(1000, steps)


# ----------------------------------------------------------------------------- forward process and targets


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_q_sample_has_mean_sqrt_abar_x0_and_variance_one_minus_abar(schedule):
    alpha_bar = Schedule.named(schedule, 1000).alpha_bar
    x0 = torch.tensor([-1.0, -0.3, 0.5, 1.0]).view(1, 4, 1, 1).expand(40_000, 4, 1, 1)  # 40k draws of 4 pixels
    for t in (0, 250, 600, 999):
        x_t = q_sample(x0, torch.full((40_000,), t), torch.randn(x0.shape), alpha_bar)  # (N, 4, 1, 1)
        abar = alpha_bar[t].item()
        mean, var = x_t.mean(0).flatten(), x_t.var(0).flatten()
        standard_error = math.sqrt((1 - abar) / 40_000)
        assert torch.allclose(mean, math.sqrt(abar) * x0[0].flatten(), atol=5 * standard_error + 1e-6), (t, mean)
        assert torch.allclose(var, torch.full((4,), 1 - abar), rtol=0.05, atol=1e-6), (t, var)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_prediction_targets_convert_exactly(prediction):
    generator = torch.Generator().manual_seed(1)
    x0 = torch.rand(6, 1, 4, 4, generator=generator, dtype=torch.float64) * 2 - 1
    eps = torch.randn(6, 1, 4, 4, generator=generator, dtype=torch.float64)
    abar = Schedule.named("cosine", 1000).alpha_bar[torch.tensor([0, 10, 300, 600, 900, 998])].view(-1, 1, 1, 1)
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
    target = to_target(x0, eps, abar, prediction)
    if prediction == "v":  # Salimans & Ho (2022): v = sqrt(abar) eps - sqrt(1 - abar) x0
        torch.testing.assert_close(target, abar.sqrt() * eps - (1 - abar).sqrt() * x0)
    x0_back, eps_back = to_x0_eps(target, x_t, abar, prediction)
    torch.testing.assert_close(x0_back, x0, rtol=0, atol=1e-9)
    torch.testing.assert_close(eps_back, eps, rtol=0, atol=1e-9)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_training_loss_is_the_mse_on_the_target(prediction, tmp_path):
    model = tiny_model(prediction=prediction)
    x0 = torch.rand(5, 1, 16, 16) * 2 - 1
    torch.manual_seed(7)
    loss = model("main", {"image": x0})["total"]
    torch.manual_seed(7)  # the same t and eps, drawn in the same order
    t = torch.randint(0, 10, (5,))
    eps = torch.randn_like(x0)
    abar = model.alpha_bar[t].view(-1, 1, 1, 1)
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
    target = {"eps": eps, "x0": x0, "v": abar.sqrt() * eps - (1 - abar).sqrt() * x0}[prediction]
    torch.testing.assert_close(loss, ((model.denoiser(x_t, t) - target) ** 2).mean())


# ----------------------------------------------------------------------------- samplers


def one_point_denoiser(x_star: torch.Tensor, schedule: Schedule):
    """The exact eps of data that is the single point x*: eps = (x_t - sqrt(abar) x*) / sqrt(1 - abar)."""
    alpha_bar = schedule.alpha_bar

    def denoiser(x_t, t):
        abar = alpha_bar[t].view(-1, 1, 1, 1)
        return (x_t - abar.sqrt() * x_star) / (1 - abar).sqrt()

    return denoiser


def gaussian_denoiser(std: float, schedule: Schedule):
    """The exact eps of data N(0, std^2 I): E[eps | x_t] = sqrt(1 - abar) x_t / (abar std^2 + 1 - abar)."""
    alpha_bar = schedule.alpha_bar

    def denoiser(x_t, t):
        abar = alpha_bar[t].view(-1, 1, 1, 1)
        return (1 - abar).sqrt() * x_t / (abar * std**2 + 1 - abar)

    return denoiser


SAMPLER_SETTINGS = [("ddpm", 1000, None), ("ddpm", 20, None), ("ddim", 1, 0.0), ("ddim", 10, 0.0), ("ddim", 50, 0.0),
                    ("ddim", 1000, 0.0), ("ddim", 10, 1.0), ("ddim", 50, 1.0), ("ddim", 25, 0.5)]


@pytest.mark.parametrize("schedule_name", ["linear", "cosine"])
def test_every_sampler_returns_the_point_of_a_one_point_dataset(schedule_name):
    schedule = Schedule.named(schedule_name, 1000)
    x_star = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 1.8 - 0.9
    denoiser = one_point_denoiser(x_star, schedule)  # in float64: the last abar of the cosine schedule is 1e-8
    noise = torch.randn(8, 3, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for sampler, steps, eta in SAMPLER_SETTINGS:
        generator = torch.Generator().manual_seed(2)
        if sampler == "ddpm":
            x = ddpm_sample(denoiser, schedule, noise, steps, generator=generator)
        else:
            x = ddim_sample(denoiser, schedule, noise, steps, eta=eta, generator=generator)
        torch.testing.assert_close(x, x_star.expand_as(x), rtol=0, atol=1e-9, msg=f"{sampler} {steps} eta={eta}")


def ddim_gaussian_std(std: float, schedule: Schedule, steps: int) -> float:
    """The exact std of DDIM (eta = 0) samples from x_T ~ N(0, I) for data N(0, std^2): with the exact
    denoiser x0_hat = k x_t and eps_hat = m x_t, each step scales x by sqrt(abar_s) k + sqrt(1 - abar_s) m."""
    alpha_bar, scale = schedule.alpha_bar.tolist(), 1.0
    sequence = timestep_sequence(schedule.timesteps, steps)
    for t, s in zip(sequence, sequence[1:] + [-1]):
        a_t, a_s = alpha_bar[t], alpha_bar[s] if s >= 0 else 1.0
        k, m = math.sqrt(a_t) * std**2 / (a_t * std**2 + 1 - a_t), math.sqrt(1 - a_t) / (a_t * std**2 + 1 - a_t)
        scale *= math.sqrt(a_s) * k + math.sqrt(1 - a_s) * m
    return scale


def test_samplers_reproduce_a_gaussian_dataset():
    schedule, std = Schedule.named("linear", 1000), 0.3
    denoiser = gaussian_denoiser(std, schedule)
    noise = torch.randn(4000, 1, 2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for steps in (10, 50, 1000):  # DDIM is linear in x_T here: its output is exactly noise times the analytic factor
        sample = ddim_sample(denoiser, schedule, noise, steps, eta=0.0)
        inside = noise.abs() < 3  # beyond, the [-1, 1] clip of the predicted x0 and of the output acts
        torch.testing.assert_close(sample[inside], noise[inside] * ddim_gaussian_std(std, schedule, steps), rtol=1e-9, atol=1e-12)
    assert ddim_gaussian_std(std, schedule, 1000) == pytest.approx(std, rel=0.01)  # few steps shrink it (0.18 at 10)
    for sample in (ddpm_sample(denoiser, schedule, noise, generator=torch.Generator().manual_seed(1)),
                   ddim_sample(denoiser, schedule, noise, 1000, eta=1.0, generator=torch.Generator().manual_seed(1))):
        assert abs(sample.mean().item()) < 0.01
        assert sample.std().item() == pytest.approx(std, rel=0.03)  # the posterior variance of Eq. 7 is a little small


def test_ddim_with_eta_zero_is_deterministic_and_eta_one_is_ddpm():
    torch.manual_seed(0)
    network = UNet(1, 8, width=8, multipliers=(1, 2), blocks_per_level=1, attention_resolutions=(4,)).eval()
    for parameter in network.parameters():  # away from the zero initialisation, so the output depends on the input
        parameter.data.add_(0.1 * torch.randn_like(parameter))
    schedule = Schedule.named("linear", 40)
    denoiser = lambda x, t: network(x, t)  # noqa: E731
    noise = torch.randn(3, 1, 8, 8)
    first = ddim_sample(denoiser, schedule, noise, 10, eta=0.0, generator=torch.Generator().manual_seed(1))
    second = ddim_sample(denoiser, schedule, noise, 10, eta=0.0, generator=torch.Generator().manual_seed(2))
    assert torch.equal(first, second)
    assert not torch.allclose(first, ddim_sample(denoiser, schedule, noise + 0.1, 10, eta=0.0), atol=1e-3)
    noisy = [ddim_sample(denoiser, schedule, noise, 10, eta=1.0, generator=torch.Generator().manual_seed(s)) for s in (1, 2)]
    assert not torch.allclose(noisy[0], noisy[1], atol=1e-3)
    for steps in (40, 10):  # Song et al. Sec. 4.1: eta = 1 is the (respaced) DDPM posterior
        ddpm = ddpm_sample(denoiser, schedule, noise, steps, generator=torch.Generator().manual_seed(1))
        ddim = ddim_sample(denoiser, schedule, noise, steps, eta=1.0, generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(ddpm, ddim, rtol=0, atol=1e-4)


def test_samplers_match_diffusers_schedulers_step_for_step():
    diffusers = pytest.importorskip("diffusers")  # the `test` extra: runs in `make test` (test_tooling.py checks)
    T = 50
    schedule = Schedule(torch.linspace(1e-4, 0.02, T, dtype=torch.float32).double())  # diffusers' float32 betas
    x_star = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(0)) * 2.4 - 1.2  # outside [-1, 1]: clipping acts
    denoiser = one_point_denoiser(x_star, Schedule(schedule.betas.float()))
    noise = torch.randn(6, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    noise = noise + 0.3 * torch.randn(noise.shape, generator=torch.Generator().manual_seed(9))  # not the model's own noise
    for scheduler, ours in (
        (diffusers.DDIMScheduler(num_train_timesteps=T, clip_sample=True, set_alpha_to_one=True, timestep_spacing="linspace"),
         lambda d: ddim_sample(d, schedule, noise, T, eta=0.0)),
        (diffusers.DDPMScheduler(num_train_timesteps=T, clip_sample=True, variance_type="fixed_small"),
         lambda d: ddpm_sample(d, schedule, noise, T, generator=torch.Generator().manual_seed(5))),
    ):
        wrong = lambda x, t: denoiser(x, t) + 0.1 * torch.sin(3 * x)  # noqa: E731  (an imperfect denoiser)
        scheduler.set_timesteps(T)
        x, generator = noise.clone(), torch.Generator().manual_seed(5)
        options = {"use_clipped_model_output": True} if isinstance(scheduler, diffusers.DDIMScheduler) else {}
        for t in scheduler.timesteps:
            x = scheduler.step(wrong(x, torch.full((6,), int(t))), t, x, generator=generator, **options).prev_sample
        torch.testing.assert_close(ours(wrong), x.clamp(-1, 1), rtol=0, atol=2e-5)


# ----------------------------------------------------------------------------- the model and guidance


def _perturbed(model):
    for parameter in model.parameters():  # away from the zero initialisation, as after training
        parameter.data.add_(0.05 * torch.randn_like(parameter))
    return model.eval()


@pytest.fixture
def conditional_model():
    return _perturbed(tiny_model(conditional=True))


def test_guidance_scale_one_is_conditional_and_zero_is_unconditional(conditional_model):
    model = conditional_model
    labels = torch.tensor([0, 1, 1, 0])
    null = torch.full_like(labels, model.num_classes)
    network_eps = model.predict_eps  # (x_t, t, y) -> eps
    noise = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    conditional = ddim_sample(model.eps_denoiser(labels), model.noise_schedule, noise, 5)
    unconditional = ddim_sample(model.eps_denoiser(null), model.noise_schedule, noise, 5)
    for scale, expected in ((1.0, conditional), (0.0, unconditional)):
        torch.testing.assert_close(ddim_sample(guided(network_eps, labels, null, scale), model.noise_schedule, noise, 5),
                                   expected, rtol=0, atol=1e-5)
    assert not torch.allclose(conditional, unconditional, atol=1e-3)
    strong = ddim_sample(guided(network_eps, labels, null, 3.0), model.noise_schedule, noise, 5)
    assert not torch.allclose(strong, conditional, atol=1e-3)
    c, u = torch.randn(2, 5), torch.randn(2, 5)
    torch.testing.assert_close(classifier_free_guidance(c, u, 3.0), u + 3.0 * (c - u))
    # generate: labels cycle through the classes by default; guidance 1 is plain conditional sampling
    generator = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    cycled = model.generate(4, generator=generator())
    torch.testing.assert_close(cycled, model.generate(4, labels=torch.tensor([0, 1, 0, 1]), generator=generator(), guidance=1.0))
    guided_images = model.generate(4, generator=generator(), guidance=4.0, sampler="ddpm", progress=False)
    assert guided_images.shape == (4, 1, 16, 16) and guided_images.abs().max() <= 1


def test_generate_refuses_bad_input(conditional_model):
    unconditional = tiny_model()
    cases = [
        (unconditional, {"guidance": 2.0}, "unconditional"),
        (unconditional, {"labels": torch.tensor([0, 1])}, "unconditional"),
        (unconditional, {"steps": 11}, "between 1 and the schedule's T = 10"),
        (unconditional, {"steps": 0}, "between 1"),
        (unconditional, {"sampler": "euler"}, "unknown sampler"),
        (unconditional, {"sampler": "ddpm", "eta": 0.5}, "ddim sampler"),
        (unconditional, {"eta": -1.0}, "ddim sampler"),
        (conditional_model, {"labels": torch.tensor([0, 2])}, "class indices in \\[0, 1\\]"),
    ]
    for model, options, phrase in cases:
        with pytest.raises(GenzooError, match=phrase):
            model.generate(2, **options)
    assert unconditional.generate(2, sampler="ddpm").shape == (2, 1, 16, 16)  # all T = 10 steps by default
    for model_keys, phrase in (({"sampling_steps": 20}, "sampling_steps"), ({"guidance": 3.0}, "guidance")):
        with pytest.raises(ConfigError, match=phrase):
            build_config({"family": "ddpm", "model": {"timesteps": 10, **model_keys}})


def test_unet_matches_the_ddpm_cifar10_size_and_takes_odd_sizes():
    cifar = UNet(3, 32, width=128, multipliers=(1, 2, 2, 2), blocks_per_level=2, attention_resolutions=(16,))
    assert sum(p.numel() for p in cifar.parameters()) == 35_746_307  # diffusers UNet2DModel, google/ddpm-cifar10-32
    fmnist = _perturbed(UNet(1, 28, width=16, multipliers=(1, 2, 2), num_classes=10))
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([5, 900])
    out = fmnist(x, t, torch.tensor([3, 4]))
    assert out.shape == (2, 1, 28, 28) and torch.isfinite(out).all()
    assert not torch.allclose(out, fmnist(x, t, torch.tensor([5, 6])))  # the label matters
    assert not torch.allclose(out, fmnist(x, torch.tensor([6, 901]), torch.tensor([3, 4])))  # so does t


# ----------------------------------------------------------------------------- command line


def test_cli_samples_with_ddim_and_refuses_bad_options(tmp_path, capsys):
    runs = {name: make_trainer(tiny_config(family, model=model), tmp_path / name, progress=False).fit().path
            for name, family, model in (("ddpm", "ddpm", {}), ("cfg", "ddpm", {"conditional": True}), ("gan", "gan", {}))}
    code, out, err = genzoo(capsys, "sample", runs["ddpm"], "--sampler", "ddim", "--steps", "5", "-n", "4", "-o", tmp_path / "s.png")
    assert code == 0, err
    assert Image.open(tmp_path / "s.png").size[0] > 16
    code, _, err = genzoo(capsys, "sample", runs["cfg"], "--guidance", "3", "--sampler", "ddpm", "-n", "4", "-o", tmp_path / "g.png")
    assert code == 0 and (tmp_path / "g.png").is_file(), err
    cases = [
        ([runs["ddpm"], "--guidance", "2"], "unconditional"),
        ([runs["ddpm"], "--steps", "11"], "T = 10"),
        ([runs["cfg"], "--labels", "2"], "class indices"),
        ([runs["ddpm"], "--sampler", "euler"], "unknown sampler"),
        ([runs["gan"], "--steps", "5"], "has no steps"),
    ]
    for args, phrase in cases:
        code, _, err = genzoo(capsys, "sample", *args, "-n", "2", "-o", tmp_path / "bad.png")
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and phrase in err, (args, err)
    assert not (tmp_path / "bad.png").exists()
