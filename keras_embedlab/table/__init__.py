"""How a table is stored, apart from how it is read: `storage` (float32,
int8, packed int4) and `layer` (LoRA, `quantize`, Keras's save format,
the converters)."""
