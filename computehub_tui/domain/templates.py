"""Launch templates: an image with its ports, environment, disk and start script."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    title: str
    image: str
    ports: tuple[str, ...] = ("22/tcp",)
    env: dict[str, str] = field(default_factory=dict)
    disk_gb: int = 20
    onstart: str = ""
    jupyter: bool = False
    description: str = ""


BUILTIN_TEMPLATES: tuple[Template, ...] = (
    Template("custom", "Custom Docker", "ubuntu:22.04", description="Any image you name"),
    Template("pytorch", "PyTorch", "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime", disk_gb=40,
             description="PyTorch 2.4 with CUDA 12.4"),
    Template("jupyter", "Jupyter", "jupyter/pytorch-notebook:cuda12-latest", ports=("22/tcp", "8888/http"),
             disk_gb=40, jupyter=True, description="JupyterLab on port 8888"),
    Template("vllm", "vLLM inference", "vllm/vllm-openai:latest", ports=("22/tcp", "8000/http"), disk_gb=80,
             env={"MODEL": "meta-llama/Llama-3.1-8B-Instruct"}, description="OpenAI-compatible server on 8000"),
    Template("comfyui", "ComfyUI", "ghcr.io/ai-dock/comfyui:latest", ports=("22/tcp", "8188/http"), disk_gb=60,
             description="ComfyUI on port 8188"),
    Template("sd-webui", "Stable Diffusion WebUI", "ghcr.io/ai-dock/stable-diffusion-webui:latest",
             ports=("22/tcp", "7860/http"), disk_gb=60, description="AUTOMATIC1111 WebUI on 7860"),
    Template("vscode", "VS Code server", "codercom/code-server:latest", ports=("22/tcp", "8080/http"),
             disk_gb=30, description="code-server on port 8080"),
)


def template_named(name: str) -> Template:
    for template in BUILTIN_TEMPLATES:
        if template.name == name:
            return template
    raise KeyError(name)
