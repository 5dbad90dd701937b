"""`shapes`: one or two coloured shapes on black, rendered procedurally, captioned, and measurable back.

Each image shows one shape ("a small red circle") or two ("a small red circle left of a large blue
square"): shapes circle, square, triangle (apex up); colours red, green, blue, yellow (two shapes
always differ in colour); sizes small and large (half-extent h = 0.11 S and 0.2 S at side S); the
relation "left of", "right of", "above" or "below" says where the first shape is from the second, and
the two are placed so that it holds along the dominant axis (|d| along it at least twice the other) with
a gap of 2 pixels or more. Shapes are filled exactly on the pixel centres: a circle |p - c| <= h, a
square |p - c|_inf <= h, a triangle with its apex h above the centre and a base of 2h, h below it.

Held out of training (`HELD_OUT`): red triangles, green squares and blue circles. Every colour and every
shape is seen, but never in these pairs; prompts with them test composition (`prompts(held_out=True)`).

Measuring an image (`measure`): each pixel goes to the nearest of black and the four colours; the
4-connected regions of one colour of at least `MIN_AREA` of the smallest shape's area are the objects;
an object's size is large when its bounding box is longer than the mean of the two sizes' extents, its
shape a triangle when its centroid sits below the middle of its box by more than 8% of the box's height
(a filled triangle's centroid is 1/6 of its height below), else a square when it fills more than 88% of
its box, else a circle; the relation of two objects is the dominant axis of the difference of their
centroids. On the rendered data every attribute of every caption is measured back (tests/test_text2image.py).

Splits: train and test are drawn with different seeds (`SPLIT_SEEDS`), both without held-out pairs;
`data.max_images` images (default 20,000 for train and all, 5,000 for test) at `data.image_size`
(default 32, at least 16). Rendering 20,000 images takes about a second, so nothing is cached.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from genzoo.config import DataConfig
from genzoo.data.captions import CaptionedImages, Tokenizer
from genzoo.errors import DataError, GenzooError
from genzoo.registry import DATASETS

SHAPES = ("circle", "square", "triangle")
COLOURS = ("red", "green", "blue", "yellow")
PALETTE = torch.tensor([[0, 0, 0], [220, 40, 40], [40, 190, 60], [50, 90, 235], [235, 215, 40]], dtype=torch.float32)  # black, then COLOURS
SIZES = ("small", "large")
HALF_EXTENT = (0.11, 0.2)  # h / S of each size
RELATIONS = ("left of", "right of", "above", "below")
HELD_OUT = (("red", "triangle"), ("green", "square"), ("blue", "circle"))
WORDS = ("a", *SIZES, *COLOURS, *SHAPES, "left", "right", "of", "above", "below")
MAX_WORDS = 10  # "a small red circle left of a large blue square"
MIN_AREA = 0.4  # objects are regions of at least this share of the smallest shape's area
SPLIT_SEEDS = {"train": 0, "test": 1, "all": 2}
DEFAULT_COUNT = {"train": 20_000, "test": 5_000, "all": 20_000}


@dataclass(frozen=True)
class Thing:
    """One shape of a caption: indices into SIZES, COLOURS and SHAPES."""

    size: int
    colour: int
    shape: int

    def words(self) -> str:
        return f"a {SIZES[self.size]} {COLOURS[self.colour]} {SHAPES[self.shape]}"


def caption(things: list[Thing], relation: int | None = None) -> str:
    return things[0].words() if len(things) == 1 else f"{things[0].words()} {RELATIONS[relation]} {things[1].words()}"


def parse(prompt: str) -> tuple[list[Thing], int | None]:
    """The things and relation of a shapes caption; anything else is refused in one sentence."""
    words = Tokenizer.split(prompt)

    def thing(part: list[str]) -> Thing | None:
        if len(part) == 4 and part[0] == "a" and part[1] in SIZES and part[2] in COLOURS and part[3] in SHAPES:
            return Thing(SIZES.index(part[1]), COLOURS.index(part[2]), SHAPES.index(part[3]))
        return None

    first = thing(words[:4])
    if first is not None and len(words) == 4:
        return [first], None
    for index, relation in enumerate(RELATIONS):
        middle = relation.split()
        second = thing(words[4 + len(middle):])
        if first is not None and words[4 : 4 + len(middle)] == middle and second is not None:
            return [first, second], index
    raise GenzooError(f"{prompt!r} is not a shapes caption; write 'a SIZE COLOUR SHAPE', optionally followed by a "
                      f"relation ({', '.join(RELATIONS)}) and a second 'a SIZE COLOUR SHAPE'.")


def _held_out(thing: Thing) -> bool:
    return (COLOURS[thing.colour], SHAPES[thing.shape]) in HELD_OUT


# ----------------------------------------------------------------------------- drawing captions and rendering them

ALL_THINGS = torch.tensor(list(itertools.product(range(len(SIZES)), range(len(COLOURS)), range(len(SHAPES)))))  # (24, 3)
NEW = torch.tensor([_held_out(Thing(*t)) for t in ALL_THINGS.tolist()])  # (24,) held-out pairs


@dataclass
class Scenes:
    """n scenes: things (n, 2, 3) as (size, colour, shape) indices, whether each has a second thing (n,) and the
    relation of the first to the second (n,), -1 for one thing."""

    things: Tensor
    pair: Tensor
    relation: Tensor

    def __len__(self) -> int:
        return len(self.things)

    def captions(self) -> list[str]:
        rows = zip(self.things.tolist(), self.pair.tolist(), self.relation.tolist())
        return [caption([Thing(*a), Thing(*b)][: 1 + pair], relation) for (a, b), pair, relation in rows]


def draw_scenes(n: int, generator: torch.Generator, held_out: bool = False) -> Scenes:
    """n random scenes (half with one shape, half with two of different colours): without any held-out pair
    (held_out=False), or with at least one in each (True)."""
    seen, unseen = ALL_THINGS[~NEW], ALL_THINGS[NEW]
    pair = torch.rand(n, generator=generator) < 0.5
    relation = torch.where(pair, torch.randint(0, len(RELATIONS), (n,), generator=generator), -1)
    new_slot = torch.where(pair, torch.randint(0, 2, (n,), generator=generator), 0)  # the slot that is held out
    things = torch.zeros(n, 2, 3, dtype=torch.long)
    for slot in range(2):
        todo = torch.arange(n)
        while len(todo):
            if held_out:
                new = new_slot[todo] == slot
                picks = torch.where(new[:, None], unseen[torch.randint(0, len(unseen), (len(todo),), generator=generator)],
                                    ALL_THINGS[torch.randint(0, len(ALL_THINGS), (len(todo),), generator=generator)])
            else:
                picks = seen[torch.randint(0, len(seen), (len(todo),), generator=generator)]
            things[todo, slot] = picks
            clash = (slot == 1) & pair[todo] & (things[todo, 1, 1] == things[todo, 0, 1])  # two things of one colour
            todo = todo[clash]
    return Scenes(things, pair, relation)


def _place(scenes: Scenes, size: int, generator: torch.Generator) -> Tensor:
    """Centres (n, 2, 2) as (x, y) in pixels, so that each shape fits with a 1-pixel margin and pairs satisfy
    their relation: a gap of 2 pixels or more between their boxes along the relation's axis, and a distance
    across it of at most half the distance along it. Drawn directly (no rejection): the distance along the
    axis, then where the pair lies, then each centre across the axis."""
    n = len(scenes)
    half = torch.tensor(HALF_EXTENT)[scenes.things[:, :, 0]] * size  # (n, 2)
    u = torch.rand(n, 5, generator=generator)
    centres = (1 + half[:, :, None]) + u[:, None, :2] * (size - 2 - 2 * half[:, :, None])  # (n, 2, 2): each anywhere
    r = scenes.relation.clamp(min=0)
    axis, sign = (r >= 2).long(), torch.where(r % 2 == 0, 1.0, -1.0)  # left of / above: the second is further on
    near, far = torch.where(sign > 0, 0, 1), torch.where(sign > 0, 1, 0)  # the thing with the smaller coordinate
    h_near, h_far = half.gather(1, near[:, None])[:, 0], half.gather(1, far[:, None])[:, 0]  # (n,)
    least, most = h_near + h_far + 2, size - 2 - h_near - h_far  # the distance along the axis, centre to centre
    along = least + u[:, 2] * (most - least)  # (n,)
    start = 1 + h_near + u[:, 3] * (most - along)  # the near centre, so that the far one fits too
    across_near = centres[torch.arange(n), near, 1 - axis]  # (n,): anywhere across the axis
    low = torch.maximum(1 + h_far, across_near - along / 2)
    high = torch.minimum(size - 1 - h_far, across_near + along / 2)
    across_far = low + u[:, 4] * (high - low).clamp(min=0)
    placed = torch.zeros(n, 2, 2)
    rows = torch.arange(n)
    placed[rows, near, axis], placed[rows, far, axis] = start, start + along
    placed[rows, near, 1 - axis], placed[rows, far, 1 - axis] = across_near, across_far
    return torch.where(scenes.pair[:, None, None], placed, centres)


def render(scenes: Scenes, size: int, generator: torch.Generator) -> Tensor:
    """Images (n, 3, S, S) uint8 of the scenes, placed at random."""
    centres = _place(scenes, size, generator)  # (n, 2, 2)
    grid = torch.arange(size, dtype=torch.float32) + 0.5  # pixel centres
    images = torch.zeros(len(scenes), 3, size, size, dtype=torch.uint8)
    for start in range(0, len(scenes), 2048):
        part = slice(start, start + 2048)
        things, count = scenes.things[part], 1 + scenes.pair[part].long()  # (m, 2, 3), (m,)
        h = (torch.tensor(HALF_EXTENT)[things[:, :, 0]] * size)[:, :, None, None]  # (m, 2, 1, 1)
        dx = grid[None, None, None, :] - centres[part, :, 0, None, None]  # (m, 2, 1, S)
        dy = grid[None, None, :, None] - centres[part, :, 1, None, None]  # (m, 2, S, 1)
        masks = torch.stack([dx**2 + dy**2 <= h**2,  # circle
                             (dx.abs() <= h) & (dy.abs() <= h),  # square
                             (dy >= -h) & (dy <= h) & (dx.abs() <= (dy + h) / 2)])  # triangle, apex up: (3, m, 2, S, S)
        shape = things[:, :, 2]  # (m, 2)
        mask = masks.gather(0, shape[None, :, :, None, None].expand(1, -1, -1, size, size))[0]  # (m, 2, S, S)
        mask &= (torch.arange(2)[None, :] < count[:, None])[:, :, None, None]  # only the things the scene has
        colours = PALETTE[things[:, :, 1] + 1].to(torch.uint8)  # (m, 2, 3)
        for slot in range(2):
            images[part] = torch.where(mask[:, slot, None], colours[:, slot, :, None, None], images[part])
    return images


# ----------------------------------------------------------------------------- measuring


def _components(labels: Tensor) -> Tensor:
    """4-connected regions of equal nonzero label: (n, S, S) -> (n, S, S) region ids (0 = background), each region's
    id the largest linear index + 1 of its pixels: the maximum spreads to equal neighbours, and each pixel also
    takes the id of the pixel its id names (pointer jumping), until nothing changes."""
    n, height, width = labels.shape
    foreground = labels > 0
    ids = ((torch.arange(height * width, dtype=torch.int32) + 1).view(1, height, width) * foreground).contiguous()
    vertical = foreground[:, 1:] & (labels[:, 1:] == labels[:, :-1])  # (n, S-1, S): pixel and the one above agree
    horizontal = foreground[:, :, 1:] & (labels[:, :, 1:] == labels[:, :, :-1])  # (n, S, S-1): and the one to the left
    for _ in range(height * width):
        new = ids.clone()
        new[:, 1:] = torch.maximum(new[:, 1:], ids[:, :-1] * vertical)  # from above
        new[:, :-1] = torch.maximum(new[:, :-1], ids[:, 1:] * vertical)  # from below
        new[:, :, 1:] = torch.maximum(new[:, :, 1:], ids[:, :, :-1] * horizontal)  # from the left
        new[:, :, :-1] = torch.maximum(new[:, :, :-1], ids[:, :, 1:] * horizontal)  # from the right
        flat = new.view(n, -1)
        jumped = flat.gather(1, (flat.long() - 1).clamp(min=0)) * (flat > 0)  # the id of the pixel this id names
        new = torch.maximum(flat, jumped).view(n, height, width)
        if torch.equal(new, ids):
            return ids.long()
        ids = new
    return ids.long()  # pragma: no cover


@dataclass(frozen=True)
class Measured:
    """An object found in an image: its colour, shape and size (indices), and its centroid (x, y) in pixels."""

    colour: int
    shape: int
    size: int
    x: float
    y: float


def measure(images: Tensor) -> list[list[Measured]]:
    """The objects of each image (n, 3, S, S) in [-1, 1], in raster order of their last pixel."""
    n, _, side, _ = images.shape
    rgb = ((images.detach().float().cpu() + 1) * 127.5).permute(0, 2, 3, 1)  # (n, S, S, 3) in [0, 255]
    labels = torch.cdist(rgb.reshape(n, side * side, 3), PALETTE[None].expand(n, -1, -1)).argmin(2).view(n, side, side)
    ids = _components(labels)  # (n, S, S)
    flat = ids.flatten(1)  # (n, S*S)
    keys = flat + torch.arange(n)[:, None] * (side * side + 1)  # unique across images
    present = flat > 0
    regions, inverse = torch.unique(keys[present], return_inverse=True)
    count = len(regions)
    rows = torch.arange(side).repeat_interleave(side).expand(n, -1)[present].float()  # (P,)
    cols = torch.arange(side).repeat(side).expand(n, -1)[present].float()

    def reduce(values: Tensor, how: str) -> Tensor:
        start = {"sum": 0.0, "amin": float("inf"), "amax": -float("inf")}[how]
        return torch.full((count,), start).scatter_reduce(0, inverse, values, how, include_self=how == "sum")

    area = reduce(torch.ones_like(rows), "sum")
    x, y = reduce(cols + 0.5, "sum") / area, reduce(rows + 0.5, "sum") / area
    top, bottom, left, right = reduce(rows, "amin"), reduce(rows, "amax"), reduce(cols, "amin"), reduce(cols, "amax")
    height, breadth = bottom - top + 1, right - left + 1
    colour = reduce(labels.flatten(1)[present].float(), "amax").long() - 1
    image = torch.div(regions, side * side + 1, rounding_mode="floor")
    h_small, h_large = (f * side for f in HALF_EXTENT)
    smallest = 2 * h_small**2  # the small triangle's area, the least of the three shapes
    large = torch.maximum(height, breadth) > (2 * h_small + 2 * h_large) / 2 + 1
    below = (y - (top + bottom + 1) / 2) / height  # the centroid's offset from the box's middle, in box heights
    fill = area / (height * breadth)
    shape = torch.where(below > 0.08, 2, torch.where(fill > 0.88, 1, 0))
    objects: list[list[Measured]] = [[] for _ in range(n)]
    for i in torch.nonzero(area >= MIN_AREA * smallest).flatten().tolist():
        objects[int(image[i])].append(Measured(int(colour[i]), int(shape[i]), int(large[i]), float(x[i]), float(y[i])))
    return objects


def relation_of(first: Measured, second: Measured) -> int:
    """Where `first` is from `second`: the dominant axis of their centroids' difference."""
    dx, dy = second.x - first.x, second.y - first.y
    if abs(dx) >= abs(dy):
        return 0 if dx > 0 else 1  # left of, right of
    return 2 if dy > 0 else 3  # above, below


