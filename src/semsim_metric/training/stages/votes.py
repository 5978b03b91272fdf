"""Stage ``votes``: teach SemSim's backbone what annotators name in reconstructions (stage 2 of ``semantic``).

Triplets use one bit per reconstruction (recognised or not) and only order the reconstructions of one
original. The annotations hold more: every annotator named a class, or "cannot recognise". Vote tuning
trains the backbone with a linear classifier over the classes plus one "cannot recognise" output:

* each reconstruction's target is the distribution of its annotators' answers (all votes, not a
  thresholded label), so a reconstruction that nobody can read learns to look like "nothing";
* each original's target is the distribution of the answers given for the original (or its class label),
  which keeps originals on their class;
* optionally, the global soft-label loss of ``semsim_metric.training.losses.global_soft_label_loss`` on the
  original-reconstruction distance, with the recognised share as target, orders distances across
  originals directly.

A reconstruction then lies near its original in the embedding exactly when annotators name in it what
they name in the original. The classifier is thrown away afterwards; SemSim stays an embedding distance.
The stage trains through the package's one ``Trainer`` (``semsim_metric.training.trainer.run_stage``).
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ...data.anchors import AnchorPool, anchor_pair
from ...data.augmentation import Augmentation, item_seeds
from ...data.loading import undecoded
from ...errors import InvalidInputError
from ...functional import embedding_distance
from ...image_io import decode_image
from ...models import SemSimModel
from ...preprocessing import stack_at_model_size, to_model_input_for
from ..losses import global_soft_label_loss, soft_cross_entropy
from ..optim import OptimiserSettings
from ..settings import VoteTuningSettings
from ..trainer import Stage, TrainerOptions, content_digest, run_stage

__all__ = [
    "VoteObjective",
    "VoteTuningSettings",
    "domain_class_offsets",
    "tune_on_votes",
    "vote_distribution",
]


def vote_distribution(votes: list[int], n_classes: int, fallback_class: int = -1) -> Tensor:
    """Share of each answer among ``votes``; index ``n_classes`` is "cannot recognise" (vote -1).

    Without votes, ``fallback_class`` (a class index, or -1 for "cannot recognise") gets all the mass.

    Examples:
        >>> [round(v, 2) for v in vote_distribution([2, 2, -1, 2, 0], 3).tolist()]
        [0.2, 0.0, 0.6, 0.2]
    """
    out = torch.zeros(n_classes + 1)
    answers = list(votes) or [fallback_class]
    for v in answers:
        if v >= n_classes:
            raise InvalidInputError(f"vote {v} is not a class index below {n_classes}.")
        out[v if v >= 0 else n_classes] += 1.0
    return out / len(answers)


def balanced_rows(domains: list[str], min_share: float) -> list[int]:
    """Row indices of one epoch: every row once, and the rows of each image domain repeated until the
    domain has at least ``min_share`` of the largest domain's count (``0`` = every row once).

    Examples:
        >>> balanced_rows(["a", "a", "a", "a", "b"], 0.5)
        [0, 1, 2, 3, 4, 4]
        >>> balanced_rows(["a", "b"], 0.0)
        [0, 1]
    """
    by_domain: dict[str, list[int]] = {}
    for i, d in enumerate(domains):
        by_domain.setdefault(d, []).append(i)
    if min_share <= 0 or len(by_domain) < 2:
        return list(range(len(domains)))
    largest = max(len(v) for v in by_domain.values())
    out = []
    for d in sorted(by_domain, key=lambda k: by_domain[k][0]):
        idx = by_domain[d]
        out += idx * max(1, math.ceil(min_share * largest / len(idx)))
    return out


def domain_class_offsets(
    domains: list[str],
    labels: list[int],
    votes: list[list[int]],
    original_votes: list[list[int]],
    known: dict[str, int] | None = None,
    first_free: int = 0,
) -> dict[str, int]:
    """Where each image domain's classes start in one classifier: ``known`` offsets are kept, other domains
    (in sorted order) follow after the highest class used so far and after ``first_free`` (the classes of a
    stage-1 head that no domain of the data uses).

    Examples:
        >>> domain_class_offsets(["a", "b", "b"], [9, 0, 39], [[9], [-1], [3]], [[9], [0], [39]])
        {'a': 0, 'b': 10}
        >>> domain_class_offsets(["b"], [0], [[1]], [[0]], known={"a": 0, "b": 10})
        {'b': 10}
    """
    known = dict(known or {})
    top: dict[str, int] = {}
    for d, lab, vs, ovs in zip(domains, labels, votes, original_votes):
        top[d] = max(top.get(d, -1), lab, *vs, *ovs)
    used = [known[d] + top[d] + 1 for d in top if d in known]
    nxt = max(used + [max(known.values()) + 1 if known else 0, first_free])
    out = {}
    for d in sorted(top):
        if d in known:
            out[d] = known[d]
        else:
            out[d], nxt = nxt, nxt + top[d] + 1
    return out


class VoteObjective(nn.Module):
    """Soft cross-entropy of the answers for reconstructions and originals, plus the optional distance loss.
    ``forward`` takes exactly the collator's keys (a misspelled batch key is a ``TypeError``)."""

    def __init__(
        self,
        model: SemSimModel,
        n_classes: int,
        settings: VoteTuningSettings,
        rows_per_original: float,
        head: nn.Linear | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.settings = settings
        self.rows_per_original = rows_per_original
        self.classifier = nn.Linear(model.config.feature_dim, n_classes + 1)
        if (
            settings.adversarial_pool > 0
        ):  # persistent adversarial negatives (saved with the stage's checkpoints)
            size = model.config.image_size
            self.register_buffer("adv_targets", torch.zeros(settings.adversarial_pool, 3, size, size))
            self.register_buffer("adv_images", torch.zeros(settings.adversarial_pool, 3, size, size))
            self.register_buffer("adv_live", torch.zeros(settings.adversarial_pool, dtype=torch.bool))
        with torch.no_grad():
            self.classifier.weight.zero_()
            self.classifier.bias.zero_()
            if head is not None:
                self.classifier.weight[: head.out_features] = head.weight
                self.classifier.bias[: head.out_features] = head.bias

    def forward(
        self,
        pixel_values: Tensor,
        targets: Tensor,
        share: Tensor,
        anchor_pixel_values: Tensor | None = None,
        anchor_targets: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """``pixel_values``: reconstructions then their originals (``2B`` images); ``targets``: ``(2B, K + 1)``;
        ``anchor_pixel_values``: anchor images then their partners (``2A``) with ``anchor_targets`` ``(A,)``."""
        bs = share.shape[0]
        ce = soft_cross_entropy(self.classifier(self.model.backbone.pooled(pixel_values)), targets)
        loss = ce[:bs].mean() + self.settings.original_weight * ce[bs:].mean() / self.rows_per_original
        if self.settings.distance_weight > 0:
            emb = self.model.embed(pixel_values).float()
            dist = embedding_distance(emb[:bs], emb[bs:])
            loss = loss + self.settings.distance_weight * global_soft_label_loss(dist, share)
        if self.settings.anchor_weight > 0 and anchor_pixel_values is not None and anchor_targets is not None:
            n_anchor = anchor_targets.shape[0]
            n_adv = round(self.settings.adversarial_share * n_anchor)
            if n_adv:
                goals, adv = (
                    self.pooled_negatives(anchor_pixel_values[:n_anchor], n_adv)
                    if self.settings.adversarial_pool > 0
                    else self.adversarial_negatives(anchor_pixel_values[:n_adv])
                )
                anchor_pixel_values = torch.cat(
                    [anchor_pixel_values[:n_anchor], goals, anchor_pixel_values[n_anchor:], adv]
                )
                anchor_targets = torch.cat([anchor_targets, anchor_targets.new_zeros(adv.shape[0])])
            a, b = self.model.embed(anchor_pixel_values).float().split(anchor_targets.shape[0])
            dist = embedding_distance(a, b)
            copy_centre = self.settings.anchor_copy_centre
            centre = (
                self.settings.anchor_centre
                if copy_centre is None
                else torch.where(anchor_targets > 0.5, copy_centre, self.settings.anchor_centre)
            )
            loss = loss + self.settings.anchor_weight * global_soft_label_loss(
                dist, anchor_targets, centre=centre, temperature=self.settings.anchor_temperature
            )
        return {"loss": loss}

    def _unit(self, device: torch.device) -> tuple[Tensor, Tensor]:
        cfg = self.model.config
        return (
            torch.tensor(cfg.image_mean, device=device).view(1, 3, 1, 1),
            torch.tensor(cfg.image_std, device=device).view(1, 3, 1, 1),
        )

    def _toward(self, goals: Tensor, start: Tensor, step: float) -> Tensor:
        """``adversarial_steps`` signed-gradient steps of unit-range images ``start`` that lower their SemSim
        distance to the model-ready ``goals``, with the model in eval mode (its parameters get no gradient)."""
        mean, std = self._unit(goals.device)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                goal = self.model.embed(goals).float()
            # greyscale goals get greyscale negatives, as an attacker optimising a 1-channel image makes
            grey = ((goals * std + mean).amax(1) - (goals * std + mean).amin(1)).flatten(1).amax(1) < 1e-3
            g = grey.view(-1, 1, 1, 1)
            x = torch.where(g, start.mean(1, keepdim=True).expand_as(start), start)
            for _ in range(self.settings.adversarial_steps):
                x = x.detach().requires_grad_(True)
                d = embedding_distance(self.model.embed((x - mean) / std).float(), goal).sum()
                (grad,) = torch.autograd.grad(d, x)
                grad = torch.where(g, grad.mean(1, keepdim=True).expand_as(grad), grad)
                x = (x.detach() - step * grad.sign()).clamp(0, 1)
        finally:
            self.model.train(was_training)
        return x.detach()

    def _unlike(self, x: Tensor, goals: Tensor) -> Tensor:
        """True where ``x`` (unit range) still does not look like ``goals`` (model-ready): SSIM below 0.3."""
        from torchmetrics.functional.image import structural_similarity_index_measure as ssim

        mean, std = self._unit(goals.device)
        with torch.no_grad():
            return ssim(x, (goals * std + mean).clamp(0, 1), data_range=1.0, reduction="none") < 0.3

    def adversarial_negatives(self, targets: Tensor) -> tuple[Tensor, Tensor]:
        """Noise optimised toward ``targets`` (model-ready images) against the current model: uniform noise,
        then ``adversarial_steps`` signed-gradient steps (size drawn in ``[0.01, 0.05]``) that lower the
        SemSim distance. Images whose SSIM to their target reaches 0.3 are dropped (they may have become a
        real likeness). Returns ``(targets kept, negatives)``, both model-ready ``(M, 3, S, S)``."""
        mean, std = self._unit(targets.device)
        x = self._toward(
            targets, torch.rand(targets.shape, device=targets.device), 0.01 + 0.04 * float(torch.rand(1))
        )
        keep = self._unlike(x, targets)
        return targets[keep], ((x[keep] - mean) / std).detach()

    def pooled_negatives(self, anchors: Tensor, n: int) -> tuple[Tensor, Tensor]:
        """Refine ``n`` entries of the persistent pool a few steps further (empty or finished entries start
        again from noise toward one of this batch's ``anchors``) and return ``(targets, negatives)`` for the
        entries that still do not look like their target."""
        mean, std = self._unit(anchors.device)
        pool = self.adv_targets.shape[0]
        idx = torch.randperm(pool, device=anchors.device)[:n]
        restart = ~self.adv_live[idx] | (torch.rand(len(idx), device=anchors.device) < 0.05)
        if restart.any():
            k = int(restart.sum())
            pick = torch.randint(0, anchors.shape[0], (k,), device=anchors.device)
            self.adv_targets[idx[restart]] = anchors[pick].detach().float()
            self.adv_images[idx[restart]] = torch.rand(k, *anchors.shape[1:], device=anchors.device)
        goals = self.adv_targets[idx].to(anchors.dtype)
        x = self._toward(goals, self.adv_images[idx].to(anchors.dtype), 0.005 + 0.025 * float(torch.rand(1)))
        unlike = self._unlike(x, goals)
        self.adv_images[idx] = x.float()
        self.adv_live[idx] = unlike
        return goals[unlike], ((x[unlike] - mean) / std).detach()


class _VoteItems(torch.utils.data.Dataset):
    """Item ``i`` is row ``rows[i]`` (rows of small image domains may appear several times, each time with
    augmentation seeds of its own)."""

    def __init__(
        self,
        recon: list[Tensor],
        orig: list[Tensor],
        recon_target: Tensor,
        orig_target: Tensor,
        share: Tensor,
        seed: int,
        anchors: AnchorPool | None = None,
        anchor_kind: str = "mild",
        rows: list[int] | None = None,
    ) -> None:
        self.recon, self.orig, self.recon_target, self.orig_target, self.share = (
            recon,
            orig,
            recon_target,
            orig_target,
            share,
        )
        self.seed, self.epoch, self.anchors, self.anchor_kind = seed, 0, anchors, anchor_kind
        self.rows = list(range(len(recon))) if rows is None else list(rows)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        s_rec, s_orig, s_anchor = item_seeds(self.seed, self.epoch, [3 * i, 3 * i + 1, 3 * i + 2])
        j = self.rows[i]
        item = {
            "reconstruction": self.recon[j],
            "original": self.orig[j],
            "recon_target": self.recon_target[j],
            "orig_target": self.orig_target[j],
            "share": self.share[j],
            "seeds": (s_rec, s_orig),
        }
        if self.anchors is not None:
            item["anchor"] = anchor_pair(self.anchors, s_anchor, self.anchor_kind)
        return item


class _VoteCollator:
    def __init__(self, config: Any, augmentation: Augmentation) -> None:
        self.config, self.augmentation = config, augmentation

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Tensor]:
        cfg = self.config
        seeds = [it["seeds"][0] for it in items] + [it["seeds"][1] for it in items]
        images = stack_at_model_size(
            [it["reconstruction"] for it in items] + [it["original"] for it in items],
            data_range=255,
            image_size=cfg.image_size,
        )  # image domains of any size
        x = to_model_input_for(cfg, images, data_range=1.0, augment=lambda b: self.augmentation(b, seeds))
        targets = torch.stack([it["recon_target"] for it in items] + [it["orig_target"] for it in items])
        batch = {"pixel_values": x, "targets": targets, "share": torch.stack([it["share"] for it in items])}
        if "anchor" in items[0]:
            pairs = [it["anchor"] for it in items]
            both = stack_at_model_size(
                [p[0] for p in pairs] + [p[1] for p in pairs], data_range=1.0, image_size=cfg.image_size
            )
            batch["anchor_pixel_values"] = to_model_input_for(cfg, both, data_range=1.0)
            batch["anchor_targets"] = torch.tensor([p[2] for p in pairs], dtype=torch.float32)
        return batch


def tune_on_votes(
    model: SemSimModel,
    split: Any,
    settings: VoteTuningSettings,
    *,
    head: nn.Linear | None = None,
    class_offsets: dict[str, int] | None = None,
    output_dir: str | Path | None = None,
    resume: bool = False,
    options: TrainerOptions | None = None,
) -> tuple[dict[str, Any], nn.Linear]:
    """Train ``model.backbone`` in place on the annotators' answers of a SemSim-schema split.

    The split's images are decoded to uint8 (0-255) and pass through the package's input gate. Afterwards
    a reconstruction that annotators read as its original's class lies at a small SemSim distance from it
    (distance in ``[0, 2]``, lower = more leakage); one they could not read lies far away.

    Args:
        model: the model to tune (its input gate settings are used).
        split: a ``datasets.Dataset`` in the SemSim schema with ``votes`` (rows without votes are an error).
        settings: see ``VoteTuningSettings`` (``epochs`` > 0).
        head: a class classifier to start from (e.g. stage 1's); its rows are copied for the classes it has.
        class_offsets: where each image domain's classes start in ``head`` (stage 1's ``class_offsets``,
            keyed by ``source_dataset``). Rows of several domains each keep their own classes: a domain
            without an offset gets classes after all others, so ``class_label`` 0 of two domains never
            share a classifier row.
        output_dir: folder for the stage's checkpoints (default: a temporary folder).
        resume: continue from the last checkpoint in ``output_dir``.
        options: how the ``Trainer`` runs (``TrainerOptions``: precision, logging, progress, callbacks).

    Returns:
        A JSON-serialisable summary (rows, classes, steps, final loss, seconds) and the classifier over
        the classes plus "cannot recognise" (last output).

    Raises:
        ValueError: rows without votes, or ``settings.epochs`` is 0 (nothing to train).
    """
    if settings.epochs <= 0:
        raise InvalidInputError(f"vote-tuning epochs must be > 0, got {settings.epochs}.")
    raw = undecoded(split)
    data = _VoteData.from_rows(raw, head, class_offsets)
    rows = balanced_rows(raw["source_dataset"], settings.balance_domains)
    n = len(rows)
    bs = min(settings.batch_size, n)
    torch.manual_seed(settings.seed)
    objective = VoteObjective(
        model, data.n_classes, settings, data.n_rows / max(1, data.n_originals), head=head
    )
    anchors = (
        AnchorPool.from_domains(settings.anchor_domains, seed=settings.seed)
        if settings.anchor_weight > 0
        else None
    )
    stage = Stage(
        name="votes",
        objective=objective,
        dataset=_VoteItems(
            data.recon,
            data.orig,
            data.recon_target,
            data.orig_target,
            data.share,
            settings.seed,
            anchors,
            settings.anchor_kind,
            rows,
        ),
        collator=_VoteCollator(model.config, settings.augmentation()),
        optimiser=OptimiserSettings(settings.learning_rate, schedule="cosine"),
        batch_size=bs,
        max_steps=settings.epochs * max(1, n // bs),
        seed=settings.seed,
        drop_last=True,
        settings={**dataclasses.asdict(settings), "rows": _rows_digest(raw)},
    )
    model.train()
    with tempfile.TemporaryDirectory() as tmp:
        info = run_stage(stage, output_dir or tmp, resume=resume, options=options)
    model.eval()
    return _vote_summary(settings, data, n, anchors, info), objective.classifier.cpu().eval()


def _rows_digest(raw: Any) -> str:
    """What vote tuning learns from in a split (reconstruction ids, votes, class labels): part of the stage's
    resume plan."""
    return content_digest(
        [list(raw[c]) for c in ("reconstruction_id", "votes", "original_votes", "class_label")]
    )


@dataclasses.dataclass
class _VoteData:
    """A split's rows as vote tuning trains on them: decoded images (each original decoded once), the
    annotators' answers as target distributions over the classes of every domain (plus "cannot recognise"),
    and each row's recognised share."""

    recon: list[Tensor]
    orig: list[Tensor]
    recon_target: Tensor
    orig_target: Tensor
    share: Tensor
    n_classes: int
    #: where each image domain's classes start
    offsets: dict[str, int]
    #: rows, and distinct originals among them
    n_rows: int
    n_originals: int

    @classmethod
    def from_rows(cls, raw: Any, head: nn.Linear | None, class_offsets: dict[str, int] | None) -> _VoteData:
        """Read an undecoded SemSim-schema split (see ``tune_on_votes`` for ``head`` and ``class_offsets``).

        Raises:
            InvalidInputError: rows without votes.
        """
        votes, original_votes = raw["votes"], raw["original_votes"]
        missing = sum(1 for v in votes if not v)
        if missing:
            raise InvalidInputError(
                f"vote tuning needs the annotators' answers: {missing} of {len(votes)} rows have no votes. "
                "Import votes first (semsim votes import) or use a recipe without vote tuning."
            )
        votes, original_votes, labels, offsets = _shift_classes(raw, head, class_offsets)
        n_classes = 1 + max(
            max(max(v) for v in votes),
            max((max(v) for v in original_votes if v), default=-1),
            max(labels),
            head.out_features - 1 if head is not None else -1,
        )
        recon = [decode_image(x) for x in raw["reconstruction"]]
        original_ids = raw["original_id"]
        first: dict[str, int] = {}
        for i, oid in enumerate(original_ids):
            first.setdefault(oid, i)
        orig_cache = {oid: decode_image(raw[i]["original"]) for oid, i in first.items()}
        orig = [orig_cache[oid] for oid in original_ids]
        recon_target = torch.stack([vote_distribution(v, n_classes) for v in votes])
        orig_target = torch.stack(
            [vote_distribution(ov, n_classes, fallback_class=lab) for ov, lab in zip(original_votes, labels)]
        )
        share = torch.tensor(
            [
                float(r) if s is None or s != s else float(s)
                for s, r in zip(raw["recognized_share"], raw["recognized"])
            ],
            dtype=torch.float32,
        )
        return cls(recon, orig, recon_target, orig_target, share, n_classes, offsets, len(votes), len(first))


def _shift_classes(
    raw: Any, head: nn.Linear | None, class_offsets: dict[str, int] | None
) -> tuple[list[list[int]], list[list[int]], list[int], dict[str, int]]:
    """The votes, original votes and class labels of a split with each image domain's classes moved to its
    own range (``domain_class_offsets``; "cannot recognise", -1, kept), and those offsets."""
    domains, labels = raw["source_dataset"], raw["class_label"]
    votes, original_votes = raw["votes"], raw["original_votes"]
    if class_offsets and len(class_offsets) == 1 and len(set(domains)) == 1:
        class_offsets = {domains[0]: 0}  # one domain in both stages: stage 1's classes are the data's classes
    offsets = domain_class_offsets(
        domains,
        labels,
        votes,
        original_votes,
        class_offsets,
        first_free=head.out_features if head is not None else 0,
    )
    votes = [[v + offsets[d] if v >= 0 else v for v in vs] for vs, d in zip(votes, domains)]
    original_votes = [[v + offsets[d] if v >= 0 else v for v in vs] for vs, d in zip(original_votes, domains)]
    labels = [lab + offsets[d] if lab >= 0 else lab for lab, d in zip(labels, domains)]
    return votes, original_votes, labels, offsets


def _vote_summary(
    settings: VoteTuningSettings,
    data: _VoteData,
    items: int,
    anchors: AnchorPool | None,
    info: dict[str, Any],
) -> dict[str, Any]:
    """The JSON-serialisable summary ``tune_on_votes`` returns: what it trained on and the stage's record."""
    return {
        "settings": dataclasses.asdict(settings),
        "rows": data.n_rows,
        "items_per_epoch": items,
        "originals": data.n_originals,
        "classes": data.n_classes,
        "class_offsets": data.offsets,
        "anchor_pool": (
            {d: anchors.domains.count(d) for d in dict.fromkeys(anchors.domains)} if anchors else None
        ),
        "steps": info["steps"],
        "final_loss": info["final_loss"],
        "seconds": info["seconds"],
        "estimate": info.get("estimate", {}),
    }
