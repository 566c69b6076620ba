"""The layers: `LookupEmbedding` (`lookup`), `OneHotDense` (`one_hot`),
`PretrainedEmbedding` (`pretrained/`), `HashedEmbedding` (`hashed`: raw
ids hashed into a `LookupEmbedding`'s rows), `QREmbedding` (`qr`: two
`LookupEmbedding` tables), and what they share (`base`).

Import them from `keras_embedlab`.
"""
