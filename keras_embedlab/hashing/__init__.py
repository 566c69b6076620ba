"""Ids without a vocabulary: hashing raw ids and strings into buckets.

- `murmur`: MurmurHash3 of 64-bit ids in 32-bit words, written once for
  NumPy and `keras.ops` (NumPy only).
- `ids`: `hash_ids` and `split_ids` (`keras.ops` inside graphs, NumPy on
  NumPy arrays).
- `strings`: `hash_strings`, the buckets of `keras.layers.Hashing` in
  NumPy, without TensorFlow (NumPy only).

Nothing is imported here, so that `keras_embedlab.hashing.strings` stays
free of Keras.
"""
