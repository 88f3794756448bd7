"""Launch templates: built-in data files, user TOML files, and errors that name file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from computehub_tui.domain.templates import TemplateError, template_from_mapping
from computehub_tui.template_files import builtin_templates, load_templates


def test_builtin_templates_cover_the_common_workloads() -> None:
    names = [t.name for t in builtin_templates()]
    assert names == ["custom", "pytorch", "jupyter", "vllm", "comfyui", "sd-webui", "vscode"]
    by_name = {t.name: t for t in builtin_templates()}
    assert "8888/http" in by_name["jupyter"].ports and by_name["jupyter"].jupyter
    assert by_name["vllm"].env["MODEL"] and "vllm" in by_name["vllm"].onstart
    assert all("22/tcp" in t.ports for t in by_name.values())


def test_user_templates_add_and_override(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text('name = "my-llm"\nimage = "me/llm:1"\nports = ["22/tcp", "9000/http"]\n'
                                        'disk_gb = 120\n[env]\nHF_TOKEN = "x"\n')
    (tmp_path / "pytorch.toml").write_text('name = "pytorch"\ntitle = "PyTorch nightly"\nimage = "pytorch/pytorch:nightly"\n')
    templates, errors = load_templates(tmp_path)
    assert errors == []
    by_name = {t.name: t for t in templates}
    assert by_name["my-llm"].disk_gb == 120 and by_name["my-llm"].env == {"HF_TOKEN": "x"}
    assert by_name["my-llm"].source == str(tmp_path / "mine.toml")
    assert by_name["pytorch"].image == "pytorch/pytorch:nightly"
    assert [t.name for t in templates].index("pytorch") == 1  # overriding keeps the built-in's place


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ('name = "x"\nimage = "a b"\n', "image"),
        ('name = "x"\nimage = "a"\ndisk_gb = "big"\n', "disk_gb"),
        ('name = "x"\nimage = "a"\nports = ["8888"]\n', "ports"),
        ('name = "X Y"\nimage = "a"\n', "name"),
        ('name = "x"\nimage = "a"\ncolour = "red"\n', "colour"),
        ('image = "a"\n', "name"),
    ],
)
def test_broken_user_templates_are_reported_with_file_and_field(tmp_path: Path, content: str, field: str) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(content)
    templates, errors = load_templates(tmp_path)
    assert len(errors) == 1
    assert str(path) in errors[0] and f"field '{field}'" in errors[0]
    assert len(templates) == 7  # the built-ins survive a broken user file


def test_invalid_toml_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("name = \n")
    templates, errors = load_templates(tmp_path)
    assert len(errors) == 1 and "not valid TOML" in errors[0] and "bad.toml" in errors[0]
    assert templates


def test_template_from_mapping_rejects_bad_port_numbers() -> None:
    with pytest.raises(TemplateError, match="70000/tcp"):
        template_from_mapping({"name": "x", "image": "a", "ports": ["70000/tcp"]}, "t.toml")