# ----------------------------------------------------------------------------- the grammar


@dataclass(frozen=True)
class ShapesGrammar:
    name: str = "shapes"
    attributes: tuple[str, ...] = ("count", "colour", "shape", "size", "relation")
    held_out: tuple[str, ...] = tuple(f"{colour} {shape}" for colour, shape in HELD_OUT)

    def prompts(self, n: int, held_out: bool, generator: torch.Generator) -> list[str]:
        return draw_scenes(n, generator, held_out).captions()

    def judge(self, images: Tensor, prompts: list[str], classify: Callable[[Tensor], Tensor] | None = None) -> dict[str, Tensor]:
        """1 where image i shows what prompt i says, 0 where not, NaN where it does not apply (the relation of
        one shape). The prompt's shapes are matched to the measured objects by the assignment that agrees on
        the most attributes; a shape left without an object is wrong in every attribute."""
        results = {name: torch.full((len(prompts),), float("nan")) for name in (*self.attributes, "all")}
        for i, (prompt, found) in enumerate(zip(prompts, measure(images))):
            things, relation = parse(prompt)
            best, best_score = None, -1
            for chosen in itertools.permutations(range(len(found)), min(len(found), len(things))):
                score = sum((found[j].colour == t.colour) + (found[j].shape == t.shape) + (found[j].size == t.size)
                            for t, j in zip(things, chosen))
                if score > best_score:
                    best, best_score = chosen, score
            pairs = [(t, found[j]) for t, j in zip(things, best or ())]
            complete = len(pairs) == len(things)
            results["count"][i] = float(len(found) == len(things))
            for name in ("colour", "shape", "size"):
                results[name][i] = float(complete and all(getattr(t, name) == getattr(m, name) for t, m in pairs))
            if relation is not None:
                results["relation"][i] = float(complete and relation_of(pairs[0][1], pairs[1][1]) == relation)
            results["all"][i] = float(all(results[name][i] != 0 for name in self.attributes))
        return results


@DATASETS.register("shapes")
def shapes(config: DataConfig) -> CaptionedImages:
    """One or two coloured shapes, rendered and captioned ("a small red circle left of a large blue square"); red triangles, green squares, blue circles held out."""
    size = config.image_size or 32
    if size < 16:
        raise DataError(f"data.image_size={size} is too small to draw shapes on; use 16 or more (default 32).")
    if config.channels == 1:
        raise DataError("the shapes dataset is coloured (3 channels) and its colours are in its captions; leave data.channels unset.")
    n = config.max_images or DEFAULT_COUNT[config.split]
    generator = torch.Generator().manual_seed(SPLIT_SEEDS[config.split])
    scenes = draw_scenes(n, generator)
    images = render(scenes, size, generator)
    tokenizer = Tokenizer.for_words(WORDS, MAX_WORDS)
    texts = scenes.captions()
    data = CaptionedImages(images, tokenizer.encode(texts), tokenizer, ShapesGrammar(),
                           source=f"shapes: {n} rendered {size}x{size} images, split {config.split} (seed {SPLIT_SEEDS[config.split]})")
    data.split = config.split
    return data
