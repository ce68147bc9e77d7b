"""Progress reporting for training: a tqdm bar when tqdm is installed, plain lines otherwise."""

import sys

__all__ = ["Progress"]


class Progress:
    """Epoch progress with the latest loss figures.

    ``verbose=0`` prints nothing; ``verbose>=1`` shows a tqdm bar (or, without
    tqdm, one line every ``verbose`` epochs on stderr).
    """

    def __init__(self, total, verbose=0, desc="semiclip fit"):
        self.verbose = int(verbose)
        self.total = total
        self._bar = None
        self._epoch = 0
        if self.verbose <= 0:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            self._bar = tqdm(total=total, desc=desc, unit="epoch", leave=False, file=sys.stderr)

    def update(self, **figures):
        self._epoch += 1
        if self.verbose <= 0:
            return
        text = " ".join(f"{k}={v:.4f}" for k, v in figures.items() if v is not None)
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
            self._bar.update(1)
        elif self._epoch % self.verbose == 0 or self._epoch == self.total:
            print(f"epoch {self._epoch}/{self.total} {text}", file=sys.stderr, flush=True)

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
