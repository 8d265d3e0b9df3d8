"""Run folders of ``tfnas train`` and ``tfnas search``.

* `tfnas.runs.atomic`: atomic JSON / JSONL / text writes, used for every file of a run folder;
* `tfnas.runs.checkpoint`: atomic, exactly resumable checkpoints;
* `tfnas.runs.folder`: the run record (``config.json``), the one resume check
  (`open_run`) and reading a run's weights back (`read_weights`).
"""
