"""Runs ``tfnas train`` in a fresh process with N logical CPU devices (the distributed tests).

Usage: ``python distributed_train.py LOGICAL_CPUS KILL_AT_STEP TRAIN_ARGS...`` (KILL_AT_STEP 0: no kill).
Logical devices must be configured before TensorFlow starts, hence a process of its own.
"""
import sys

import tensorflow as tf

if __name__ == "__main__":
    cpus, kill_at, args = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    if cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpus)

    from tfnas import cli, hparams
    from support import Kill

    if kill_at:  # tfnas train takes its callbacks from hparams.train_callbacks when it runs
        make_callbacks = hparams.train_callbacks
        hparams.train_callbacks = lambda *args, **kwargs: make_callbacks(*args, **kwargs) + [Kill("train", step=kill_at)]
    sys.exit(cli.main(["train", *args]))
