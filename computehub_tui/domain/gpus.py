"""Canonical GPU names across providers and a catalogue of GPU specs for value ranking."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Exact spellings (lower-cased, single spaces) that the generic rules below would get wrong.
_ALIASES: dict[str, str] = {
    # RunPod's ID for the SXM part says HBM3, not SXM.
    "nvidia h100 80gb hbm3": "H100 SXM",
    "h100 80gb hbm3": "H100 SXM",
    "nvidia h200": "H200",
    "h200 sxm": "H200",
    "h200 sxm5": "H200",
    "nvidia a100-sxm4-80gb": "A100 SXM",
    "nvidia a100 80gb pcie": "A100 PCIe",
    "a100x": "A100 PCIe",
    "a800 pcie": "A800 PCIe",
    "q rtx 8000": "Quadro RTX 8000",
    "q rtx 6000": "Quadro RTX 6000",
    "qrtx8000": "Quadro RTX 8000",
    "qrtx6000": "Quadro RTX 6000",
    "quadro rtx 8000": "Quadro RTX 8000",
    "quadro rtx 6000": "Quadro RTX 6000",
    # Lambda calls the Turing Quadro card just "RTX 6000".
    "rtx 6000": "Quadro RTX 6000",
    "rtx 4080s": "RTX 4080 SUPER",
    "rtx 4070s": "RTX 4070 SUPER",
    "rtx 4090d": "RTX 4090D",
    "a10g": "A10G",
    "gh200 sxm": "GH200",
    "gh200": "GH200",
    "a6000": "RTX A6000",
    "a5000": "RTX A5000",
    "a4000": "RTX A4000",
    "a4500": "RTX A4500",
    "a2000": "RTX A2000",
    "nvidia a5000 ada": "RTX 5000 Ada",
}

# TensorDock model slugs ("geforcertx4090-pcie-24gb") by their leading token.
_SLUG_MODELS: dict[str, str] = {
    "geforcertx5090": "RTX 5090",
    "geforcertx4090": "RTX 4090",
    "geforcertx4080": "RTX 4080",
    "geforcertx3090": "RTX 3090",
    "geforcertx3090ti": "RTX 3090 Ti",
    "geforcertx3080": "RTX 3080",
    "geforcertx3080ti": "RTX 3080 Ti",
    "geforcertx3070": "RTX 3070",
    "geforcertx3060": "RTX 3060",
    "rtxa6000": "RTX A6000",
    "rtxa5000": "RTX A5000",
    "rtxa4000": "RTX A4000",
    "rtx6000ada": "RTX 6000 Ada",
    "rtx4000ada": "RTX 4000 Ada",
    "l40s": "L40S",
    "l40": "L40",
    "l4": "L4",
    "a40": "A40",
    "a30": "A30",
    "a10": "A10",
    "a100": "A100",
    "h100": "H100",
    "h200": "H200",
    "b200": "B200",
    "v100": "V100",
    "t4": "T4",
    "quadrortx8000": "Quadro RTX 8000",
    "quadrortx6000": "Quadro RTX 6000",
}

# Models sold in form factors with different performance, so the variant is part of the name.
# Not V100: Vast and Lambda sell a bare "Tesla V100", so its SXM2/PCIe split (125 vs 112 TFLOPS)
# would leave a third, variant-unknown V100 model; its 16 or 32 GB comes with each listing.
_VARIANT_MODELS = {"H100", "A100", "A800"}
_PREFIXES = ("nvidia ", "geforce ", "tesla ", "amd ", "instinct ")
_MEMORY_TOKEN = re.compile(r"^\d+(\.\d+)?\s*g(b|ib)?$")
_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")


def canonical_gpu_name(raw: str, form_factor: str = "") -> str:
    """One name per physical GPU, whichever provider spelled it.

    Vast "RTX 4090", RunPod "NVIDIA GeForce RTX 4090" and TensorDock "geforcertx4090-pcie-24gb"
    all become "RTX 4090"; RunPod "NVIDIA H100 80GB HBM3" and Vast "H100 SXM" become "H100 SXM".
    ``form_factor`` carries a variant given separately (Lambda's "80 GB SXM5").
    """
    return _canonical(raw, form_factor)


@lru_cache(maxsize=4096)
def _canonical(raw: str, form_factor: str) -> str:
    text = " ".join(raw.replace("_", " ").split())
    if not text:
        return "unknown"
    lowered = text.lower()
    if lowered in _ALIASES and not form_factor:
        return _ALIASES[lowered]
    if _SLUG.match(lowered) and " " not in lowered:
        return _from_slug(lowered)
    for prefix in _PREFIXES:
        if lowered.startswith(prefix):
            lowered = lowered[len(prefix):]
    for prefix in _PREFIXES:  # "AMD Instinct MI300X", "NVIDIA GeForce RTX"
        if lowered.startswith(prefix):
            lowered = lowered[len(prefix):]
    if lowered in _ALIASES and not form_factor:
        return _ALIASES[lowered]
    lowered = lowered.replace(" generation", "").replace("-", " ")
    lowered = re.sub(r"(\d)ada\b", r"\1 ada", lowered)
    if lowered.startswith("instinctmi"):
        lowered = lowered[len("instinct"):]
    tokens = lowered.split()
    variant = _variant_of(tokens + form_factor.lower().split())
    kept = [
        token
        for token in tokens
        if not _MEMORY_TOKEN.match(token)
        and token not in {"sxm", "sxm2", "sxm4", "sxm5", "sxm6", "pcie", "hbm3", "hbm3e", "nvl",
                          "oam", "fhhl", "server", "edition", "workstation", "max", "q", "blackwell",
                          "ws", "s"}
    ]
    name = " ".join(_pretty(token) for token in kept) or text
    if name.lower() in _ALIASES:
        name = _ALIASES[name.lower()]
    if name in _VARIANT_MODELS and variant:
        return f"{name} {variant}"
    if name == "H200" and variant == "NVL":
        return "H200 NVL"
    return name


def _variant_of(tokens: list[str]) -> str:
    joined = " ".join(tokens)
    if "nvl" in tokens:
        return "NVL"
    if "hbm3" in tokens or "hbm3e" in tokens or re.search(r"\bsxm\d?\b", joined):
        return "SXM"
    if "pcie" in tokens or "fhhl" in tokens:
        return "PCIe"
    return ""


def _pretty(token: str) -> str:
    if token in {"ti", "super", "ada", "pro"}:
        return {"ti": "Ti", "super": "SUPER", "ada": "Ada", "pro": "PRO"}[token]
    if token == "quadro":
        return "Quadro"
    return token.upper()


def _from_slug(slug: str) -> str:
    parts = slug.split("-")
    model = _SLUG_MODELS.get(parts[0])
    if model is None:
        return canonical_gpu_name(slug.replace("-", " "))
    variant = _variant_of(parts[1:])
    if model in _VARIANT_MODELS and variant:
        return f"{model} {variant}"
    return model


@dataclass(frozen=True, slots=True)
class GpuSpec:
    """Vendor figures for one GPU model. TFLOPS are dense (no 2:4 sparsity)."""

    name: str
    vram_gb: float
    fp16_tflops: float
    """Dense FP16/BF16 tensor throughput; GeForce cards at FP32 accumulate (half rate)."""
    fp32_tflops: float
    vendor: str
    source: str


_SHEET = "NVIDIA datasheet figures as reproduced by third parties"
# Recalled from the vendor datasheet and not yet checked against the PDF: users see only that.
_MEMORY = "spec not independently verified"

GPU_SPECS: dict[str, GpuSpec] = {
    spec.name: spec
    for spec in (
        GpuSpec("B200", 180, 2250, 75, "nvidia", _MEMORY),
        GpuSpec("H200", 141, 989, 67, "nvidia", "same compute as H100 SXM; H200 write-ups (third party)"),
        GpuSpec("H200 NVL", 141, 835, 60, "nvidia", _MEMORY),
        GpuSpec("H100 SXM", 80, 989.4, 66.9, "nvidia", f"{_SHEET} (hpctech.co.jp, Glenn Klockwood)"),
        GpuSpec("H100 PCIe", 80, 756, 51, "nvidia", f"{_SHEET} (hpctech.co.jp)"),
        GpuSpec("H100 NVL", 94, 835, 60, "nvidia", _MEMORY),
        GpuSpec("H100", 80, 756, 51, "nvidia", "variant unknown; H100 PCIe figures (conservative)"),
        GpuSpec("GH200", 96, 989, 67, "nvidia", "H100-class GPU in the superchip; " + _MEMORY),
        GpuSpec("A100 SXM", 80, 312, 19.5, "nvidia", f"{_SHEET} (Glenn Klockwood)"),
        GpuSpec("A100 PCIe", 80, 312, 19.5, "nvidia", f"{_SHEET}; PCIe has the same peak FLOPS"),
        GpuSpec("A100", 80, 312, 19.5, "nvidia", f"{_SHEET}; variant unknown"),
        GpuSpec("A800 PCIe", 80, 312, 19.5, "nvidia", "A100 export variant; " + _MEMORY),
        GpuSpec("L40S", 48, 362.05, 91.6, "nvidia", f"{_SHEET} (mullet.se)"),
        GpuSpec("L40", 48, 181.05, 90.5, "nvidia", f"{_SHEET} (mullet.se)"),
        GpuSpec("RTX PRO 6000", 96, 500, 126, "nvidia", _MEMORY),
        GpuSpec("RTX 6000 Ada", 48, 364, 91.1, "nvidia", "FP32 grafikkarten.com; tensor derived (FP8 sparse ÷ 4)"),
        GpuSpec("RTX 5000 Ada", 32, 261, 65.3, "nvidia", _MEMORY),
        GpuSpec("RTX 4000 Ada", 20, 107, 26.7, "nvidia", _MEMORY),
        GpuSpec("RTX A6000", 48, 154.8, 38.7, "nvidia", "Microway via llmperf.net; FP32 TechPowerUp-style DB"),
        GpuSpec("RTX A5000", 24, 111, 27.8, "nvidia", _MEMORY),
        GpuSpec("RTX A4000", 16, 76.7, 19.2, "nvidia", _MEMORY),
        GpuSpec("A40", 48, 149.7, 37.4, "nvidia", f"{_SHEET} (ecer.com)"),
        GpuSpec("A30", 24, 165, 10.3, "nvidia", _MEMORY),
        GpuSpec("A10", 24, 125, 31.2, "nvidia", "FP32 TechPowerUp; tensor " + _MEMORY),
        GpuSpec("A10G", 24, 70, 35, "nvidia", "Baseten A10 vs A10G (no NVIDIA datasheet exists)"),
        GpuSpec("L4", 24, 121, 30.3, "nvidia", "FP32 spec databases; tensor " + _MEMORY),
        GpuSpec("RTX 5090", 32, 209.5, 104.8, "nvidia", "FP32-accumulate rate; " + _MEMORY),
        GpuSpec("RTX 4090", 24, 165, 82.6, "nvidia", "FP32 grafikkarten.com; tensor at FP32 accumulate, " + _MEMORY),
        GpuSpec("RTX 4090D", 24, 147, 73.5, "nvidia", _MEMORY),
        GpuSpec("RTX 4080 SUPER", 16, 104, 52.2, "nvidia", _MEMORY),
        GpuSpec("RTX 4080", 16, 97.5, 48.7, "nvidia", _MEMORY),
        GpuSpec("RTX 3090", 24, 71, 35.6, "nvidia", "FP32 third party; tensor at FP32 accumulate, " + _MEMORY),
        GpuSpec("RTX 3090 Ti", 24, 80, 40, "nvidia", _MEMORY),
        GpuSpec("RTX 3080", 10, 59.5, 29.8, "nvidia", _MEMORY),
        GpuSpec("Quadro RTX 8000", 48, 130.5, 16.3, "nvidia", _MEMORY),
        GpuSpec("Quadro RTX 6000", 24, 130.5, 16.3, "nvidia", _MEMORY),
        GpuSpec("V100", 16, 112, 14, "nvidia", "SXM2 and PCIe, 16 or 32 GB, as one model; PCIe figures "
                "(conservative: SXM2 is 125 tensor TFLOPS per the NVIDIA developer blog), " + _MEMORY),
        GpuSpec("T4", 16, 65, 8.1, "nvidia", "sysrqmts spec database; NVIDIA '65 TFLOPS mixed precision'"),
        GpuSpec("MI300X", 192, 1307, 163, "amd", "AMD datasheet 2,615 with sparsity ÷ 2; " + _MEMORY),
        GpuSpec("MI250X", 128, 383, 47.9, "amd", _MEMORY),
    )
}


def gpu_spec(name: str) -> GpuSpec | None:
    """Specs for a canonical GPU name, or None when the model is not in the catalogue."""
    return GPU_SPECS.get(name)
