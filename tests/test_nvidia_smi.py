"""nvidia-smi CSV read by header name: real outputs of several GPUs and drivers, MIG, N/A, hostile and absurd text."""

from __future__ import annotations

import pytest

from computehub_tui.domain.models import MetricSample
from computehub_tui.domain.nvidia_smi import NvidiaSmiError, parse_nvidia_smi

HEADER = ("index, uuid, name, utilization.gpu [%], memory.used [MiB], memory.total [MiB], temperature.gpu, "
          "power.draw [W]")

H100_SXM_550 = f"""{HEADER}
0, GPU-5d4c6a3e-8f1b-4f0e-9b1e-7a6c5d4e3f21, NVIDIA H100 80GB HBM3, 97 %, 71234 MiB, 81559 MiB, 64, 612.45 W
1, GPU-9a1b2c3d-1111-2222-3333-444455556666, NVIDIA H100 80GB HBM3, 0 %, 1 MiB, 81559 MiB, 31, 69.88 W
"""

RTX4090_535 = f"""{HEADER}\r
0, GPU-0c5a3a5e-2d8b-4f0e-9b1e-7a6c5d4e3f21, NVIDIA GeForce RTX 4090, 43 %, 18022 MiB, 24564 MiB, 58, [N/A]\r
"""

A100_MIG = f"""{HEADER}
0, GPU-1c3b5a7e-aaaa-bbbb-cccc-ddddeeeeffff, NVIDIA A100-SXM4-80GB, [N/A], 20480 MiB, 81920 MiB, 41, 88.12 W
1, GPU-2c3b5a7e-aaaa-bbbb-cccc-ddddeeeeffff, NVIDIA A100-SXM4-80GB, [N/A], 13 MiB, 81920 MiB, 36, 61.40 W
"""

DRIVER_DOWN = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the "
               "latest NVIDIA driver is installed and running.\n")


def test_h100_driver_550_reads_every_gpu_in_gib() -> None:
    reading = parse_nvidia_smi(H100_SXM_550)
    first, second = reading.gpus
    assert (first.index, first.name, first.util_pct, first.temp_c, first.power_w) == (
        0, "NVIDIA H100 80GB HBM3", 97.0, 64.0, 612.45)
    assert first.vram_used_gb == pytest.approx(71234 / 1024) and first.vram_total_gb == pytest.approx(81559 / 1024)
    assert second.util_pct == 0.0 and second.vram_used_gb == pytest.approx(1 / 1024)
    assert reading.error is None


def test_rtx4090_driver_535_with_crlf_and_no_power_reading() -> None:
    (gpu,) = parse_nvidia_smi(RTX4090_535).gpus
    assert gpu.name == "NVIDIA GeForce RTX 4090" and gpu.util_pct == 43.0 and gpu.temp_c == 58.0
    assert gpu.power_w is None  # [N/A] is unknown, never 0
    assert gpu.vram_total_gb == pytest.approx(24564 / 1024)


def test_mig_gpus_have_unknown_util_but_memory_and_power_count() -> None:
    reading = parse_nvidia_smi(A100_MIG)
    sample = reading.sample(100.0)
    assert sample.gpu_util == (None, None) and sample.mean_gpu_util is None
    assert sample.vram_pct == pytest.approx(100 * (20480 + 13) / (2 * 81920))
    assert sample.total_power_w == pytest.approx(88.12 + 61.40)
    assert sample.source == "ssh" and reading.error is None


def test_a_gpu_at_full_util_holding_no_memory_is_read_as_it_is() -> None:
    text = f"{HEADER}\n0, GPU-x, NVIDIA A10, 100 %, 0 MiB, 23028 MiB, 71, 149.02 W\n"
    (gpu,) = parse_nvidia_smi(text).gpus
    assert gpu.util_pct == 100.0 and gpu.vram_used_gb == 0.0


def test_reordered_extra_columns_without_units_parse_by_header_name() -> None:
    text = ("power.draw [W], clocks.sm [MHz], name, memory.total [MiB], temperature.gpu, index, pstate, "
            "utilization.gpu [%], memory.used [MiB]\n"
            "250.5, 1980, Tesla V100-SXM2-16GB, 16160, 77, 0, P0, 66, 8080\n")
    (gpu,) = parse_nvidia_smi(text).gpus
    assert (gpu.name, gpu.util_pct, gpu.temp_c, gpu.power_w) == ("Tesla V100-SXM2-16GB", 66.0, 77.0, 250.5)
    assert gpu.vram_used_gb == pytest.approx(8080 / 1024) and gpu.vram_total_gb == pytest.approx(16160 / 1024)


