"""Regenerate, or check, everything derived from proto/.

    python tools/codegen.py write   # make gen
    python tools/codegen.py check   # make check-gen: fail if anything is stale

Derived from the contracts and committed:
- gen/python/        Python messages, .pyi types and gRPC stubs (buf.gen.yaml)
- gen/ts/            TypeScript messages and service descriptors (protobuf-es,
  buf.gen.yaml), plus the googleapis types they import and the google.rpc
  error types clients decode error details with (ERROR_TYPES)
- gen/go/            Go messages and gRPC stubs (protoc-gen-go, protoc-gen-go-grpc from
  .tools/bin, buf.gen.go.yaml), module shopmesh.example/gen/go. Its go.mod and
  go.sum are kept by hand (`go mod tidy` in gen/go): they say which releases of
  protobuf, gRPC and genproto the stubs build with, which proto/ does not.
- gen/descriptor/    the contracts as one FileDescriptorSet, comments included, for tools
  that read a descriptor file (grpcurl -protoset, buf)
- gen/openapi/       the REST API as one OpenAPI 2 document (protoc-gen-openapiv2,
  buf.gen.yaml), finished by tools/openapi_spec.py with what the edge adds
- third_party/googleapis/  the googleapis .proto files proto/ imports, copied
  from the installed googleapis-common-protos wheel (the same release whose
  Python modules the generated code imports), so `buf breaking` can build any
  committed revision on its own.

Generation happens in a scratch directory and replaces the committed tree only
when every step succeeded, so a broken .proto leaves gen/ untouched.
"""

from __future__ import annotations

import filecmp
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import google.api.annotations_pb2
import openapi_spec
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUF = pathlib.Path(sys.executable).parent / "buf"
GENERATED = ("gen",)
GOOGLEAPIS = pathlib.Path("third_party/googleapis")
# The import closure of proto/: buf fails to build if one is missing.
GOOGLEAPIS_PROTOS = (
    "google/api/annotations.proto",
    "google/api/field_behavior.proto",
    "google/api/http.proto",
    "google/type/money.proto",
    "google/type/postal_address.proto",
    # Not imported by proto/, yet every error carries them (ERROR_TYPES).
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
)
# google.rpc.Status and its details (ErrorInfo, BadRequest, ...) for languages
# without a package that ships them: Python has them from googleapis-common-protos,
# so only the TypeScript plugins of buf.gen.yaml generate them.
ERROR_TYPES = ("google/rpc/status.proto", "google/rpc/error_details.proto")
TS_OUT = "gen/ts"
GO_TEMPLATE = "buf.gen.go.yaml"
TEMPLATES = ("buf.gen.yaml", GO_TEMPLATE)
# Not generated: the Go module's own files, carried over into every generated tree.
GO_MODULE_FILES = ("gen/go/go.mod", "gen/go/go.sum")
OPENAPI = "gen/openapi/shop.swagger.json"
WHEEL_ROOT = pathlib.Path(google.api.annotations_pb2.__file__).parents[2]


def copy_googleapis(dest: pathlib.Path) -> None:
    for name in GOOGLEAPIS_PROTOS:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(WHEEL_ROOT / name, target)


def run_buf(*args: str) -> None:
    # buf.gen.yaml names its generators by command; they are this venv's.
    path = f"{BUF.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    subprocess.run([str(BUF), *args], cwd=ROOT, check=True, env={**os.environ, "PATH": path})


def error_types_template() -> str:
    """buf.gen.yaml's TypeScript plugins alone, as a template buf accepts inline."""
    config = yaml.safe_load((ROOT / "buf.gen.yaml").read_text())
    plugins = [p for p in config["plugins"] if p["out"].startswith(TS_OUT)]
    return json.dumps({"version": config["version"], "plugins": plugins})


def plugins_missing() -> bool:
    """Says which of the templates' plugins named by a path are not installed."""
    missing = [
        local
        for template in TEMPLATES
        for plugin in yaml.safe_load((ROOT / template).read_text())["plugins"]
        if isinstance(local := plugin.get("local"), str)
        and "/" in local
        and not (ROOT / local).is_file()
    ]
    for local in missing:
        print(
            f"codegen: {local} is missing; `make gen` and `make check-gen` install it "
            "(npm ci in clients/node, make tools for .tools/bin)",
            file=sys.stderr,
        )
    return bool(missing)


