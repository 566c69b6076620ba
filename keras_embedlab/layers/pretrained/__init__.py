"""`PretrainedEmbedding` (`layer`), built from vector files (`int8` for
tables quantized as they are read) and what it checks (`checks`,
`vocabulary`)."""
