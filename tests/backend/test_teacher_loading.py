"""Loading teachers fails fast when the hub cannot be reached (instead of waiting out the hub
client's retries while a worker is blocked)."""

from __future__ import annotations

import time

import pytest
from partdistill.backend.teachers import loading
from partdistill.backend.teachers.grounding_dino import GroundingDinoTeacher
from partdistill.backend.teachers.loading import TeacherUnavailableError, hub_unreachable, load_pretrained


@pytest.fixture
def dead_hub(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(loading, "_probe", {})


def test_an_uncached_hub_id_with_the_hub_unreachable_fails_in_seconds(dead_hub):
    t = time.monotonic()
    with pytest.raises(TeacherUnavailableError, match="does not answer"):
        load_pretrained(GroundingDinoTeacher, "no-such-org/no-such-model")
    assert time.monotonic() - t < loading.HUB_PROBE_S + 2


def test_offline_mode_is_said_plainly(hf_offline):
    assert "offline mode" in hub_unreachable("no-such-org/no-such-model")
