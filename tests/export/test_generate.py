"""`tfnas generate`: seeded, top-k respecting, and greedy decoding equals a Keras argmax rollout."""
import numpy as np
import pytest

from tfnas.cli import main
from tfnas.export import generate_ids, generate_text, load_export, sample_token


def keras_greedy(model, prompt, n):
    """Argmax rollout with the Keras model, recomputing the whole sequence from the zero state."""
    seq, out = list(prompt), []
    for _ in range(n):
        token = int(np.argmax(model.forward(np.asarray([seq], np.int32)).logits.numpy()[0, -1]))
        out.append(token)
        seq.append(token)
    return out


@pytest.mark.parametrize("kind", ["darts_v2", "attention"])
def test_top_k_1_is_keras_greedy_rollout(runs, kind):
    model = runs.loaded(kind).model
    vocab = runs.loaded(kind).vocab
    prompt = [vocab.eos_id, vocab.word_to_id("w3"), vocab.word_to_id("w4")]
    expected = keras_greedy(model, prompt, 5)  # 8 tokens in all: within one bptt window of the attention LM
    for fmt in ("onnx", "savedmodel"):
        lm = load_export(runs.exports(kind) / fmt)
        assert generate_ids(lm, prompt, 5, temperature=1.0, top_k=1, seed=123) == expected
        assert generate_ids(lm, prompt, 5, temperature=0.0) == expected
    assert generate_text(lm, "w3 w4", 5, top_k=1).ids == expected


def test_seeded_sampling_is_deterministic_and_stays_in_top_k(runs):
    lm = load_export(runs.exports("darts_v2") / "onnx")
    model = runs.loaded("darts_v2").model
    prompt = [lm.vocab.eos_id, lm.vocab.word_to_id("w10")]
    a = generate_ids(lm, prompt, 15, temperature=1.5, top_k=3, seed=5)
    assert a == generate_ids(lm, prompt, 15, temperature=1.5, top_k=3, seed=5)
    assert a != generate_ids(lm, prompt, 15, temperature=1.5, top_k=3, seed=6)
    seq = list(prompt)
    for token in a:  # every drawn token is among the 3 likeliest at its step
        logits = model.forward(np.asarray([seq], np.int32)).logits.numpy()[0, -1]
        assert token in np.argsort(-logits)[:3]
        seq.append(token)
    # The same seed gives the same text on another format.
    sm = load_export(runs.exports("darts_v2") / "savedmodel")
    assert generate_ids(sm, prompt, 15, temperature=1.5, top_k=3, seed=5) == a


def test_sample_token_distribution():
    rng = np.random.default_rng(0)
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    draws = [sample_token(logits, rng, top_k=2) for _ in range(4000)]
    assert set(draws) == {0, 1}
    assert np.mean(np.array(draws) == 0) == pytest.approx(0.5 / 0.8, abs=0.03)
    hot = [sample_token(logits, rng, temperature=0.25) for _ in range(2000)]  # sharper: p0 = .5^4 / sum
    assert np.mean(np.array(hot) == 0) == pytest.approx(0.0625 / (0.0625 + 0.0081 + 0.000506 + 6.25e-6), abs=0.03)
    assert sample_token(logits, rng, temperature=0) == 0
    with pytest.raises(ValueError, match="top_k"):
        generate_ids(None, [1], 3, top_k=0)


def test_attention_generation_beyond_one_window_agrees_across_formats(runs):
    kind = "attention"
    prompt = [runs.loaded(kind).vocab.eos_id]
    onnx_ids = generate_ids(load_export(runs.exports(kind) / "onnx"), prompt, 20, top_k=1)
    keras_ids = generate_ids(load_export(runs.exports(kind) / "keras"), prompt, 20, top_k=1)
    assert onnx_ids == keras_ids and len(onnx_ids) == 20


def test_cli_generate_is_reproducible(runs, capsys):
    argv = ["generate", "--model", str(runs.exports("lstm") / "onnx"), "--prompt", "w1 w2", "--max-tokens", "12",
            "--temperature", "0.8", "--top-k", "5", "--seed", "3"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert main(argv) == 0
    assert capsys.readouterr().out == first
    words = first.split()
    assert words[:2] == ["w1", "w2"] and len(words) <= 14 and all(w.startswith("w") or w == "<unk>" for w in words)


class _CharModel:
    """What `prompt_ids` reads of an export: a character-level one's metadata and vocabulary."""

    def __init__(self):
        from tfnas.data import Vocabulary
        from tfnas.export.metadata import ExportMetadata

        self.vocab = Vocabulary(["<eos>", "a", "<space>", "b"])
        self.metadata = ExportMetadata(format="onnx", vocab_size=4, vocab_sha256="", eos_id=0, unk_id=None,
                                       states=[], bptt=35, test_batch_size=1, tokens="chars")

    def encode(self, words):
        return np.asarray([self.vocab.word_to_id(w) if w in self.vocab else -1 for w in words], np.int64)


def test_a_character_level_prompt_is_split_into_characters_and_generation_joined_without_spaces():
    from tfnas.export.generate import Generation, prompt_ids, prompt_tokens

    assert prompt_tokens("ab a", "chars") == ["a", "b", "<space>", "a"]
    assert prompt_tokens("a\nb", "chars") == ["a", "<eos>", "b"]
    assert prompt_tokens("ab a", "words") == ["ab", "a"]
    assert prompt_ids(_CharModel(), "ab a") == [0, 1, 3, 2, 1]
    assert Generation(["a", "b"], ["<space>", "b", "<eos>", "a"], [2, 3, 0, 1], "chars").text == "ab b\na"
    assert Generation(["a", "b"], ["b", "<eos>", "a"], [3, 0, 1]).text == "a b b\na"


def test_an_export_of_before_the_tokens_field_reads_words():
    import json

    from tfnas.export.metadata import ExportMetadata

    data = json.loads(_CharModel().metadata.to_json())
    assert data["tokens"] == "chars"
    del data["tokens"]
    assert ExportMetadata.from_json(json.dumps(data)).tokens == "words"
