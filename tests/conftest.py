"""Fixtures shared by the test modules."""
import pytest
import torch

from zfbook.models import build


@pytest.fixture(scope="module")
def mini():
    """A random-weight zfnet-mini (12 classes), seeded, in eval mode; one per test module."""
    torch.manual_seed(0)
    return build("zfnet-mini", num_classes=12).eval()


@pytest.fixture(autouse=True)
def _ctrl_c_raises():
    """Ctrl-C raises KeyboardInterrupt in every test, as in a terminal. pytest-xdist's worker
    processes ignore SIGINT, and an ignored signal stays ignored in the programs a test
    starts, so the Ctrl-C tests would see nothing happen."""
    import signal
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture
def spy(monkeypatch):
    """``spy(module, name)`` wraps ``module.name`` for the test and returns the list of the
    positional arguments of every call (for checking what a widget passes to its view)."""
    def install(module, name):
        calls = []
        real = getattr(module, name)

        def wrapper(*args, **kwargs):
            calls.append(args)
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)
        return calls

    return install
