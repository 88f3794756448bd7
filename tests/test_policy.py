"""The shared action policy: skips, caveats and confirmations for every caller."""

from __future__ import annotations

import pytest

from computehub_tui.domain.models import Instance, InstanceStatus
from computehub_tui.engine.policy import plan_action
from computehub_tui.providers.registry import PROVIDER_CAPABILITIES


def caps(provider: str):  # type: ignore[no-untyped-def]
    return PROVIDER_CAPABILITIES[provider]


def inst(provider: str, iid: str, status: InstanceStatus, price: float = 1.0) -> Instance:
    return Instance(provider, iid, f"l{iid}", status, status.value, "RTX 4090", 1, price)


def test_start_always_confirms_and_names_what_it_will_bill() -> None:
    plan = plan_action("start", [inst("vast", "1", InstanceStatus.STOPPED, 0.5)], caps)
    assert plan.needs_confirmation
    assert plan.starts_billing_hour == pytest.approx(0.5)
    assert "billing $0.500/h" in plan.summary()


def test_stop_skips_instances_already_stopped() -> None:
    plan = plan_action("stop", [inst("vast", "1", InstanceStatus.RUNNING), inst("vast", "2", InstanceStatus.STOPPED)],
                       caps)
    assert plan.keys == ["vast:1"]
    assert [(s.instance.key, s.reason) for s in plan.skipped] == [("vast:2", "already stopped")]


def test_lambda_cannot_stop_and_nothing_is_sent() -> None:
    plan = plan_action("stop", [inst("lambda", "a", InstanceStatus.RUNNING)], caps)
    assert plan.targets == () and not plan.needs_confirmation
    assert "no stop/start" in plan.skipped[0].reason


def test_restart_of_a_running_machine_confirms_with_the_interruption_caveat() -> None:
    plan = plan_action("restart", [inst("runpod", "p", InstanceStatus.RUNNING)], caps)
    assert plan.needs_confirmation
    assert any("interrupts" in c for c in plan.caveats)
    assert plan.starts_billing_hour == 0


def test_destroy_confirms_even_for_one_instance_and_skips_terminated() -> None:
    plan = plan_action("destroy", [inst("vast", "1", InstanceStatus.STOPPED),
                                   inst("vast", "2", InstanceStatus.TERMINATED)], caps)
    assert plan.needs_confirmation and plan.destroys and plan.keys == ["vast:1"]


def test_stop_confirms_when_storage_keeps_billing() -> None:
    plan = plan_action("stop", [inst("runpod", "p", InstanceStatus.RUNNING)], caps)
    assert plan.needs_confirmation
    assert plan.caveats == ("RunPod: stopped instances still bill storage",)


def test_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError):
        plan_action("explode", [], caps)
