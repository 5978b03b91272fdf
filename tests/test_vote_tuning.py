"""Vote tuning (stage 2 of the semantic recipe) learns the annotators' answers and needs them."""

from pathlib import Path

import pytest
import torch

from semsim_metric import SemSimConfig, SemSimModel
from semsim_metric.data.loading import load_folder_or_hub
from semsim_metric.training.stages.votes import VoteTuningSettings, tune_on_votes, vote_distribution
from semsim_metric.training.trainer import TrainerOptions

ROOT = Path(__file__).resolve().parents[1]
QUIET = TrainerOptions(progress=False)


@pytest.fixture(scope="module")
def small_split():
    """8 originals of the default dataset's train split, all 12 settings each (96 rows)."""
    train = load_folder_or_hub(str(ROOT / "hub" / "fmnist-judged-v1"))["train"]
    ids = sorted(set(train["original_id"]))[:8]
    return train.filter(lambda r: r["original_id"] in ids)


def test_vote_distribution_counts_cannot_recognise_last():
    assert vote_distribution([-1, -1, 1, 1, 1], 2).tolist() == pytest.approx([0.0, 0.6, 0.4])
    assert vote_distribution([], 3, fallback_class=1).tolist() == [0.0, 1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="not a class index below 2"):
        vote_distribution([2], 2)


def test_settings_are_validated():
    with pytest.raises(ValueError, match="invalid vote-tuning settings"):
        VoteTuningSettings(epochs=-1)
    with pytest.raises(ValueError, match="anchor_copy_centre must be >= 0"):
        VoteTuningSettings(anchor_copy_centre=-1.0)  # None means "the anchor centre"; the flat form writes -1


def test_zero_epochs_is_a_recipe_without_the_stage_not_a_stage_to_run(small_split):
    assert VoteTuningSettings(epochs=0).epochs == 0  # what a recipe without stage 2 holds
    with pytest.raises(ValueError, match="vote-tuning epochs must be > 0"):
        tune_on_votes(
            SemSimModel(SemSimConfig(base_width=2)), small_split, VoteTuningSettings(epochs=0), options=QUIET
        )


def test_rows_without_votes_are_refused(small_split):
    unvoted = small_split.map(lambda r: {"votes": []})
    with pytest.raises(ValueError, match="96 of 96 rows have no votes"):
        tune_on_votes(SemSimModel(SemSimConfig(base_width=2)), unvoted, VoteTuningSettings(), options=QUIET)


@pytest.mark.slow
def test_vote_tuning_learns_what_the_annotators_answered(small_split):
    from semsim_metric.image_io import decode_image, stack_images
    from semsim_metric.preprocessing import to_model_input

    torch.manual_seed(0)
    model = SemSimModel(SemSimConfig(base_width=4))
    info, classifier = tune_on_votes(
        model, small_split, VoteTuningSettings(epochs=20, batch_size=32, learning_rate=0.05), options=QUIET
    )
    assert info["classes"] == 10 and info["rows"] == 96 and info["originals"] == 8
    assert classifier.out_features == 11  # 10 classes + "cannot recognise"
    cfg = model.config
    x = to_model_input(
        stack_images([decode_image(r) for r in small_split["reconstruction"]]),
        data_range=255,
        image_size=cfg.image_size,
        mean=cfg.image_mean,
        std=cfg.image_std,
    )
    with torch.inference_mode():
        predicted = classifier(model.backbone.pooled(x)).argmax(1)
    majority = torch.stack([vote_distribution(v, 10) for v in small_split["votes"]]).argmax(1)
    always_most_common = majority.bincount().max().item() / len(majority)
    accuracy = (predicted == majority).float().mean().item()
    assert accuracy > always_most_common + 0.15, (accuracy, always_most_common)  # it learned the answers


