"""Sampled softmax for large vocabularies: `sampled_softmax_loss` (as
`tf.nn.sampled_softmax_loss`), its sampler `log_uniform_candidate_sampler`,
and `SampledSoftmaxLoss`, a Keras loss on a tied `LookupEmbedding`."""

from keras_embedlab.sampled_softmax.loss import (
    SampledSoftmaxLoss,
    sampled_softmax_loss,
)
from keras_embedlab.sampled_softmax.sampler import (
    log_uniform_candidate_sampler,
)

__all__ = ["SampledSoftmaxLoss", "log_uniform_candidate_sampler",
           "sampled_softmax_loss"]
