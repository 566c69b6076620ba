"""Whole models to and from Keras's own embedding classes (`models`)."""
