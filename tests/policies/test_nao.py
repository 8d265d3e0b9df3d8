"""NAO's encoder-predictor-decoder (Luo et al., NeurIPS 2018): tokens, metrics, Eq. 1, Eq. 2, footnote 4."""
import itertools

import numpy as np
import pytest
import tensorflow as tf

from support import SyntheticEvaluator, log_softmax, sigmoid
from tfnas.genotypes.dag import Genotype
from tfnas.policies.nao import (EncoderPredictorDecoder, NaoTokens, NaoTrainer, fit_logs, footnote4_steps,
                                grow_steps, hamming_distance, nao_loss, normalise_scores, pairwise_accuracy,
                                random_relabel, relabel)
from tfnas.spaces.dag import DagSpace


def small_epd(tokens, seed=0, **kw):
    return EncoderPredictorDecoder(tokens.masks, **{**dict(embed=8, hidden=16, mlp=[12], decoder_hidden=16,
                                                          seed=seed), **kw})


# ------------------------------------------------------------------ tokens
@pytest.mark.parametrize("first_node", ["darts", "enas"])
def test_tokens_round_trip_and_valid_token_masks(first_node):
    space = DagSpace(5, first_node=first_node)
    tokens = NaoTokens(space)
    assert tokens.length == len(space.token_choices()) == (11 if first_node == "enas" else 10)
    assert tokens.vocab_size == 4 + 5 and tokens.sos == 9
    for g in space.sample_unique(1000, np.random.default_rng(0)):
        assert tokens.decode(tokens.encode(g)) == g
    # V_r, written out: an activation position holds 0..3; node i's predecessor position holds 4 + (0..i-1).
    expected = [set(range(4))] if first_node == "enas" else []
    for i in range(1, 6):
        expected += [{4 + j for j in range(i)}, set(range(4))]
    assert [set(np.flatnonzero(row)) for row in tokens.masks] == expected
    assert tokens.masks.sum(axis=1).tolist() == space.token_choices()
    assert tokens.masks.shape[1] == tokens.sos          # SOS is no column: never a valid output


def test_tokens_of_a_space_with_fewer_activations():
    space = DagSpace(2, activations=("relu", "identity"))
    masks = NaoTokens(space).masks
    assert [set(np.flatnonzero(row)) for row in masks] == [{4}, {1, 3}, {4, 5}, {1, 3}]


@pytest.mark.parametrize("first_node", ["darts", "enas"])
def test_decoding_random_embeddings_always_gives_cells_of_the_space(first_node):
    space = DagSpace(4, first_node=first_node)
    tokens = NaoTokens(space)
    epd = small_epd(tokens, seed=3)
    H = tf.math.l2_normalize(np.random.default_rng(1).normal(size=(1000, tokens.length, 16)).astype("float32"), -1)
    decoded = epd.decode(H).numpy()
    assert decoded.max() < tokens.sos
    cells = [tokens.decode(row) for row in decoded]
    assert all(space.contains(g) for g in cells)
    assert len(set(cells)) > 1


