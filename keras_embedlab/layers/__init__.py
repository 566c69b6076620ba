"""The layers: `LookupEmbedding` (`lookup`), `OneHotDense` (`one_hot`),
`PretrainedEmbedding` (`pretrained/`), and what they share (`base`).

Import them from `keras_embedlab`.
"""
