"""The four loopback marketplaces behind one CLI runner, shared by the CLI test modules."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from fakes import FakeMarketplace
from fakes import lambda_cloud as lambda_wire
from fakes import vast as vast_wire
from fakes.cli import CliRun, Invocation, base_environment, run_all, run_cli
from fakes.lambda_cloud import FakeLambda
from fakes.runpod import FakeRunpod
from fakes.tensordock import FakeTensordock
from fakes.vast import FakeVast

KEYS = {
    "vast": "vast-e2e-4c1f9a27d83b56e0",
    "runpod": "rpa_E2E7QK2M9X4TB8WN3VZ5",
    "lambda": "secret_e2e-lambda_9b7d5e3c1a",
    "tensordock": "td-e2e-tok-6a4f2c8e0b1d",
}
KEY_VARIABLES = {
    "vast": "VAST_API_KEY",
    "runpod": "RUNPOD_API_KEY",
    "lambda": "LAMBDA_API_KEY",
    "tensordock": "TENSORDOCK_API_TOKEN",
}
TENSORDOCK_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2eTestKeyForTensorDockVMs me@laptop"
OTHER_SECRETS = (vast_wire.INSTANCE_API_KEY, lambda_wire.ACTIVE["jupyter_token"])
"""Secrets the providers send back; nothing may print or store them either."""
FakeMarketplaceT = TypeVar("FakeMarketplaceT", bound=FakeMarketplace)


class Market:
    """The four fakes plus a CLI runner wired to them; checks for leaked secrets at the end."""

    def __init__(self, tmp_path: Path, fakes: dict[str, FakeMarketplace], stack: ExitStack) -> None:
        self.tmp_path = tmp_path
        self.fakes = fakes
        self._stack = stack
        self.runs: list[CliRun] = []
        self._data_dirs = 0
        self.config = tmp_path / "config.toml"
        self.config.write_text(
            f'[providers.lambda]\nssh_key_name = "{lambda_wire.SSH_KEY_NAME}"\n'
            f'[providers.tensordock]\nssh_public_key = "{TENSORDOCK_PUBLIC_KEY}"\n',
            encoding="utf-8",
        )

    @property
    def vast(self) -> FakeVast:
        return self.fakes["vast"]  # type: ignore[return-value]

    @property
    def runpod(self) -> FakeRunpod:
        return self.fakes["runpod"]  # type: ignore[return-value]

    @property
    def lambda_(self) -> FakeLambda:
        return self.fakes["lambda"]  # type: ignore[return-value]

    @property
    def tensordock(self) -> FakeTensordock:
        return self.fakes["tensordock"]  # type: ignore[return-value]

    def start(self, fake: FakeMarketplaceT) -> FakeMarketplaceT:
        """Run one more fake (for a scripted failure) until the test ends."""
        self.fakes[f"extra-{len(self.fakes)}"] = self._stack.enter_context(fake)
        return fake

    def new_data_dir(self) -> Path:
        self._data_dirs += 1
        return self.tmp_path / "data" / str(self._data_dirs)

    def environment(self, keys: tuple[str, ...] = tuple(KEYS), **overrides: str) -> dict[str, str]:
        env = {"COMPUTEHUB_CONFIG": str(self.config)}
        for name in KEYS:
            env.update(self.fakes[name].endpoint_env())
        env.update({KEY_VARIABLES[name]: KEYS[name] for name in keys})
        env.update(overrides)
        return base_environment(env)

    def invocation(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        stdin: str = "",
        data_dir: Path | None = None,
    ) -> Invocation:
        where = data_dir or self.new_data_dir()
        return Invocation((*args, "--data-dir", str(where)), env or self.environment(), stdin)

    def run(self, *args: str, **options: Any) -> CliRun:
        invocation = self.invocation(*args, **options)
        result = run_cli(invocation.args, invocation.env, invocation.stdin)
        self.runs.append(result)
        return result

    def run_all(self, *invocations: Invocation, process: bool = False) -> list[CliRun]:
        results = run_all(invocations, process=process)
        self.runs.extend(results)
        return results

    def leaks(self) -> list[str]:
        """Every place a key or returned secret turned up: output, data files, request URLs."""
        secrets = [*KEYS.values(), *OTHER_SECRETS]
        found = [
            f"{run.args[0]} output"
            for run in self.runs
            for secret in secrets
            if secret in run.stdout or secret in run.stderr
        ]
        for path in (self.tmp_path / "data").rglob("*"):
            if path.is_file():
                content = path.read_bytes()
                found += [str(path) for secret in secrets if secret.encode() in content]
        for name, fake in self.fakes.items():
            found += [
                f"{name} URL {r.target}"
                for r in fake.server.requests
                for secret in secrets
                if secret in r.target
            ]
        return found


@contextmanager
def open_market(tmp_path: Path) -> Iterator[Market]:
    """The four fakes running, and a CLI runner wired to them; fails if a secret leaked."""
    fakes: dict[str, FakeMarketplace] = {
        "vast": FakeVast(KEYS["vast"]),
        "runpod": FakeRunpod(KEYS["runpod"]),
        "lambda": FakeLambda(KEYS["lambda"]),
        "tensordock": FakeTensordock(KEYS["tensordock"]),
    }
    with ExitStack() as stack:
        for fake in fakes.values():
            stack.enter_context(fake)
        opened = Market(tmp_path, fakes, stack)
        yield opened
        assert opened.leaks() == []


def ok(run: CliRun) -> CliRun:
    assert run.code == 0 and run.stderr == "", run.describe()
    return run


def one_error_line(run: CliRun, code: int) -> str:
    """The run failed with ``code`` and said so in exactly one readable stderr line."""
    assert run.code == code, run.describe()
    assert len(run.error_lines) == 1 and "Traceback" not in run.stderr, run.describe()
    return run.error_lines[0]
