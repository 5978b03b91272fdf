"""Training stages, each an objective trained by the one ``Trainer`` (``semsim_metric.training.trainer``):

* ``.classes`` - class-supervised backbone pre-training (stage 1 of ``semantic``);
* ``.votes`` - learning the annotators' answers (stage 2 of ``semantic``);
* ``.triplets`` - the paper's triplet loss.
"""
