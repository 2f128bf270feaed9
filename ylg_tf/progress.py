"""Progress reporting for long loops in entry points: one status line per phase, with rate and time left.

`ProgressLine(stream)` is a `progress(phase, done, total)` callback (the form `ylg_tf.evaluation.evaluate.evaluate`
takes). On a terminal it rewrites one line in place; into a file or pipe it writes a line each time another
tenth of the phase is done, so logs stay short.
"""

import time


class ProgressLine:
    """`progress(phase, done, total)` writing "<phase> images: done/total (p%), r images/s, s s left".

    Args:
        stream: text stream written to (the caller's choice, e.g. sys.stderr).
        unit: what is counted ("images").
        clock: seconds as a float (time.perf_counter; replaceable in tests).
    """

    def __init__(self, stream, unit="images", clock=time.perf_counter):
        self.stream = stream
        self.unit = unit
        self.clock = clock
        isatty = getattr(stream, "isatty", None)
        self.interactive = bool(isatty and isatty())
        self.phase = None

    def __call__(self, phase, done, total):
        if total <= 0:
            raise ValueError(f"total must be positive, got {total!r}")
        now = self.clock()
        if phase != self.phase:
            # The rate is measured from the first report, so tracing the first batch does not skew it.
            self.phase, self.first_time, self.first_done, self.last_tenth = phase, now, done, -1
        line = f"{phase} {self.unit}: {done}/{total} ({100.0 * done / total:.0f}%)"
        if done > self.first_done and now > self.first_time:
            rate = (done - self.first_done) / (now - self.first_time)
            line += f", {rate:.1f} {self.unit}/s, {(total - done) / rate:.0f} s left"
        if self.interactive:
            self.stream.write("\r" + line + ("\n" if done >= total else ""))
        elif done * 10 // total > self.last_tenth:
            self.last_tenth = done * 10 // total
            self.stream.write(line + "\n")
        self.stream.flush()
