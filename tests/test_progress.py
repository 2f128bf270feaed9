"""ylg_tf.progress: the progress line (each tenth, rate, time left; one rewritten line on a terminal)."""

import io

import pytest

from ylg_tf import progress


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_progress_line_reports_each_tenth_with_rate_and_time_left():
    stream, clock = io.StringIO(), FakeClock()
    report = progress.ProgressLine(stream, clock=clock)
    assert not report.interactive
    for done in range(0, 101, 5):
        report("generated", done, 100)
        clock.now += 0.5  # 10 images per second
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11  # 0%, then once per tenth
    assert lines[0] == "generated images: 0/100 (0%)"
    assert lines[5] == "generated images: 50/100 (50%), 10.0 images/s, 5 s left"
    assert lines[-1] == "generated images: 100/100 (100%), 10.0 images/s, 0 s left"
    # A new phase measures its rate afresh.
    report("real", 10, 20)
    assert stream.getvalue().splitlines()[-1] == "real images: 10/20 (50%)"
    with pytest.raises(ValueError, match="total must be positive"):
        report("real", 0, 0)


def test_progress_line_rewrites_one_line_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    report = progress.ProgressLine(stream, clock=FakeClock())
    for done in (1, 2, 3):
        report("real", done, 3)
    assert stream.getvalue() == ("\rreal images: 1/3 (33%)\rreal images: 2/3 (67%)\rreal images: 3/3 (100%)\n")
