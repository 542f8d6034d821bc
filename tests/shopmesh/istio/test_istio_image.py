"""The Dockerfile and the Deployments agree on how the image runs.

The image cannot be built here (no registry for base images); these checks pin
what the manifests rely on: entrypoint, user, ports, no state, build context.
"""

from __future__ import annotations

import fnmatch
import json
import re

from shopmesh.istio.manifests import ISTIO_DIR

from .istio_consistency import find

ROOT = ISTIO_DIR.parent


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def _env() -> dict[str, str]:
    env = {}
    for op, rest in _final_stage():
        if op == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    return env


def test_image_runs_the_service_named_by_the_argument(rendered) -> None:
    (entrypoint,) = [rest for op, rest in _final_stage() if op == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["python", "-m", "services"]
    for deployment in find(rendered["overlays/progressive-delivery"], "Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert "command" not in container  # the entrypoint is the image's
        assert container["args"] == [deployment["metadata"]["labels"]["app"]]


def test_image_user_and_ports_match_the_pods(rendered) -> None:
    (user,) = [rest for op, rest in _final_stage() if op == "USER"]
    (exposed,) = [rest.split() for op, rest in _final_stage() if op == "EXPOSE"]
    env = _env()
    for deployment in find(rendered["base"], "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert (
            user == f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}"
        )
        assert sorted(exposed) == sorted(str(p["containerPort"]) for p in container["ports"])
        pod_env = {e["name"]: e.get("value") for e in container["env"]}
        for name in ("SHOPMESH_LISTEN", "SHOPMESH_METRICS_LISTEN"):
            assert env[name] == pod_env[name], name


def test_image_keeps_no_state() -> None:
    """Data lives in PostgreSQL: no data dir, no volume, nothing made writable for it."""
    stage = _final_stage()
    assert not [rest for op, rest in stage if op == "VOLUME"]
    assert not [name for name in _env() if name == "SHOPMESH_DATA_DIR"]
    (workdir,) = [rest for op, rest in stage if op == "WORKDIR"]
    runs = " ".join(rest for op, rest in stage if op == "RUN")
    assert "install -d" not in runs and "chown" not in runs, "a writable dir in the image"
    assert workdir.startswith("/opt/"), workdir


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.removeprefix("!").removeprefix("**/")
        if fnmatch.fnmatch(path, glob) or fnmatch.fnmatch(path.rsplit("/", 1)[-1], glob):
            ignored = not negated
    return ignored


def test_everything_the_build_copies_is_in_the_build_context() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = [
        source
        for op, rest in _instructions()
        if op == "COPY" and not rest.startswith("--from")
        for source in rest.split()[:-1]
    ]
    assert {"pyproject.toml", "mesh", "services", "gen/python"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not _ignored(source, patterns), f"{source} is excluded by .dockerignore"
    assert _ignored("tests", patterns) and _ignored(".venv", patterns)
