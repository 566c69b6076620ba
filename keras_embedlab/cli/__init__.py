"""The command line: `python -m keras_embedlab demo` and `... bench`.

Not imported by anything that runs at training or inference time.
"""
