"""Victim classifiers for reconstruction attacks, trained in the study's settings.

Architectures (any image size and channel count):

* ``lenet_sigmoid`` - three 5x5 convolutions with sigmoid, as in DLG (attacks work well on it);
* ``conv_relu`` - three 3x3 convolutions with BatchNorm and ReLU, global pooling (a "ConvNet");
* ``resnet20`` - the CIFAR ResNet-20 (3 stages x 3 BasicBlocks), ``width`` multiplies its 16 channels
  (the study's ResNet20-4 is ``width=4``).

Training settings: augmentation ``none`` | ``crop_flip`` | ``policy:<op>+<op>...`` (ops: hflip, crop,
rotate, shear, contrast, brightness; per image, see
``semsim_metric.data.augmentation.Augmentation.from_policy``) and defences that act on *training* gradients only: ``prune:<percent>``
(zero the smallest-magnitude share of every gradient) and ``noise:<sigma>`` (add Gaussian noise). The
attacked gradient is always the clean gradient of one image.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._progress import Progress
from ..data.augmentation import Augmentation, item_seeds
from ..data.sources import ImageSource
from ..errors import InvalidInputError
from ..models.blocks import BasicBlock
from ..outputs import atomic_write_text

__all__ = ["Defense", "VictimSpec", "build_victim", "load_or_train_victim", "train_victim"]

#: the victim architectures
VictimArch = Literal["lenet_sigmoid", "conv_relu", "resnet20"]
#: the defences a victim can be trained with
DefenseKind = Literal["none", "prune", "noise"]


class LeNetSigmoid(nn.Module):
    def __init__(self, channels: int, num_classes: int, size: int, width: int = 12) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 5, padding=2, stride=2),
            nn.Sigmoid(),
            nn.Conv2d(width, width, 5, padding=2, stride=2),
            nn.Sigmoid(),
            nn.Conv2d(width, width, 5, padding=2, stride=1),
            nn.Sigmoid(),
        )
        side = math.ceil(math.ceil(size / 2) / 2)
        self.fc = nn.Linear(width * side * side, num_classes)
        for p in self.parameters():  # DLG's initialisation: default init saturates three sigmoid layers
            nn.init.uniform_(p, -0.5, 0.5)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.body(x).flatten(1))


class ConvReLU(nn.Module):
    def __init__(self, channels: int, num_classes: int, width: int = 16) -> None:
        super().__init__()
        w = [width, 2 * width, 4 * width]
        layers: list[nn.Module] = []
        cin = channels
        for i, c in enumerate(w):
            layers += [
                nn.Conv2d(cin, c, 3, padding=1, stride=1 if i == 0 else 2, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(),
            ]
            cin = c
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(w[-1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.body(x).mean(dim=(2, 3)))


class ResNet20(nn.Module):
    def __init__(self, channels: int, num_classes: int, width: int = 1) -> None:
        super().__init__()
        w = [16 * width, 32 * width, 64 * width]
        self.conv = nn.Conv2d(channels, w[0], 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(w[0])
        blocks: list[nn.Module] = []
        cin = w[0]
        for stage, c in enumerate(w):
            for b in range(3):
                blocks.append(BasicBlock(cin, c, 2 if stage > 0 and b == 0 else 1))
                cin = c
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(w[-1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.blocks(F.relu(self.bn(self.conv(x)))).mean(dim=(2, 3)))


@dataclass(frozen=True)
class Defense:
    """A defence that acts on a victim's training gradients: ``none``, ``prune`` (zero the ``amount`` percent of
    smallest-magnitude entries of every gradient) or ``noise`` (add Gaussian noise of standard deviation
    ``amount``).

    Examples:
        >>> Defense("prune", 70)
        Defense(kind='prune', amount=70)
        >>> str(Defense("noise", 0.001))
        'noise:0.001'

    Raises:
        InvalidInputError: (a ``ValueError``) an unknown kind, or an amount out of range (a share above 100
            percent, a negative or non-finite amount).
    """

    kind: DefenseKind = "none"
    amount: float = 0.0

    def __post_init__(self) -> None:
        amount = self.amount
        if (
            self.kind not in get_args(DefenseKind)
            or isinstance(amount, bool)
            or not isinstance(amount, int | float)
            or not math.isfinite(amount)
            or amount < 0
            or (self.kind == "prune" and amount > 100)
        ):
            raise InvalidInputError(
                f"defense {self.kind!r} with amount {amount!r}: use none, prune:<percent 0-100> or "
                "noise:<sigma >= 0>."
            )

    @classmethod
    def parse(cls, text: str) -> Defense:
        """The defence written ``none``, ``prune:<percent 0-100>`` or ``noise:<sigma >= 0>`` (the one parser of
        that form; the command line's ``prune=70`` is translated by ``VictimSpec.parse``).

        Examples:
            >>> Defense.parse("prune:70")
            Defense(kind='prune', amount=70.0)
            >>> Defense.parse("blur:1")  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            semsim_metric.errors.InvalidInputError: defense 'blur:1': use none, prune:<percent 0-100> or ...

        Raises:
            InvalidInputError: (a ``ValueError``) another form, an unknown kind or an amount out of range.
        """
        if text == "none":
            return cls()
        kind, _, value = text.partition(":")
        try:
            return cls(kind, float(value))  # type: ignore[arg-type]
        except ValueError:
            raise InvalidInputError(
                f"defense {text!r}: use none, prune:<percent 0-100> or noise:<sigma >= 0>."
            ) from None

    def __str__(self) -> str:
        return "none" if self.kind == "none" else f"{self.kind}:{self.amount:g}"


@dataclass(frozen=True)
class VictimSpec:
    """One victim: architecture, training setting and length, seed.

    ``augmentation`` is a setting of ``Augmentation.from_policy`` (``none``, ``crop_flip``,
    ``policy:<op>+<op>``); ``defense`` a ``Defense`` or its string (``prune:70``), kept as that string (it names
    the victim). The command line's form ``arch[-width]:epochs[:augmentation[:defense]]`` is read by ``parse``.

    Raises:
        InvalidInputError: (a ``ValueError``) an unknown architecture, augmentation or defence, or negative
            settings.
    """

    arch: VictimArch = "lenet_sigmoid"
    epochs: int = 0
    augmentation: str = "none"
    defense: str = "none"  # a Defense given here is stored as its string
    width: int = 0  # 0 = the architecture's default
    train_images: int = 20000
    seed: int = 0
    learning_rate: float = 1e-3
    batch_size: int = 128

    def __post_init__(self) -> None:
        if self.arch not in get_args(VictimArch):
            raise InvalidInputError(
                f"unknown victim architecture {self.arch!r}; choose lenet_sigmoid, conv_relu or resnet20."
            )
        Augmentation.from_policy(self.augmentation, 32)  # raises ValueError naming an unknown op
        if isinstance(self.defense, Defense):
            object.__setattr__(self, "defense", str(self.defense))
        Defense.parse(self.defense)  # raises InvalidInputError naming the accepted forms
        if self.epochs < 0 or self.width < 0 or self.train_images < 1:
            raise InvalidInputError(f"invalid victim settings: {self}.")

    @property
    def defense_setting(self) -> Defense:
        """``defense`` as a ``Defense`` (read by ``Defense.parse``)."""
        return Defense.parse(self.defense)

    @classmethod
    def parse(cls, text: str, *, seed: int = 0, train_images: int = 20000) -> VictimSpec:
        """The victim written ``arch[-width]:epochs[:augmentation[:defense]]`` on the command line (``=`` stands
        for the ``:`` inside a setting: ``policy=rotate+contrast``, ``prune=70``); the one parser of that form.

        Examples:
            >>> spec = VictimSpec.parse("resnet20-4:3:crop_flip:prune=70")
            >>> (spec.arch, spec.width, spec.epochs, spec.augmentation, spec.defense)
            ('resnet20', 4, 3, 'crop_flip', 'prune:70')
            >>> VictimSpec.parse("lenet_sigmoid")  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            semsim_metric.errors.InvalidInputError: victim 'lenet_sigmoid': write arch[-width]:epochs[:augmentation...

        Raises:
            InvalidInputError: (a ``ValueError``) not two to four ``:``-separated fields, an epoch count or width
                that is not a whole number, or a setting ``VictimSpec`` refuses.
        """
        form = (
            "write arch[-width]:epochs[:augmentation[:defense]], e.g. lenet_sigmoid:4 or "
            "resnet20-4:3:crop_flip:prune=70"
        )
        parts = text.split(":")
        if not 2 <= len(parts) <= 4:
            raise InvalidInputError(f"victim {text!r}: {form}.")
        arch, _, width = parts[0].partition("-")
        try:
            epochs, width_n = int(parts[1]), int(width or 0)
        except ValueError:
            raise InvalidInputError(
                f"victim {text!r}: the epochs and the width must be whole numbers; {form}."
            ) from None
        return cls(
            arch=arch,  # type: ignore[arg-type]
            epochs=epochs,
            augmentation=(parts[2] if len(parts) > 2 else "none").replace("=", ":"),
            defense=(parts[3] if len(parts) > 3 else "none").replace("=", ":"),
            width=width_n,
            seed=seed,
            train_images=train_images,
        )

    @property
    def name(self) -> str:
        parts = [self.arch + (f"-{self.width}" if self.width else ""), f"e{self.epochs}"]
        if self.augmentation != "none":
            parts.append(self.augmentation.replace(":", "-").replace("+", "-"))
        if self.defense != "none":
            parts.append(self.defense.replace(":", "-"))
        return "_".join(parts)


def build_victim(spec: VictimSpec, channels: int, num_classes: int, size: int) -> nn.Module:
    """Instantiate the architecture of ``spec`` (weights seeded by ``spec.seed``)."""
    torch.manual_seed(spec.seed)
    if spec.arch == "lenet_sigmoid":
        return LeNetSigmoid(channels, num_classes, size, spec.width or 12)
    if spec.arch == "conv_relu":
        return ConvReLU(channels, num_classes, spec.width or 16)
    if spec.arch == "resnet20":
        return ResNet20(channels, num_classes, spec.width or 1)
    raise InvalidInputError(
        f"unknown victim architecture {spec.arch!r}; choose lenet_sigmoid, conv_relu or resnet20."
    )


# --------------------------------------------------------------------------------------- training
def _defend(model: nn.Module, defense: Defense, gen: torch.Generator) -> None:
    if defense.kind == "none":
        return
    for p in model.parameters():
        if p.grad is None:
            continue
        if defense.kind == "prune":
            share = defense.amount / 100
            k = int(p.grad.numel() * share)
            if k > 0:
                threshold = p.grad.abs().flatten().kthvalue(k).values
                p.grad[p.grad.abs() <= threshold] = 0
        else:
            p.grad += torch.randn(p.grad.shape, generator=gen) * defense.amount


def evaluate_accuracy(model: nn.Module, test: ImageSource, batch_size: int = 1000) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(test), batch_size):
            x = test.images[i : i + batch_size].float() / 255
            correct += int((model(x).argmax(1) == test.labels[i : i + batch_size]).sum())
    return correct / max(1, len(test))


def train_victim(
    spec: VictimSpec, train: ImageSource, test: ImageSource | None = None, progress: bool = False
) -> tuple[nn.Module, dict]:
    """Train a victim on ``train`` (Adam, cross-entropy) in the setting of ``spec``; return it and its metadata."""
    _, c, h, _ = train.images.shape
    model = build_victim(spec, c, len(train.class_names), h)
    gen = torch.Generator().manual_seed(spec.seed)
    n = min(spec.train_images, len(train))
    opt = torch.optim.Adam(model.parameters(), lr=spec.learning_rate)
    augmentation = Augmentation.from_policy(spec.augmentation, h)
    defense = spec.defense_setting
    steps = 0
    per_epoch = -(-n // spec.batch_size)
    # one step per batch: a bar in a terminal, in a piped log a line every few seconds with the time left
    with Progress(spec.epochs * per_epoch, f"train {spec.name}", unit="step", progress=progress) as bar:
        for epoch in range(spec.epochs):
            model.train()
            order = torch.randperm(len(train), generator=gen)[:n]
            for i in range(0, n, spec.batch_size):
                idx = order[i : i + spec.batch_size]
                x = augmentation(train.images[idx].float() / 255, item_seeds(spec.seed, epoch, idx.tolist()))
                loss = F.cross_entropy(model(x), train.labels[idx])
                opt.zero_grad()
                loss.backward()
                _defend(model, defense, gen)
                opt.step()
                steps += 1
                bar.update()
    model.eval()
    meta = {
        "spec": asdict(spec),
        "name": spec.name,
        "steps": steps,
        "test_accuracy": evaluate_accuracy(model, test) if test is not None else None,
    }
    return model, meta


def load_or_train_victim(
    spec: VictimSpec, train: ImageSource, test: ImageSource | None, folder: Path, progress: bool = False
) -> tuple[nn.Module, dict]:
    """Reuse the checkpoint ``folder/<name>.safetensors`` when present (resume), else train and save it."""
    from safetensors.torch import load_file, save_file

    folder.mkdir(parents=True, exist_ok=True)
    weights, meta_path = folder / f"{spec.name}.safetensors", folder / f"{spec.name}.json"
    _, c, h, _ = train.images.shape
    if weights.is_file() and meta_path.is_file():
        model = build_victim(spec, c, len(train.class_names), h)
        model.load_state_dict(load_file(str(weights)), strict=True)
        return model.eval(), json.loads(meta_path.read_text())
    model, meta = train_victim(spec, train, test, progress=progress)
    # both files are written aside and renamed, metadata first: a killed run leaves no half-written file,
    # and the victim counts as trained only once its weights are in place
    atomic_write_text(meta_path, json.dumps(meta, indent=2))
    tmp = weights.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(weights)
    return model, meta
