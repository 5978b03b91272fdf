"""Training stages, each an objective trained by the one ``Trainer`` (:mod:`semsim_metric.training.trainer`):

* :mod:`.classes` - class-supervised backbone pre-training (stage 1 of ``semantic``);
* :mod:`.votes` - learning the annotators' answers (stage 2 of ``semantic``);
* :mod:`.triplets` - the paper's triplet loss.
"""
