"""Every example runs (with small sizes) and finds what the README says."""

import ast
import importlib.util
import io
import os
import sys
from contextlib import redirect_stdout

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                        "examples")


def run_example(name, *argv):
    path = os.path.join(EXAMPLES, f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        status = module.main(list(argv))
    return status, buffer.getvalue()


@pytest.mark.parametrize("argv", [[], ["--vocabulary", "50", "--ids", "7"]])
def test_embedding_is_dense_on_one_hot(argv):
    status, text = run_example("embedding_is_dense_on_one_hot", *argv)
    assert status == 0, text
    assert text.count("bit for bit: True") == 3
    assert "evidence agrees" in text


def test_lookup_vs_matmul_speed():
    status, text = run_example("lookup_vs_matmul_speed", "--sizes",
                               "100,3000", "--ids", "1024", "--dim", "16",
                               "--repeats", "3")
    # Timings are noisy on shared machines: the verdict is not asserted here
    # (benchmarks/RESULTS.md has the measured ratios), only that the example
    # runs and prints one ratio per size and a verdict.
    assert status == 0, text
    assert text.count("x\n") == 2
    assert ("lookup wins and the gap grows" in text
            or "CONTRADICTION" in text)


def test_sparse_gradient_rows():
    status, text = run_example("sparse_gradient_rows", "--vocabulary", "600")
    assert status == 0, text
    assert "SGD, one step on A: rows changed [3, 17, 256]" in text
    assert "[3, 5, 17, 99, 256, 500]" in text


def test_parameter_count():
    status, text = run_example("parameter_count", "--length", "10")
    assert status == 0, text
    assert "LookupEmbedding(13, 3): 39 parameters, expected 39" in text
    assert "OneHotDense(13, 3): 39 parameters, expected 39" in text
    assert "OneHotDense(13, 3, use_bias=True): 42 parameters" in text
    assert "use_bias=False" not in text  # LookupEmbedding has no use_bias


def test_bias_and_activation():
    status, text = run_example("bias_and_activation")
    assert status == 0, text
    assert "OneHotDense      outputs that moved: ids [0, 1, 2, 3, 4, 5]" in text
    assert "LookupEmbedding  outputs that moved: ids [0]" in text


def test_initialization_is_not_word2vec():
    status, text = run_example("initialization_is_not_word2vec",
                               "--vocabulary", "2000", "--dim", "20")
    assert status == 0, text
    assert "nearest to 'king' is 'queen'" in text
    assert "evidence agrees" in text


def test_pretrained_vectors():
    status, text = run_example("pretrained_vectors", "--samples", "600",
                               "--epochs", "4")
    assert status == 0, text
    assert "found 100 of 103 tokens (97.1%), 0 via lowercase" in text
    missing = text.split("missing from the file: ")[1].split("\n")[0]
    assert sorted(ast.literal_eval(missing)) == ["blick", "quux", "zorp"]
    assert text.count("validation accuracy") == 2


def test_fasttext_subwords_without_gensim_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gensim", None)  # as if not installed
    with pytest.raises(SystemExit) as info:
        run_example("fasttext_subwords")
    message = str(info.value.code)
    assert "trains its model with gensim, which is not installed" in message
    assert "pip install gensim" in message
    assert "keras_embedlab[examples]" in message


def test_fasttext_subwords():
    pytest.importorskip("gensim", reason="the example trains with gensim")
    status, text = run_example("fasttext_subwords")
    assert status == 0, text
    assert ("found 12 of 12 tokens (100.0%), 1 via lowercase, 4 from "
            "subword n-grams") in text
    # Each unseen word's nearest neighbour shares its stem.
    for word, stem in [("walkway", "walk"), ("repainted", "painted"),
                       ("cookings", "cooking"), ("jumpy", "jumped")]:
        line = text.split(f"{word!r} is not in the model; nearest: ")[1]
        assert line.startswith(f"{stem} ("), line


def test_train_word2vec():
    status, text = run_example("train_word2vec", "--sentences", "1200",
                               "--epochs", "3", "--vector-size", "16",
                               "--verbose", "0")
    assert status == 0, text
    rate = int(text.split("in its group for ")[1].split("%")[0])
    assert rate >= 90, text  # chance is 7%
    assert "same vectors: True" in text


# PyTorch's tracer warns about shape arithmetic (Keras's and ours) while
# exporting; the test checks what the exported model does.
@pytest.mark.filterwarnings("ignore:Converting a tensor to a Python")
@pytest.mark.filterwarnings("ignore:torch.as_tensor results are")
def test_export_and_serve():
    status, text = run_example("export_and_serve", "--format", "onnx")
    assert status == 0, text
    lines = [line for line in text.splitlines() if line.startswith("onnx")]
    assert len(lines) == 2, text
    error, zeros = lines
    assert "invalid_ids='error'" in error and "id 100: refused" in error
    assert "invalid_ids='zeros'" in zeros and "id 100: zero row" in zeros
    for line in lines:
        difference = float(line.split("predict| = ")[1].split(";")[0])
        assert difference <= 1e-6, line
