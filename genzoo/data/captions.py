"""Captioned images: a word tokenizer, the `CaptionedImages` dataset, and Fashion-MNIST with captions.

A caption is a short sentence whose every attribute can be measured back from the image it describes,
so that "does the image obey the prompt" is a number (`genzoo.metrics.prompts`), not a judgement:
- a `Grammar` makes prompts (`prompts(n, held_out, generator)`) and judges images against them
  (`judge(images, prompts, classify)`: per attribute, True where the image shows what the prompt says);
- `fashion-mnist-captions` (here): "a dark slim trouser", from the class and two attributes measured on
  the pixels, each split at its class's median on the train split (`FASHION_THRESHOLDS`), so that each
  class is half dark and half light, half slim and half wide;
- `shapes` (`genzoo.data.shapes`): rendered coloured shapes, with combinations held out of training.

Tokens: one per word (lower case; `,.;:!?` are dropped), after two special tokens, `<pad>` (0) and `<s>`
(1, the start of every caption, so that the empty prompt is one real token). A caption of up to L - 1
words is <s>, its words, then padding to L tokens. `DataInfo.vocabulary` holds the words in token order
separated by spaces (no word contains one), `vocab_size` their number and `sequence_length` L, so a
run's tokenizer is saved with its weights and `Tokenizer.from_info` rebuilds it.
Batches: `{"image", "index", ["label",] "caption": (B, L) int64}`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Protocol

import torch
from torch import Tensor

from genzoo.config import DataConfig
from genzoo.data.base import ImageData
from genzoo.data.info import DataInfo
from genzoo.errors import DataError, GenzooError
from genzoo.registry import DATASETS

SPECIALS = ("<pad>", "<s>")  # token 0 pads, token 1 starts every caption (genzoo.nn.text.PAD, START)
PUNCTUATION = str.maketrans({c: " " for c in ",.;:!?"})


# ----------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class Tokenizer:
    words: tuple[str, ...]  # in token order, starting with SPECIALS
    length: int  # L: tokens per caption (<s> and up to L - 1 words)

    @classmethod
    def for_words(cls, words: tuple[str, ...], max_words: int) -> Tokenizer:
        return cls(SPECIALS + tuple(words), max_words + 1)

    @classmethod
    def from_info(cls, info: DataInfo, family: str) -> Tokenizer:
        """The tokenizer of a model's data (saved in the run with its weights)."""
        if not info.vocabulary or not info.sequence_length:
            raise DataError(f"{family} learns from captions and this dataset has none; use a captioned dataset "
                            "(data.name=shapes or data.name=fashion-mnist-captions).")
        return cls(tuple(info.vocabulary.split(" ")), info.sequence_length)

    @property
    def vocabulary(self) -> str:
        return " ".join(self.words)

    @staticmethod
    def split(text: str) -> list[str]:
        return text.lower().translate(PUNCTUATION).split()

    def encode(self, texts: list[str] | tuple[str, ...]) -> Tensor:
        """Token ids (n, L) int64 of n texts; unknown words and over-long texts are refused in one sentence."""
        index = {word: i for i, word in enumerate(self.words)}
        rows = []
        for text in texts:
            words = self.split(text)
            unknown = [word for word in dict.fromkeys(words) if word not in index or word in SPECIALS]
            if unknown:
                raise GenzooError(f"the prompt {text!r} has words this model never saw in training: "
                                  f"{', '.join(map(repr, unknown))}; use its words: {', '.join(self.words[len(SPECIALS):])}.")
            if len(words) > self.length - 1:
                raise GenzooError(f"the prompt {text!r} has {len(words)} words and this model reads at most "
                                  f"{self.length - 1}; shorten it.")
            rows.append([index["<s>"]] + [index[word] for word in words] + [index["<pad>"]] * (self.length - 1 - len(words)))
        return torch.tensor(rows, dtype=torch.long).reshape(len(texts), self.length)

    def decode(self, tokens: Tensor) -> list[str]:
        """The texts of token ids (n, L): the words after <s>, up to the padding."""
        return [" ".join(self.words[i] for i in row if i >= len(SPECIALS)) for row in tokens.tolist()]

    def prompts(self, prompts: str | list[str] | tuple[str, ...], n: int) -> Tensor:
        """Tokens (n, L) of one prompt for all n samples, or of one prompt per sample."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if len(prompts) not in (1, n):
            raise GenzooError(f"{len(prompts)} prompts for {n} samples; give one prompt for all, or one per sample.")
        return self.encode(prompts * n if len(prompts) == 1 else prompts)


# ----------------------------------------------------------------------------- grammars and the dataset


class Grammar(Protocol):
    """What a captioned dataset says about its captions: how to make prompts and how to check images against them."""

    name: str
    attributes: tuple[str, ...]  # what `judge` measures, e.g. ("class", "tone", "width")
    held_out: tuple[str, ...]  # combinations never shown in training, e.g. ("red triangle",); () if none

    def prompts(self, n: int, held_out: bool, generator: torch.Generator) -> list[str]:
        """n prompts of the caption distribution (held_out=False) or with a held-out combination in each (True)."""

    def judge(self, images: Tensor, prompts: list[str], classify: Callable[[Tensor], Tensor] | None = None) -> dict[str, Tensor]:
        """Per attribute and "all": (n,) bool, True where image i shows what prompt i says. `classify` maps
        images to class indices where an attribute needs a classifier."""


class CaptionedImages(ImageData):
    """Images with a caption each: `captions` (N, L) int64 tokens of `tokenizer`, described by `grammar`."""

    def __init__(self, images: Tensor, captions: Tensor, tokenizer: Tokenizer, grammar: Grammar,
                 labels: Tensor | None = None, num_classes: int | None = None, source: str = "",
                 notes: list[str] | None = None, class_names: list[str] | None = None) -> None:
        super().__init__(images, labels, num_classes, source, list(notes or []), class_names)
        self.captions, self.tokenizer, self.grammar = captions, tokenizer, grammar

    @property
    def keys(self) -> tuple[str, ...]:
        return super().keys + ("caption",)

    @property
    def info(self) -> DataInfo:
        return replace(super().info, vocabulary=self.tokenizer.vocabulary, vocab_size=len(self.tokenizer.words),
                       sequence_length=self.tokenizer.length)

    def to(self, device: torch.device | str) -> CaptionedImages:
        super().to(device)
        self.captions = self.captions.to(device)
        return self

    def batch(self, indices: Tensor) -> dict[str, Tensor]:
        return {**super().batch(indices), "caption": self.captions[indices]}

    def texts(self, indices: Tensor) -> list[str]:
        """The captions of these images as text."""
        return self.tokenizer.decode(self.captions[indices.to(self.captions.device)])


# ----------------------------------------------------------------------------- Fashion-MNIST with captions

FASHION_CLASSES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
# per class: the medians of (tone, width) on the 60,000 train images (`fashion_attributes`); below is dark / slim
FASHION_THRESHOLDS = ((0.656, 4.800), (0.715, 2.974), (0.672, 5.688), (0.706, 3.348), (0.737, 5.340),
                      (0.562, 6.864), (0.597, 5.412), (0.641, 6.737), (0.706, 6.895), (0.725, 6.352))


def fashion_attributes(images: Tensor) -> tuple[Tensor, Tensor]:
    """Tone and width of Fashion-MNIST-like images (N, 1, H, W) in [-1, 1]: tone is the mean brightness (in
    [0, 1]) of the pixels brighter than 0.2, width the brightness-weighted standard deviation of the column
    index, in pixels. (N,), (N,)."""
    v = ((images.float() + 1) / 2).clamp(0, 1).mean(1)  # (N, H, W) in [0, 1]
    foreground = v > 0.2
    tone = (v * foreground).sum((1, 2)) / foreground.sum((1, 2)).clamp(min=1)  # (N,)
    columns = torch.arange(v.shape[-1], dtype=v.dtype, device=v.device)  # (W,)
    profile = v.sum(1)  # (N, W): brightness per column
    mass = profile.sum(1).clamp(min=1e-6)  # (N,)
    centre = (profile * columns).sum(1) / mass  # (N,)
    width = ((profile * (columns - centre[:, None]) ** 2).sum(1) / mass).sqrt()  # (N,)
    return tone, width


@dataclass(frozen=True)
class FashionGrammar:
    """"a {dark|light} {slim|wide} {class}"; the class is judged by a classifier, tone and width on the pixels."""

    name: str = "fashion-mnist-captions"
    attributes: tuple[str, ...] = ("class", "tone", "width")
    held_out: tuple[str, ...] = ()

    words = ("a", "dark", "light", "slim", "wide", *sorted({w for c in FASHION_CLASSES for w in c.split()}))

    def caption(self, label: int, dark: bool, slim: bool) -> str:
        return f"a {'dark' if dark else 'light'} {'slim' if slim else 'wide'} {FASHION_CLASSES[label]}"

    def captions(self, images: Tensor, labels: Tensor) -> list[str]:
        dark, slim = self._below(images, labels)
        return [self.caption(*row) for row in zip(labels.tolist(), dark.tolist(), slim.tolist())]

    def _below(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        tone, width = fashion_attributes(images)
        thresholds = torch.tensor(FASHION_THRESHOLDS, device=tone.device)[labels.to(tone.device)]  # (N, 2)
        return tone < thresholds[:, 0], width < thresholds[:, 1]

    def parse(self, prompt: str) -> tuple[int, bool, bool]:
        words = Tokenizer.split(prompt)
        if len(words) < 4 or words[0] != "a" or words[1] not in ("dark", "light") or words[2] not in ("slim", "wide") \
                or " ".join(words[3:]) not in FASHION_CLASSES:
            raise GenzooError(f"{prompt!r} is not a Fashion-MNIST caption; write 'a {{dark|light}} {{slim|wide}} "
                              f"{{class}}' with a class among: {', '.join(FASHION_CLASSES)}.")
        return FASHION_CLASSES.index(" ".join(words[3:])), words[1] == "dark", words[2] == "slim"

    def prompts(self, n: int, held_out: bool, generator: torch.Generator) -> list[str]:
        if held_out:
            raise GenzooError("fashion-mnist-captions holds no combination out of training; ask for seen prompts.")
        draws = torch.randint(0, 2, (n, 3), generator=generator)
        labels = torch.randint(0, len(FASHION_CLASSES), (n,), generator=generator)
        return [self.caption(int(k), bool(d), bool(s)) for k, (d, s, _) in zip(labels, draws)]

    def judge(self, images: Tensor, prompts: list[str], classify: Callable[[Tensor], Tensor] | None = None) -> dict[str, Tensor]:
        if classify is None:
            raise GenzooError("judging Fashion-MNIST prompts needs a classifier for the class; give the fmnist feature network.")
        wanted = torch.tensor([self.parse(p) for p in prompts], dtype=torch.long)  # (n, 3): class, dark, slim
        dark, slim = self._below(images, wanted[:, 0])
        result = {"class": classify(images).cpu() == wanted[:, 0], "tone": dark.cpu() == wanted[:, 1].bool(),
                  "width": slim.cpu() == wanted[:, 2].bool()}
        result["all"] = result["class"] & result["tone"] & result["width"]
        return result


@DATASETS.register("fashion-mnist-captions")
def fashion_mnist_captions(config: DataConfig) -> CaptionedImages:
    """Fashion-MNIST with captions "a dark slim trouser" from its class and measured tone and width."""
    from genzoo.data.fashion_mnist import fashion_mnist

    data = fashion_mnist(config)
    count = config.max_images or len(data.images)
    images, labels = data.images[:count], data.labels[:count]
    grammar = FashionGrammar()
    tokenizer = Tokenizer.for_words(grammar.words, max_words=5)  # "a dark slim ankle boot"
    texts = [caption for chunk in range(0, count, 10_000)
             for caption in grammar.captions(images[chunk : chunk + 10_000].float() / 127.5 - 1, labels[chunk : chunk + 10_000])]
    if not texts:
        raise DataError(f"no images found in {data.source}; point data.root at the Fashion-MNIST files.")
    captioned = CaptionedImages(images, tokenizer.encode(texts), tokenizer, grammar, labels, 10, data.source + ", captioned",
                                data.notes, data.class_names)
    captioned.split = data.split
    return captioned