def keep_go_module_files(scratch: pathlib.Path) -> None:
    for name in GO_MODULE_FILES:
        if (ROOT / name).exists():
            shutil.copyfile(ROOT / name, scratch / name)


def generate(scratch: pathlib.Path) -> None:
    """Write gen/ under scratch; raises CalledProcessError with buf's message."""
    run_buf("generate", "--output", str(scratch))
    openapi_spec.finish_file(scratch / OPENAPI)
    run_buf("generate", "--template", GO_TEMPLATE, "--output", str(scratch))
    keep_go_module_files(scratch)
    error_types = [f"--path={GOOGLEAPIS / name}" for name in ERROR_TYPES]
    template = error_types_template()
    run_buf("generate", str(GOOGLEAPIS), "--template", template, *error_types, "-o", str(scratch))
    descriptor = scratch / "gen/descriptor/shop.binpb"
    descriptor.parent.mkdir(parents=True, exist_ok=True)
    # The transcoder's descriptor stays what proto/ builds to: the error types
    # are in third_party/ for the TypeScript clients only.
    excluded = [f"--exclude-path={GOOGLEAPIS / name}" for name in ERROR_TYPES]
    run_buf("build", *excluded, "--output", str(descriptor))


def differences(left: pathlib.Path, right: pathlib.Path) -> list[str]:
    """Relative paths that differ between two trees (missing on either side too)."""
    found: list[str] = []

    def walk(cmp: filecmp.dircmp, prefix: pathlib.Path) -> None:
        for name in cmp.left_only + cmp.right_only + cmp.diff_files + cmp.funny_files:
            found.append(str(prefix / name))
        for name, sub in cmp.subdirs.items():
            walk(sub, prefix / name)

    if not left.exists() or not right.exists():
        return [str(left if not left.exists() else right)]
    walk(filecmp.dircmp(left, right, ignore=["__pycache__"]), pathlib.Path(left.name))
    return found


def write() -> int:
    if plugins_missing():
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        scratch = pathlib.Path(tmp) / "out"
        # buf reads the googleapis module where buf.yaml puts it, so the wheel's
        # copy must be in place before generating; a failed run puts the old one back.
        previous = pathlib.Path(tmp) / "previous-googleapis"
        if (ROOT / GOOGLEAPIS).exists():
            shutil.copytree(ROOT / GOOGLEAPIS, previous)
        copy_googleapis(ROOT / GOOGLEAPIS)
        try:
            generate(scratch)
        except BaseException as failure:  # buf's error, no buf at all, or Ctrl-C
            shutil.rmtree(ROOT / GOOGLEAPIS)
            if previous.exists():
                shutil.copytree(previous, ROOT / GOOGLEAPIS)
            if not isinstance(failure, subprocess.CalledProcessError):
                raise
            print("codegen: buf failed; committed generated code left as it was", file=sys.stderr)
            return 1
        for name in GENERATED:
            # Copy next to the old tree, then swap: never a half-written gen/.
            incoming, outgoing = ROOT / f".{name}.incoming", ROOT / f".{name}.outgoing"
            shutil.rmtree(incoming, ignore_errors=True)
            shutil.rmtree(outgoing, ignore_errors=True)
            shutil.copytree(scratch / name, incoming)
            if (ROOT / name).exists():
                (ROOT / name).rename(outgoing)
            incoming.rename(ROOT / name)
            shutil.rmtree(outgoing, ignore_errors=True)
    print("codegen: gen/ and third_party/googleapis/ are up to date")
    return 0


def check() -> int:
    if plugins_missing():
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        scratch = pathlib.Path(tmp)
        copy_googleapis(scratch / GOOGLEAPIS)
        stale = differences(ROOT / GOOGLEAPIS, scratch / GOOGLEAPIS)
        if not stale:
            try:
                generate(scratch)
            except subprocess.CalledProcessError:
                print("codegen: buf failed on proto/ (see above)", file=sys.stderr)
                return 1
            for name in GENERATED:
                stale += differences(ROOT / name, scratch / name)
    if stale:
        sys.stdout.flush()
        print(
            "codegen: generated code is stale; run `make gen` and commit the result.",
            file=sys.stderr,
        )
        for path in stale:
            print(f"  differs: {path}", file=sys.stderr)
        return 1
    print("codegen: generated code matches proto/")
    return 0


if __name__ == "__main__":
    commands = {"write": write, "check": check}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: {sys.argv[0]} {{write|check}}")
    sys.exit(commands[sys.argv[1]]())
