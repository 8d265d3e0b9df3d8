"""Run folders of ``tfnas train`` and ``tfnas search``.

* `tfnas.runs.atomic`: atomic JSON / JSONL / text writes, used for every file of a run folder;
* `tfnas.runs.checkpoint`: atomic, exactly resumable checkpoints, and the fallback past unreadable ones;
* `tfnas.runs.folder`: the run record (``config.json``: kind, settings, corpus fingerprint), the one resume
  check (`open_run`) and reading a run's weights back (`read_weights`);
* `tfnas.runs.lock`: one process per run folder (`RunLock`);
* `tfnas.runs.interrupt`: Ctrl-C deferred to a step boundary, where the loops checkpoint.
"""
