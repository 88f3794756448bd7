"""Canonical GPU names: one name per physical GPU whichever provider spelled it."""

from __future__ import annotations

import pytest

from computehub_tui.domain.gpus import GPU_SPECS, canonical_gpu_name, gpu_spec


@pytest.mark.parametrize(
    ("raw", "form_factor", "expected"),
    [
        ("RTX 4090", "", "RTX 4090"),
        ("NVIDIA GeForce RTX 4090", "", "RTX 4090"),
        ("geforcertx4090-pcie-24gb", "", "RTX 4090"),
        ("NVIDIA H100 80GB HBM3", "", "H100 SXM"),
        ("H100 SXM", "", "H100 SXM"),
        ("H100", "SXM5", "H100 SXM"),
        ("h100-sxm5-80gb", "", "H100 SXM"),
        ("H100 PCIE", "", "H100 PCIe"),
        ("NVIDIA H100 PCIe", "", "H100 PCIe"),
        ("NVIDIA H100 NVL", "", "H100 NVL"),
        ("A100 SXM4", "", "A100 SXM"),
        ("NVIDIA A100-SXM4-80GB", "", "A100 SXM"),
        ("A100", "SXM4", "A100 SXM"),
        ("NVIDIA A100 80GB PCIe", "", "A100 PCIe"),
        ("a100-pcie-80gb", "", "A100 PCIe"),
        ("RTX 6000Ada", "", "RTX 6000 Ada"),
        ("NVIDIA RTX 6000 Ada Generation", "", "RTX 6000 Ada"),
        ("RTX A6000", "", "RTX A6000"),
        ("A6000", "", "RTX A6000"),
        ("rtxa6000-pcie-48gb", "", "RTX A6000"),
        ("Tesla V100-SXM2-16GB", "", "V100"),
        ("Tesla V100-PCIE-32GB", "", "V100"),
        ("v100-pcie-16gb", "", "V100"),
        ("Tesla V100", "", "V100"),
        ("Tesla T4", "", "T4"),
        ("AMD Instinct MI300X OAM", "", "MI300X"),
        ("Q RTX 8000", "", "Quadro RTX 8000"),
        ("RTX 4080S", "", "RTX 4080 SUPER"),
        ("NVIDIA GeForce RTX 4080 SUPER", "", "RTX 4080 SUPER"),
        ("NVIDIA H200", "", "H200"),
        ("NVIDIA  RTX A4500", "", "RTX A4500"),
        ("", "", "unknown"),
    ],
)
def test_canonical_names_agree_across_providers(raw: str, form_factor: str, expected: str) -> None:
    assert canonical_gpu_name(raw, form_factor) == expected


def test_spec_catalogue_is_broad_and_sourced() -> None:
    assert len(GPU_SPECS) >= 20
    for spec in GPU_SPECS.values():
        assert spec.fp16_tflops > 0 and spec.fp32_tflops > 0 and spec.vram_gb > 0
        assert spec.source, spec.name


def test_every_demo_vast_gpu_has_a_spec() -> None:
    from computehub_tui.providers.demo.market import _VAST_GPUS

    missing = [name for name, *_ in _VAST_GPUS if gpu_spec(canonical_gpu_name(name)) is None]
    assert missing == []
