"""TensorFlow's start-up lines hidden: which lines the filter drops (absl's log format), what still reaches the
terminal (other lines, a fatal record, Python's writes, a crash's last words) and the import hook on TensorFlow."""
import subprocess
import sys
import textwrap

from support import REPOSITORY

from tfnas.startup_log import shown_lines

#: What ``import tensorflow`` printed on TensorFlow 2.21 (CPU, no CUDA driver) and what a CPU training added on a
#: machine with CUDA's libraries and no GPU: absl's notice, records of levels I and E, a record of two lines.
STARTUP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796680135.572745   20907 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. To turn "
    "them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n",
    "I0000 00:00:1796680135.573279   20907 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
    "not be used.\n",
    "I0000 00:00:1796680119.382024   20720 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.\n",
    "To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.\n",
    "E0000 00:00:1796680539.301595   26781 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed "
    "call to cuInit: UNKNOWN ERROR (303)\n",
    "W1207 21:48:29.123456    4242 gpu_device.cc:2344] Cannot dlopen some GPU libraries.\n",
]
#: A fatal record (absl aborts after it) and a line of no record, which a user must see.
FATAL = ("F1207 21:48:29.123456    4242 cpu_feature_guard.cc:89] The TensorFlow library was compiled to use AVX "
         "instructions, but these aren't available on your machine.\n")
PLAIN = "Illegal instruction in libsomething.so\n"


def test_the_start_up_records_are_dropped_and_every_other_line_kept():
    assert list(shown_lines(STARTUP)) == []
    assert list(shown_lines([PLAIN, *STARTUP, FATAL, "a second line of the fatal record\n"])) == \
        [PLAIN, FATAL, "a second line of the fatal record\n"]
    # A line of no record after absl's notice is shown: the notice continues nothing.
    assert list(shown_lines([STARTUP[1], STARTUP[0], PLAIN])) == [PLAIN]


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPOSITORY, capture_output=True,
                          text=True, timeout=300)


def test_native_writes_are_filtered_and_python_writes_pass():
    """What C++ writes to file descriptor 2 in the block goes through the filter; ``sys.stderr`` is not filtered
    (here a line in absl's format shows that); after the block, descriptor 2 is the terminal's again."""
    done = run_python(f"""
        import os, sys
        from tfnas.startup_log import filtered_stderr

        with filtered_stderr():
            os.write(2, {PLAIN.encode()!r})
            os.write(2, {''.join(STARTUP).encode()!r})
        print({STARTUP[2]!r}, end="", file=sys.stderr, flush=True)
        with filtered_stderr():
            print({STARTUP[1]!r}, end="", file=sys.stderr, flush=True)
        os.write(2, {STARTUP[2].encode()!r})
    """)
    assert done.returncode == 0
    assert done.stderr == PLAIN + STARTUP[2] + STARTUP[1] + STARTUP[2]


def test_a_crash_in_the_block_still_shows_its_fatal_record():
    """The filter is another process: what the command wrote before it aborted reaches the terminal."""
    done = run_python(f"""
        import os
        from tfnas.startup_log import filtered_stderr

        with filtered_stderr():
            os.write(2, {(STARTUP[1] + FATAL).encode()!r})
            os.abort()
    """)
    assert done.returncode != 0
    assert done.stderr == FATAL


def test_tensorflow_imported_in_the_block_prints_nothing_and_works():
    """`hidden_startup_lines` filters the first import of TensorFlow (by Keras here), wherever it happens, and
    removes its hook once TensorFlow is loaded; TensorFlow's Python logger, made during the import, still writes
    after it. tests/test_cli.py's slow test shows what the same import prints without the hook."""
    done = run_python("""
        import sys
        from tfnas.startup_log import _FilteredImport, hidden_startup_lines

        with hidden_startup_lines():
            import keras
            hooks = [f for f in sys.meta_path if isinstance(f, _FilteredImport)]
        import tensorflow as tf
        print(int(tf.reduce_sum(keras.ops.ones((2, 3)))), len(hooks))
        tf.get_logger().warning("logged after the block")
    """)
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("6 0\n", "WARNING:tensorflow:logged after the block\n")
