"""A model records what it was trained on; inputs far outside it raise one OutOfDomainWarning."""

from __future__ import annotations

import warnings

import pytest
import torch

from semsim_metric import SemSim, SemSimConfig, SemSimLoss, SemSimModel, semsim
from semsim_metric.domain import OutOfDomainWarning, domain_problems
from semsim_metric.preprocessing import to_model_input
from tests.helpers import model_with_bar_domain


def _model_with_domain() -> tuple[SemSimModel, torch.Tensor]:
    return model_with_bar_domain(64)


def test_in_domain_inputs_do_not_warn():
    model, originals = _model_with_domain()
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        value = semsim(originals[:8].float() / 255, originals[:8].float() / 255, model=model)
    # scored, not skipped: identical images lie at distance 0
    assert float(value) == pytest.approx(0.0, abs=1e-4)


def test_colour_and_size_and_content_differences_are_named():
    model, _ = _model_with_domain()
    domain = model.config.training_domain
    colour = torch.rand(4, 3, 64, 64)
    kinds = dict(domain_problems(domain, colour))
    assert "colour" in kinds["channels"] and "greyscale" in kinds["channels"]
    assert "64x64" in kinds["size"] and "28x28" in kinds["size"]
    noise = torch.rand(8, 1, 28, 28)
    cfg = model.config
    with torch.no_grad():
        emb = model.embed(
            to_model_input(noise, data_range=1.0, image_size=32, mean=cfg.image_mean, std=cfg.image_std)
        )
    assert [k for k, _ in domain_problems(domain, noise, emb)] == ["content"]


def test_the_warning_comes_once_and_can_be_silenced():
    model, _ = _model_with_domain()
    x = torch.rand(2, 3, 40, 40)
    with pytest.warns(OutOfDomainWarning, match="colour") as record:  # noqa: PT031 - warned once over two calls
        semsim(x, x, model=model)
        semsim(x, x, model=model)
    assert sum("colour" in str(w.message) for w in record) == 1
    model2, _ = _model_with_domain()
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        semsim(x, x, model=model2, check_domain=False)
        SemSim(model2, check_domain=False).update(x, x)
        SemSimLoss(model2, check_domain=False)(x, x)


def test_models_without_a_record_are_not_checked():
    model = SemSimModel(SemSimConfig(base_width=4)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        semsim(torch.rand(2, 3, 50, 50), torch.rand(2, 3, 50, 50), model=model)


def test_a_collected_models_warnings_are_forgotten_so_a_new_model_at_its_address_still_warns():
    import gc

    from semsim_metric import domain

    model, _ = _model_with_domain()
    address = id(model.config)
    x = torch.rand(2, 3, 40, 40)
    with pytest.warns(OutOfDomainWarning, match="colour"):
        semsim(x, x, model=model)
    assert (address, "channels") in domain._WARNED
    del model
    gc.collect()
    # Python may give the next config this address: it must not inherit the collected model's warnings
    assert not any(seen == address for seen, _ in domain._WARNED)
