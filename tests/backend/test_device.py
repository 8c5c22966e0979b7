"""Where torch runs: "auto" picks CUDA, else Apple's Metal where it works, else the CPU; an explicit
device the machine does not have is a one-line error."""

from __future__ import annotations

import pytest
import torch
from partdistill.backend import device
from partdistill.shared.errors import ValidationError


@pytest.fixture
def machine(monkeypatch):
    """A machine with the accelerators the test says it has (torch's own checks mocked)."""

    def make(cuda: bool, mps: bool, mps_runs: bool = True):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
        real_ones = torch.ones

        def ones(*a, **kw):
            if kw.get("device") == "mps":
                if not mps_runs:
                    raise RuntimeError("MPS backend out of order")
                return real_ones(*a)  # stands in for the Metal tensor
            return real_ones(*a, **kw)

        monkeypatch.setattr(torch, "ones", ones)
        device.mps_works.cache_clear()

    yield make
    device.mps_works.cache_clear()


def test_auto_on_a_mac_with_metal_is_mps(machine):
    machine(cuda=False, mps=True)
    assert device.resolve_device("auto") == "mps" and device.resolve_device("mps") == "mps"


def test_auto_prefers_cuda_and_a_machine_with_neither_gets_the_cpu(machine):
    machine(cuda=True, mps=True)
    assert device.resolve_device("auto") == "cuda"
    machine(cuda=False, mps=False)
    assert device.resolve_device("auto") == "cpu"


def test_metal_that_reports_itself_but_fails_is_not_picked_and_asking_for_it_says_so(machine):
    machine(cuda=False, mps=True, mps_runs=False)
    assert device.resolve_device("auto") == "cpu"
    with pytest.raises(ValidationError, match="'mps' requested but Apple's Metal backend is not available"):
        device.resolve_device("mps")


def test_a_device_name_is_checked_the_same_everywhere(machine):
    machine(cuda=False, mps=False)
    with pytest.raises(ValidationError, match="CUDA is not available"):
        device.resolve_device("cuda")
    with pytest.raises(ValidationError, match="must be 'auto', 'cpu', 'cuda\\[:n\\]' or 'mps'"):
        device.resolve_device("tpu")
    from partdistill.shared.options import SegmentOptions

    assert SegmentOptions(device="mps").validate().device == "mps"
    with pytest.raises(ValidationError, match="must be one of auto, cpu, cuda, mps"):
        SegmentOptions(device="tpu").validate()
