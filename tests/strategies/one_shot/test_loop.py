"""The one-shot loop's batches (DARTS train_search.py) and learning rate (ENAS' decay), against the references."""
import numpy as np
import pytest

from tfnas.config import ModelConfig
from tfnas.data import batchify, load_corpus
from tfnas.strategies.one_shot.darts import DartsConfig, DartsSearch
from tfnas.strategies.one_shot.enas import EnasConfig, EnasSearch

TINY_MODEL = ModelConfig(emsize=8, nhid=8, dropout=0.1, dropouth=0.1, dropoutx=0.1, dropouti=0.1, dropoute=0.0)
BPTT, BATCH = 8, 16


def recording(cls):
    """``cls`` with every `search_step`'s epoch, training length and learning rate recorded, and the length of
    the validation batch its compiled step gets (DARTS' bilevel step; None for a method without one)."""

    class Recording(cls):
        def build(self, vocab_size):
            super().build(vocab_size)
            if hasattr(self, "compiled_step"):
                compiled = self.compiled_step

                def recorded(train, valid, lr, update_arch):
                    self.seen[-1] = (*self.seen[-1][:2], int(valid[0].shape[1]), self.seen[-1][3])
                    return compiled(train, valid, lr, update_arch)

                self.compiled_step = recorded

        def search_step(self, train, lr, update_arch):
            self.seen.append((self.epoch, int(train[0].shape[1]), None, lr))
            return super().search_step(train, lr, update_arch)

    return Recording


def darts_train_search_batches(train_steps: int, valid_steps: int, seed: int) -> list[tuple[int, int, float]]:
    """DARTS ``train_search.py`` (at HEAD), transcribed: per step (training length, validation length, lr scale).

    ``bptt`` or ``bptt / 2`` with probability 0.05 (``int``, no jitter); the validation batch is
    ``get_batch(search_data, i % (len - 1))``, ``bptt`` long unless cut at the end; lr * seq_len / bptt. The
    random stream is the epoch's (`tfnas.data.epoch_iterator`: seed * 100_003 + epoch); targets run to the end.
    """
    rng = np.random.default_rng(seed)
    out, i = [], 0
    while i < train_steps - 1:
        seq_len = min(int(BPTT if rng.random() < 0.95 else BPTT / 2.0), train_steps - 1 - i)
        start = i % (valid_steps - 1)
        out.append((seq_len, min(BPTT, valid_steps - 1 - start), seq_len / BPTT))
        i += seq_len
    return out


def test_darts_search_batches_are_train_search_py(tmp_path, tiny_corpus):
    corpus = load_corpus(tiny_corpus)
    config = DartsConfig(model=TINY_MODEL, steps=2, batch_size=BATCH, eval_batch_size=4, bptt=BPTT, epochs=1,
                         max_eval_batches=2, log_interval=100, checkpoint_interval=1000, seed=11)
    search = recording(DartsSearch)(config)
    search.seen = []
    search.search(corpus, tmp_path / "s")
    train_steps = batchify(corpus.train, BATCH).shape[1]
    valid_steps = batchify(corpus.valid, BATCH).shape[1]
    expected = darts_train_search_batches(train_steps, valid_steps, seed=11 * 100_003 + 1)
    assert [(t, v) for _, t, v, _ in search.seen] == [(t, v) for t, v, _ in expected]
    np.testing.assert_allclose([lr for *_, lr in search.seen], [20.0 * s for *_, s in expected], rtol=1e-12)
    assert {t for _, t, _, _ in search.seen[:-1]} <= {BPTT, BPTT // 2}
    assert any(v < BPTT for _, _, v, _ in search.seen)            # the validation data wraps around


def test_enas_learning_rate_decays_by_0_96_per_epoch_after_epoch_15():
    """ENAS section 3.1: lr 20, x0.96 after every epoch from epoch 15 on."""
    search = EnasSearch(EnasConfig())
    for epoch in (1, 2, 15, 16, 17, 40):
        search.epoch = epoch
        assert search.epoch_lr() == pytest.approx(20.0 * 0.96 ** max(0, epoch - 15), rel=1e-12)


def test_enas_search_uses_fixed_bptt_and_the_decayed_learning_rate(tmp_path, tiny_corpus):
    corpus = load_corpus(tiny_corpus)
    config = EnasConfig(model=TINY_MODEL, steps=2, batch_size=BATCH, eval_batch_size=4, bptt=BPTT, epochs=3,
                        lr_decay=0.5, lr_decay_start=1, max_eval_batches=2, controller_interval=1000,
                        controller_units=8, derive_samples=2, log_interval=100, checkpoint_interval=1000, seed=2)
    search = recording(EnasSearch)(config)
    search.seen = []
    search.search(corpus, tmp_path / "s")
    train_steps = batchify(corpus.train, BATCH).shape[1]
    full, rest = divmod(train_steps - 1, BPTT)
    assert [t for _, t, _, _ in search.seen] == ([BPTT] * full + [rest][:rest]) * 3
    for epoch, seq_len, _, lr in search.seen:
        assert lr == pytest.approx(20.0 * 0.5 ** (epoch - 1) * seq_len / BPTT, rel=1e-12)