# ----------------------------------------------------------------- metrics
def test_pairwise_accuracy_and_hamming_distance_on_hand_cases():
    assert pairwise_accuracy([1, 2, 3], [1, 3, 2]) == pytest.approx(2 / 3)
    assert pairwise_accuracy([1, 2, 3], [3, 2, 1]) == 0.0
    assert pairwise_accuracy([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert pairwise_accuracy([1, 1], [0, 5]) == 0.0          # a tie in s counts only if f_i >= f_j
    assert hamming_distance([0, 1, 2], [0, 2, 2]) == 1.0
    assert hamming_distance([[0, 1, 2], [5, 5, 5]], [[0, 2, 2], [5, 5, 5]]) == 0.5


def test_scores_are_min_max_normalised_log_perplexities():
    s = normalise_scores([np.e, np.e ** 3, np.inf, np.e ** 2])
    np.testing.assert_allclose(s[[0, 1, 3]], [1.0, 0.0, 0.5])
    assert np.isnan(s[2])
    assert normalise_scores([60.0, 60.0]).tolist() == [0.5, 0.5]


# -------------------------------------------------------------------- Eq. 1
def test_loss_is_the_mean_squared_error_and_the_token_cross_entropy_over_valid_tokens():
    rng = np.random.default_rng(0)
    masks = np.array([[1, 1, 0, 0, 0], [0, 0, 1, 1, 1], [1, 0, 1, 0, 1]], bool)
    targets = np.array([[0, 3, 4], [1, 2, 0]])
    logits = rng.normal(size=(2, 3, 5)).astype("float32")
    scores, predictions = np.array([0.2, 0.9]), np.array([0.5, 0.6])
    total, mse, ce = nao_loss(scores, predictions, logits, targets, masks, trade_off=0.8)
    ref_ce = []
    for b in range(2):
        for r in range(3):
            valid = np.flatnonzero(masks[r])
            ref_ce.append(-log_softmax(logits[b, r, valid])[list(valid).index(targets[b, r])])
    ref_mse = np.mean((scores - predictions) ** 2)
    assert float(mse) == pytest.approx(ref_mse)
    assert float(ce) == pytest.approx(np.mean(ref_ce), rel=1e-5)
    assert float(total) == pytest.approx(0.8 * ref_mse + 0.2 * np.mean(ref_ce), rel=1e-5)


def lstm(x, h, c, kernel, bias):
    i, f, g, o = np.split(np.concatenate([x, h], 1) @ kernel + bias, 4, axis=1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c), c


def numpy_encoder(epd, ids):
    """A NumPy transcription of section 3.2's encoder (unit hidden states) and predictor: ``(H, f)``."""
    W = {w.name: w.numpy() for w in epd.weights}
    h = c = np.zeros((len(ids), epd.hidden))
    H = []
    for t in range(ids.shape[1]):
        h, c = lstm(W["enc_embedding"][ids[:, t]], h, c, W["enc_kernel"], W["enc_bias"])
        H.append(h / np.linalg.norm(h, axis=1, keepdims=True))
    H = np.stack(H, 1)
    z = np.maximum(H.mean(1) @ W["mlp_0_kernel"] + W["mlp_0_bias"], 0)
    return H, sigmoid(z @ W["mlp_1_kernel"] + W["mlp_1_bias"])[:, 0]


def numpy_decoder_logits(epd, H, ids):
    """Section 3.2's decoder, teacher-forced on ``ids``: s_0 = h_T, additive attention, logits masked to V_r."""
    W = {w.name: w.numpy() for w in epd.weights}
    n, T = ids.shape
    s = cs = H[:, -1]
    inputs = np.concatenate([np.full((n, 1), epd.vocab_size), ids[:, :-1]], 1)
    logits = []
    for r in range(T):
        s, cs = lstm(W["dec_embedding"][inputs[:, r]], s, cs, W["dec_kernel"], W["dec_bias"])
        energy = (np.tanh((s @ W["attention_s"])[:, None] + H @ W["attention_h"]) @ W["attention_v"])[..., 0]
        alpha = np.exp(energy - energy.max(1, keepdims=True))
        alpha /= alpha.sum(1, keepdims=True)
        ctx = np.einsum("nt,ntd->nd", alpha, H)
        out = np.concatenate([s, ctx], 1) @ W["out_kernel"] + W["out_bias"]
        logits.append(np.where(epd.masks[r], out, -1e9))
    return np.stack(logits, 1)


def test_encoder_predictor_and_decoder_match_a_numpy_transcription():
    space = DagSpace(3)
    tokens = NaoTokens(space)
    epd = small_epd(tokens, seed=5)
    ids = tokens.encode_many(space.sample_unique(6, np.random.default_rng(2)))
    got_H = epd.encode(ids)
    H, f = numpy_encoder(epd, ids)
    logits = numpy_decoder_logits(epd, H, ids)
    np.testing.assert_allclose(got_H, H, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got_H, axis=-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(epd.predict(got_H), f, atol=1e-5)
    got = epd.reconstruction_logits(got_H, ids).numpy()
    valid = np.broadcast_to(tokens.masks, got.shape)
    np.testing.assert_allclose(got[valid], logits[valid], atol=1e-4)
    assert (got[~valid] <= -1e8).all()
    # Greedy decoding takes, at each position, the argmax of the teacher-forced logits of its own prefix.
    decoded = epd.decode(got_H).numpy()
    np.testing.assert_array_equal(decoded, np.argmax(numpy_decoder_logits(epd, H, decoded), -1))


def test_mean_decoder_initial_state_is_the_normalised_mean():
    space = DagSpace(2)
    tokens = NaoTokens(space)
    last, mean = small_epd(tokens, seed=1), small_epd(tokens, seed=1, decoder_init="mean")
    ids = tokens.encode_many(space.sample_unique(3, np.random.default_rng(0)))
    H = last.encode(ids)
    mean.build(None)
    for a, b in zip(mean.weights, last.weights):
        a.assign(b)
    H_mean = tf.math.l2_normalize(tf.reduce_mean(H, 1), -1)
    # Replacing h_T by the normalised mean makes the 'last' decoder compute what the 'mean' decoder computes.
    swapped = tf.concat([H[:, :-1], H_mean[:, None]], 1)
    np.testing.assert_allclose(mean._initial_state(H), last._initial_state(swapped), atol=1e-6)
    with pytest.raises(ValueError, match="decoder_hidden must equal hidden"):
        EncoderPredictorDecoder(tokens.masks, hidden=8, decoder_hidden=16)


# -------------------------------------------------------------------- Eq. 2
def test_step_is_the_normalised_gradient_ascent_of_eq_2():
    space = DagSpace(3)
    tokens = NaoTokens(space)
    epd = small_epd(tokens, seed=2)
    H = epd.encode(tokens.encode_many(space.sample_unique(4, np.random.default_rng(3)))).numpy().astype("float64")
    eps, eta = 1e-3, 0.7
    grad = np.zeros_like(H)
    for idx in np.ndindex(*H.shape[1:]):                         # central differences of f, per architecture
        up, down = H.copy(), H.copy()
        up[(slice(None),) + idx] += eps
        down[(slice(None),) + idx] -= eps
        grad[(slice(None),) + idx] = (epd.predict(tf.constant(up, tf.float32)).numpy()
                                      - epd.predict(tf.constant(down, tf.float32)).numpy()) / (2 * eps)
    moved = H + eta * grad
    expected = moved / np.linalg.norm(moved, axis=-1, keepdims=True)
    np.testing.assert_allclose(epd.step(tf.constant(H, tf.float32), eta), expected, atol=2e-3)


def test_footnote_4_grows_the_step_by_half_eta_until_a_new_cell_is_decoded():
    x, new = (4, 1, 4, 2), (4, 1, 5, 2)
    calls = []

    def stub(eta, rows):                                         # returns x until eta >= 2 eta_0
        calls.append(eta)
        return [new if eta >= 2.0 else x for _ in rows]

    accepted, tried = grow_steps(stub, 1, footnote4_steps(1.0, 10), is_new=lambda key: key != x)
    assert tried == calls == [1.0, 1.5, 2.0]
    assert accepted == [(0, new)]
    stuck, tried = grow_steps(lambda eta, rows: [x for _ in rows], 1, footnote4_steps(10.0, 4),
                              is_new=lambda key: key != x)
    assert stuck == [] and tried == [10.0, 15.0, 20.0, 25.0]       # max_step_tries, then the caller fills randomly


def test_grow_steps_never_returns_a_cell_twice_and_stops_at_the_limit():
    strings = {1.0: [(1,), (2,), (1,)], 2.0: [(3,), (2,), (4,)], 3.0: [(5,), (6,), (7,)]}
    accepted, tried = grow_steps(lambda eta, rows: [strings[eta][r] for r in rows], 3, [1.0, 2.0, 3.0],
                                 is_new=lambda key: key != (4,), per_seed=None, limit=4)
    assert accepted == [(0, (1,)), (1, (2,)), (0, (3,)), (0, (5,))] and tried == [1.0, 2.0, 3.0]
    one_each, _ = grow_steps(lambda eta, rows: [strings[eta][r] for r in rows], 3, [1.0, 2.0, 3.0],
                             is_new=lambda key: True)
    assert sorted(one_each) == [(0, (1,)), (1, (2,)), (2, (4,))]


# ------------------------------------------------------- trained EPD (slow)
@pytest.fixture(scope="module")
def trained():
    """The EPD (embedding 16, hidden 32) trained 200 epochs on 256 random 4-step cells with synthetic scores."""
    space = DagSpace(4)
    tokens = NaoTokens(space)
    cells = space.sample_unique(320, np.random.default_rng(0))
    target = space.encode(space.sample(np.random.default_rng(123)))
    ppl = np.array(SyntheticEvaluator(space, target).evaluate(cells))
    ids, scores = tokens.encode_many(cells), normalise_scores(ppl)
    epd = EncoderPredictorDecoder(tokens.masks, embed=16, hidden=32, mlp=[32], decoder_hidden=32, dropout=0.1,
                                  seed=0)
    trainer = NaoTrainer(epd, lr=3e-3, trade_off=0.8)
    trainer.fit(ids[:256], scores[:256], epochs=200, batch_size=32, seed=[0, 0])
    return tokens, trainer, ids, ppl


@pytest.mark.slow
def test_held_out_reconstruction_and_ranking_reach_the_papers_bars(trained):
    """Figure 2a: pairwise accuracy >= 0.78 and mean Hamming distance <= 0.5 on held-out cells."""
    _, trainer, ids, ppl = trained
    logs = fit_logs(trainer, ids[256:], -np.log(ppl[256:]))
    assert logs["hamming"] <= 0.5
    assert logs["pairwise_acc"] >= 0.78


@pytest.mark.slow
def test_gradient_ascent_raises_the_predicted_score(trained):
    tokens, trainer, ids, _ = trained
    seeds = ids[:32]
    H = trainer.encode(seeds)
    before = trainer.model.predict(H).numpy()
    after = trainer.model.predict(trainer.model.step(H, 1e-2)).numpy()
    assert np.mean(after > before) >= 0.9
    # With a larger step, the decoded cells' predicted scores rise on average (Figure 2b's blue bars).
    decoded = trainer.model.decode(trainer.model.step(H, 10.0)).numpy()
    assert all(tokens.space.contains(tokens.decode(row)) for row in decoded)
    assert trainer.predict(decoded).mean() >= trainer.predict(seeds).mean()
    assert hamming_distance(decoded, seeds) > 0


def test_fit_is_reproducible_by_seed_and_lowers_the_loss():
    space = DagSpace(3)
    tokens = NaoTokens(space)
    cells = space.sample_unique(40, np.random.default_rng(0))
    ids = tokens.encode_many(cells)
    scores = normalise_scores(SyntheticEvaluator(space, space.encode(cells[0])).evaluate(cells))
    trainer = NaoTrainer(small_epd(tokens, seed=1, dropout=0.1), lr=5e-3)
    initial = [v.numpy() for v in trainer.variables]

    def run():
        first = trainer.fit(ids, scores, epochs=1, batch_size=8, seed=[1, 0])
        last = trainer.fit(ids, scores, epochs=20, batch_size=8, seed=[1, 0])
        return first, last, [v.numpy() for v in trainer.variables]

    a = run()
    trainer.reset(1)                                       # the initialisation of seed 1 and a fresh Adam
    for v, x in zip(trainer.variables, initial):
        np.testing.assert_array_equal(v.numpy(), x)
    b = run()
    assert a[:2] == b[:2]
    for x, y in zip(a[2], b[2]):
        np.testing.assert_array_equal(x, y)
    assert a[1]["loss"] < 0.5 * a[0]["loss"]


def test_genotypes_of_tokens_are_checked_against_the_space():
    tokens = NaoTokens(DagSpace(2, first_node="enas"))
    assert tokens.decode([1, 4, 0, 5, 3]) == Genotype((("tanh", 0), ("identity", 1)), first_node="enas",
                                                      first_activation="relu")
    with pytest.raises(ValueError):
        tokens.encode(Genotype((("tanh", 0), ("identity", 1))))        # a darts cell is not in an enas space


# -------------------------------------------------------------- symmetry
@pytest.mark.parametrize("output", ["mean", "loose_ends"])
def test_a_relabelled_cell_computes_the_same_function_with_its_weights_permuted(output):
    """Section 3.2's symmetric copies, for the DAG space: renumbering nodes in another topological order."""
    from tfnas.cells import CellRNN, GenotypeCell

    g = Genotype((("relu", 0), ("tanh", 0), ("sigmoid", 1), ("identity", 2), ("relu", 1)), output=output)
    order = [2, 1, 4, 5, 3]                                # node 2 first: it reads node 0 only
    other = relabel(g, order)
    assert other.nodes == (("tanh", 0), ("relu", 0), ("identity", 1), ("relu", 2), ("sigmoid", 2))
    rng = np.random.default_rng(0)
    cells = [GenotypeCell.from_genotype(x, units=6, input_dim=4) for x in (g, other)]
    x = rng.normal(size=(2, 5, 4)).astype("float32")
    for cell in cells:
        CellRNN(cell)(x)
    W0 = rng.uniform(-0.5, 0.5, cells[0].W0.shape).astype("float32")
    Ws = rng.uniform(-0.5, 0.5, cells[0].Ws.shape).astype("float32")
    cells[0].W0.assign(W0)
    cells[0].Ws.assign(Ws)
    cells[1].W0.assign(W0)
    cells[1].Ws.assign(Ws[[o - 1 for o in order]])          # new node k carries old node order[k-1]'s matrix
    np.testing.assert_allclose(CellRNN(cells[1])(x)[0], CellRNN(cells[0])(x)[0], atol=1e-6)
    with pytest.raises(ValueError, match="before node"):
        relabel(g, [3, 1, 2, 4, 5])


def test_random_relabellings_are_topological_and_reach_every_order():
    g = Genotype((("relu", 0), ("tanh", 0), ("sigmoid", 0)))
    rng = np.random.default_rng(0)
    seen = {random_relabel(g, rng).nodes for _ in range(200)}
    # three independent nodes: every permutation of their activations is a relabelling
    assert seen == {tuple((a, 0) for a in p) for p in itertools.permutations(["relu", "tanh", "sigmoid"])}