@pytest.mark.slow
def test_anchor_loss_pushes_noise_away_and_mild_copies_close(small_split):
    from semsim_metric.data.anchors import AnchorPool, anchor_pair
    from semsim_metric.preprocessing import stack_at_model_size, to_model_input

    def anchor_distances(model):
        pool = AnchorPool.default(seed=99, fashion_mnist=50, photo_crops=50, synthetic=50)
        pairs = [anchor_pair(pool, s) for s in range(120)]
        cfg = model.config
        prep = [
            to_model_input(
                stack_at_model_size(list(side), data_range=1.0, image_size=32),
                data_range=1.0,
                image_size=32,
                mean=cfg.image_mean,
                std=cfg.image_std,
            )
            for side in ([p[0] for p in pairs], [p[1] for p in pairs])
        ]
        with torch.no_grad():
            d = model.eval().distance(*prep)
        t = torch.tensor([p[2] for p in pairs]).bool()
        return float(d[~t].mean() - d[t].mean())

    torch.manual_seed(0)
    start = SemSimModel(SemSimConfig(base_width=4, embedding="spatial")).state_dict()
    gaps = {}
    for weight in (0.0, 2.0):
        model = SemSimModel(SemSimConfig(base_width=4, embedding="spatial"))
        model.load_state_dict(start)
        info, _ = tune_on_votes(
            model,
            small_split,
            VoteTuningSettings(epochs=6, batch_size=16, learning_rate=0.05, anchor_weight=weight, seed=0),
            options=QUIET,
        )
        gaps[weight] = anchor_distances(model)
    assert info["anchor_pool"] == {"fashion-mnist": 4000, "photos": 2000, "synthetic": 2000}
    # with anchors, unrelated images end up much farther than mild copies than without
    assert gaps[2.0] > gaps[0.0] + 0.1, gaps


def _objective(**settings):
    from semsim_metric.training.stages.votes import VoteObjective

    torch.manual_seed(0)
    model = SemSimModel(SemSimConfig(base_width=4, embedding="spatial"))
    return VoteObjective(model, 3, VoteTuningSettings(anchor_weight=1.0, **settings), rows_per_original=1.0)


def _model_ready(objective, unit):
    cfg = objective.model.config
    mean, std = torch.tensor(cfg.image_mean).view(1, 3, 1, 1), torch.tensor(cfg.image_std).view(1, 3, 1, 1)
    return (unit - mean) / std


def test_adversarial_negatives_come_closer_than_the_noise_they_start_from_and_stay_unlike_the_anchor():
    objective = _objective(adversarial_share=0.5, adversarial_pool=8, adversarial_steps=4)
    anchors = _model_ready(objective, torch.rand(8, 3, 32, 32))
    objective.eval()
    with torch.no_grad():
        noise_d = objective.model.distance(anchors, _model_ready(objective, torch.rand(8, 3, 32, 32))).mean()
    for _ in range(6):  # every visit refines pool entries a few steps further
        goals, negatives = objective.pooled_negatives(anchors, 8)
    with torch.no_grad():
        adv_d = objective.model.distance(goals, negatives).mean()
    assert len(negatives) > 0 and adv_d < noise_d - 0.05, (float(adv_d), float(noise_d))
    assert bool(objective.adv_live.any())
    # what is pushed away never looks like its anchor (SSIM < 0.3)
    assert bool(
        objective._unlike(
            (negatives * objective._unit(negatives.device)[1] + objective._unit(negatives.device)[0]), goals
        ).all()
    )


def test_greyscale_anchors_get_greyscale_adversarial_negatives():
    objective = _objective(adversarial_share=0.5, adversarial_steps=2)
    grey = torch.rand(4, 1, 32, 32).expand(4, 3, 32, 32)
    _goals, negatives = objective.adversarial_negatives(_model_ready(objective, grey))
    cfg = objective.model.config
    unit = negatives * torch.tensor(cfg.image_std).view(1, 3, 1, 1) + torch.tensor(cfg.image_mean).view(
        1, 3, 1, 1
    )
    assert len(negatives) == 4
    assert float((unit.amax(1) - unit.amin(1)).max()) < 1e-4


def test_recognised_anchors_can_be_pulled_closer_than_the_boundary_of_unrelated_ones():
    objective = _objective(anchor_centre=0.95, anchor_copy_centre=0.3)
    pairs = _model_ready(objective, torch.rand(4, 3, 32, 32))
    batch = dict(
        pixel_values=pairs,
        targets=torch.full((4, 4), 0.25),
        share=torch.zeros(2),
        anchor_pixel_values=torch.cat([pairs[:2], pairs[2:]]),
        anchor_targets=torch.tensor([1.0, 1.0]),
    )
    with_copy_centre = objective(**batch)["loss"]
    same_centre = _objective(anchor_centre=0.95)(**batch)["loss"]
    assert float(with_copy_centre.detach()) > float(
        same_centre.detach()
    )  # the same distances cost more there