@pytest.mark.parametrize("unknown", ["[N/A]", "N/A", "[Not Supported]", "[Unknown Error]",
                                     "[Insufficient Permissions]", "[GPU is lost]", "ERR!", "", "nan", "inf"])
def test_every_unknown_marker_is_none_never_zero(unknown: str) -> None:
    text = f"{HEADER}\n0, GPU-x, NVIDIA L4, {unknown}, 100 MiB, 23034 MiB, {unknown}, {unknown}\n"
    (gpu,) = parse_nvidia_smi(text).gpus
    assert gpu.util_pct is None and gpu.temp_c is None and gpu.power_w is None
    assert gpu.vram_used_gb == pytest.approx(100 / 1024)


def test_absurd_numbers_are_dropped() -> None:
    text = f"{HEADER}\n0, GPU-x, NVIDIA L4, 250 %, -5 MiB, 1e308 MiB, 9000, 1e9 W\n1, GPU-y, L4, 5 %, 1, 2, 3, 4\n"
    first, _ = parse_nvidia_smi(text).gpus
    assert (first.util_pct, first.vram_used_gb, first.vram_total_gb, first.temp_c, first.power_w) == (
        None, None, None, None, None)


def test_a_gpu_that_reads_nothing_is_named_in_the_error_and_others_still_count() -> None:
    text = (f"{HEADER}\n0, GPU-x, NVIDIA A100, 50 %, 100 MiB, 40960 MiB, 40, 100 W\n"
            "1, GPU-y, NVIDIA A100, [GPU is lost], [GPU is lost], [GPU is lost], [GPU is lost], [GPU is lost]\n")
    reading = parse_nvidia_smi(text)
    assert reading.error == "GPU 1 unreadable"
    sample = reading.sample(1.0)
    assert sample.gpu_util == (50.0, None) and sample.mean_gpu_util == 50.0


def test_a_stray_line_and_a_short_row_make_a_partial_reading() -> None:
    text = (f"Unable to determine the device handle for GPU0000:3B:00.0: Unknown Error\n{HEADER}\n"
            "0, GPU-x, NVIDIA A100, 50 %, 100 MiB, 40960 MiB, 40, 100 W\n1, GPU-y\n")
    reading = parse_nvidia_smi(text)
    assert len(reading.gpus) == 1
    assert reading.error is not None
    assert "device handle" in reading.error and "GPU row 1 unreadable" in reading.error


def test_hostile_names_are_made_safe_and_a_comma_does_not_shift_columns() -> None:
    text = (f"{HEADER}\n0, GPU-x, \x1b]52;c;ZXZpbA==\x07NVIDIA \x1b[31mH100\u202e, [bold]x[/], 12 %, 2048 MiB, "
            "81559 MiB, 40, 100 W\n")
    (gpu,) = parse_nvidia_smi(text).gpus
    assert "\x1b" not in gpu.name and "\u202e" not in gpu.name
    assert gpu.name == "NVIDIA H100,[bold]x[/]"  # markup stays plain text; the UI shows it as text
    assert gpu.util_pct == 12.0 and gpu.vram_used_gb == 2.0


@pytest.mark.parametrize(("text", "expected"), [
    (DRIVER_DOWN, "nvidia-smi failed: NVIDIA-SMI has failed because it couldn't communicate"),
    ("", "nvidia-smi failed: no output"),
    ("\r\n  \n", "nvidia-smi failed: no output"),
    ("bash: line 1: nvidia-smi: command not found\n", "nvidia-smi failed: bash: line 1: nvidia-smi: command"),
    ("No devices were found\n", "nvidia-smi failed: No devices were found"),
    ("<html>\x1b[2J hello</html>\n", "nvidia-smi failed: unexpected output: <html> hello</html>"),
    (f"{HEADER}\n", "nvidia-smi failed: no GPU rows"),
])
def test_output_that_is_not_nvidia_smi_csv_is_one_readable_failure(text: str, expected: str) -> None:
    with pytest.raises(NvidiaSmiError) as failure:
        parse_nvidia_smi(text)
    message = str(failure.value)
    assert message.startswith(expected) and "\n" not in message and "\x1b" not in message


def test_sample_helpers_leave_unknown_gpus_out() -> None:
    sample = MetricSample(1.0, gpu_util=(None, 80.0), vram_used_gb=(None, 6.0), vram_total_gb=(24.0, 24.0),
                          gpu_temp_c=(None, 70.0))
    assert sample.mean_gpu_util == 80.0 and sample.max_gpu_temp == 70.0
    assert sample.vram_pct == 25.0  # the GPU with unknown use is not counted as empty
    assert sample.total_power_w is None and sample.gpu_count == 2
