"""The ask/tell loop's trial records: a `Trial` is what ``trials.jsonl`` and the saved state hold."""
import json

from support import SyntheticEvaluator
from tfnas.data import load_corpus
from tfnas.spaces.tree import TreeSpace
from tfnas.strategies.black_box.loop import Trial, TrialStatus
from tfnas.strategies.black_box.random_search import RandomConfig, RandomSearch


def test_trials_round_trip_through_the_trials_file_and_reuse_scores(tmp_path, tiny_corpus):
    space = TreeSpace(2)
    target = space.encode(space.sample(0))
    search = RandomSearch(RandomConfig(space="tree", base=2, max_trials=6, trials_per_round=3, seed=1),
                          evaluator=SyntheticEvaluator(space, target))
    result = search.search(load_corpus(tiny_corpus), tmp_path / "s")
    lines = [json.loads(line) for line in (tmp_path / "s" / "trials.jsonl").read_text().splitlines()]
    assert [Trial.from_dict(line) for line in lines] == search.trials
    assert all(t.status is TrialStatus.OK and t.error is None for t in search.trials)
    assert [t.trial for t in search.trials] == list(range(6)) and [t.round for t in search.trials] == [0] * 3 + [1] * 3
    best = min(search.trials, key=lambda t: t.ppl)
    assert result.metrics["valid_ppl"] == best.ppl and result.metrics["best_trial"] == best.trial
    assert search.score_cache[best.key] == best.ppl
    assert Trial.from_dict({**lines[0], "status": "cached"}).status is TrialStatus.CACHED


def test_a_keras_callback_stops_a_black_box_search_at_a_round_boundary_and_a_resume_goes_on(tmp_path, tiny_corpus):
    """A round is a black-box search's epoch for Keras callbacks (``on_epoch_end`` with the round's logs); a stop
    is not recorded, so calling the search again on the folder goes on to the trials of an uninterrupted search."""
    import keras

    from tfnas.callbacks import KerasCallbacks

    space = TreeSpace(2)
    target = space.encode(space.sample(0))

    def run(out, callbacks=()):
        search = RandomSearch(RandomConfig(space="tree", base=2, max_trials=9, trials_per_round=3, seed=1),
                              evaluator=SyntheticEvaluator(space, target))
        return search.search(load_corpus(tiny_corpus), out, list(callbacks))

    class StopAfterRound(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen = []

        def on_epoch_end(self, epoch, logs=None):
            self.seen.append((epoch, logs["trials"]))
            self.model.stop_training = True

    stop = StopAfterRound()
    stopped = run(tmp_path / "stopped", [KerasCallbacks([stop])])
    assert stop.seen == [(0, 3.0)] and stopped.metrics["rounds"] == 1 and stopped.metrics["trials"] == 3
    whole = run(tmp_path / "whole")
    resumed = run(tmp_path / "stopped")
    assert resumed.metrics["rounds"] == whole.metrics["rounds"] == 3
    lines = [(tmp_path / d / "trials.jsonl").read_text().splitlines() for d in ("stopped", "whole")]
    assert [json.loads(line)["key"] for line in lines[0]] == [json.loads(line)["key"] for line in lines[1]]
