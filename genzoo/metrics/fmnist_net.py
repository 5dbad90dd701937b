"""FMNISTNet: the offline feature network for sample-quality metrics, and the script that trains it.

No pretrained ImageNet network (Inception-v3 for FID) can be had offline, so genzoo ships a small
CNN classifier trained on the Fashion-MNIST train split. Its 128-d penultimate layer (after ReLU,
like Inception's pool3) gives the features for FID/KID/precision/recall, and its 10-class softmax
the probabilities for IS and class variety. Scores computed with it are named
`fid-fmnist`, `is-fmnist`, ..., never "Inception FID": they are comparable only with each other.

Reproduce the shipped weights (about 15 minutes on 2 CPU cores):

    python -m genzoo.metrics.fmnist_net --seed 0 --out genzoo/metrics/weights/fmnist.safetensors
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FEATURE_DIM = 128
NUM_CLASSES = 10
WEIGHTS = Path(__file__).parent / "weights" / "fmnist.safetensors"


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class FMNISTNet(nn.Module):
    """28 x 28 grey image in [-1, 1] -> 128-d features and 10 class logits."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_block(1, 32), nn.MaxPool2d(2),  # 28 -> 14
            *_block(32, 64), *_block(64, 64), nn.MaxPool2d(2),  # 14 -> 7
            *_block(64, 128), nn.MaxPool2d(2),  # 7 -> 3
            nn.Flatten(),  # (B, 128 * 3 * 3)
            nn.Linear(128 * 9, FEATURE_DIM), nn.ReLU(inplace=True),  # (B, 128): the features
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        features = self.body(images)  # (B, 128)
        return {"features": features, "logits": self.head(self.dropout(features))}  # (B, 128), (B, 10)


# ----------------------------------------------------------------------------- training script

def _augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """Random horizontal flips and shifts of up to 2 pixels (zero padding at -1)."""
    flip = torch.rand(len(images), generator=generator) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    padded = F.pad(images, (2, 2, 2, 2), value=-1.0)  # (B, 1, 32, 32)
    dx, dy = torch.randint(0, 5, (2,), generator=generator).tolist()  # one shift per batch: cheap
    return padded[:, :, dy : dy + 28, dx : dx + 28]


@torch.no_grad()
def accuracy(network: FMNISTNet, images: Tensor, labels: Tensor, batch: int = 1000) -> float:
    network.eval()
    correct = sum(
        (network(images[i : i + batch])["logits"].argmax(1) == labels[i : i + batch]).sum().item()
        for i in range(0, len(images), batch)
    )
    return correct / len(images)


def train_network(seed: int, epochs: int, batch_size: int, lr: float, max_images: int | None = None) -> tuple[FMNISTNet, dict]:
    """Train FMNISTNet on the Fashion-MNIST train split (or its first `max_images`); test on the test split."""
    from genzoo.config import DataConfig
    from genzoo.data import build_dataset

    torch.manual_seed(seed)
    train = build_dataset(DataConfig(name="fashion-mnist", split="train", max_images=max_images))
    test = build_dataset(DataConfig(name="fashion-mnist", split="test", max_images=max_images))
    if train.notes:
        raise SystemExit("the full Fashion-MNIST train split is needed: " + train.notes[0])
    train_batch, test_batch = train.batch(torch.arange(len(train))), test.batch(torch.arange(len(test)))
    x_train, y_train = train_batch["image"], train_batch["label"]  # (N, 1, 28, 28) in [-1, 1], (N,)
    x_test, y_test = test_batch["image"], test_batch["label"]
    network = FMNISTNet()
    optimizer = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * (len(x_train) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    start = time.time()
    for epoch in range(epochs):
        network.train()
        order = torch.randperm(len(x_train), generator=generator)
        for i in range(len(x_train) // batch_size):
            index = order[i * batch_size : (i + 1) * batch_size]
            logits = network(_augment(x_train[index], generator))["logits"]
            loss = F.cross_entropy(logits, y_train[index], label_smoothing=0.05)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        print(f"epoch {epoch + 1}/{epochs}: test accuracy {accuracy(network, x_test, y_test):.4f} "
              f"({time.time() - start:.0f} s)", flush=True)
    report = {"seed": seed, "epochs": epochs, "batch_size": batch_size, "lr": lr,
              "test_accuracy": accuracy(network, x_test, y_test), "train_images": len(x_train),
              "torch": torch.__version__, "seconds": round(time.time() - start)}
    return network.eval(), report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--max-images", type=int, default=None, help="train on the first N images only (a smoke test)")
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args()
    network, report = train_network(args.seed, args.epochs, args.batch_size, args.lr, args.max_images)
    from safetensors.torch import save_file

    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(network.state_dict(), str(args.out), metadata={"genzoo_feature_network": "fmnist", **{k: json.dumps(v) for k, v in report.items()}})
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
