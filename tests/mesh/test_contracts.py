"""The contracts in proto/ compile and say everything the mesh relies on."""

import pathlib
import shutil
import subprocess
import sys

import pytest
from google.protobuf import descriptor_pb2

from mesh import contracts

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUF = pathlib.Path(sys.executable).parent / "buf"
READ_PREFIXES = ("Get", "BatchGet", "List", "Search", "Lookup")
EXPECTED_SERVICES = {
    "catalog": "shop.catalog.v1.CatalogService",
    "inventory": "shop.inventory.v1.InventoryService",
    "order": "shop.order.v1.OrderService",
    "payment": "shop.payment.v1.PaymentService",
}


def all_policies() -> list[contracts.MethodPolicy]:
    return [m for s in contracts.services().values() for m in s.methods.values()]


@pytest.fixture(scope="module")
def own_files(tmp_path_factory) -> list[descriptor_pb2.FileDescriptorProto]:
    out = tmp_path_factory.mktemp("image") / "shop.binpb"
    subprocess.run(
        [BUF, "build", "--exclude-imports", "--as-file-descriptor-set", "-o", out],
        cwd=ROOT,
        check=True,
    )
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    # The workspace also holds the googleapis files other generators need; ours are shop/.
    return [f for f in files if f.name.startswith("shop/")]


def test_contracts_define_the_four_services():
    found = {name: s.full_name for name, s in contracts.services().items()}
    assert found == EXPECTED_SERVICES


def test_every_public_rpc_has_an_http_rule_and_internal_ones_have_none():
    for policy in all_policies():
        if policy.internal:
            assert policy.http is None, f"{policy.path} is internal but has an HTTP rule"
        else:
            assert policy.http is not None, f"{policy.path} is public but has no HTTP rule"
            assert policy.http.WhichOneof("pattern"), policy.path


def test_every_http_rule_is_one_envoy_can_transcode():
    # Envoy's gRPC-JSON transcoder (the edge, Istio's gateway) refuses to start on a
    # response_body naming anything but a google.api.HttpBody field.
    for policy in all_policies():
        if policy.http is None or not policy.http.response_body:
            continue
        field = policy.descriptor.output_type.fields_by_name[policy.http.response_body]
        assert field.message_type is not None, policy.path
        assert field.message_type.full_name == "google.api.HttpBody", policy.path


def test_reads_are_no_side_effects_and_only_reads_are():
    for policy in all_policies():
        is_read_name = policy.name.startswith(READ_PREFIXES)
        assert policy.is_read == is_read_name, f"{policy.path}: {policy.idempotency}"


def test_every_mutation_is_idempotent_by_a_required_request_id():
    behavior = "google.api.field_behavior"
    for policy in all_policies():
        if policy.is_read:
            continue
        assert policy.idempotency is contracts.Idempotency.IDEMPOTENT, policy.path
        assert policy.has_request_id, f"{policy.path} is retried but has no request_id"
        field = policy.descriptor.input_type.fields_by_name["request_id"]
        behaviors = [
            value
            for option, value in field.GetOptions().ListFields()
            if option.full_name == behavior
        ]
        assert behaviors and 2 in behaviors[0], f"{policy.path}: request_id is not REQUIRED"


def test_every_rpc_declares_a_timeout():
    for policy in all_policies():
        options = policy.descriptor.GetOptions()
        declared = options.Extensions[contracts.options_pb2.policy]
        assert 0 < declared.timeout_ms <= 30_000, policy.path
        assert policy.timeout == declared.timeout_ms / 1000


def test_policy_reads_back_by_method_path():
    get_product = contracts.method_policy("/shop.catalog.v1.CatalogService/GetProduct")
    assert get_product.is_read and get_product.timeout == 0.5
    assert get_product.http.get == "/v1/products/{id}"
    charge = contracts.method_policy("/shop.payment.v1.PaymentService/Charge")
    assert charge.internal and charge.idempotency is contracts.Idempotency.IDEMPOTENT
    request = contracts.service("payment").messages.ChargeRequest
    assert charge.retry_safe(request(request_id="r-1"))
    assert not charge.retry_safe(request())
    with pytest.raises(KeyError, match="no RPC"):
        contracts.method_policy("/shop.catalog.v1.CatalogService/DeleteEverything")


def test_stubs_and_servicers_are_reachable_from_the_contract():
    catalog = contracts.service("catalog")
    assert catalog.servicer_base.__name__ == "CatalogServiceServicer"
    assert hasattr(catalog.stub(object.__new__(_FakeChannel)), "GetProduct")


class _FakeChannel:
    def unary_unary(self, *args, **kwargs):
        return None


def _uncommented(file: descriptor_pb2.FileDescriptorProto) -> list[str]:
    comments = {
        tuple(loc.path): loc.leading_comments.strip() for loc in file.source_code_info.location
    }
    missing: list[str] = []

    def need(path: tuple[int, ...], what: str) -> None:
        if not comments.get(path):
            missing.append(f"{file.name}: {what}")

    def message(msg: descriptor_pb2.DescriptorProto, path: tuple[int, ...], prefix: str):
        need(path, f"message {prefix}{msg.name}")
        for i, field in enumerate(msg.field):
            need((*path, 2, i), f"field {prefix}{msg.name}.{field.name}")
        for i, oneof in enumerate(msg.oneof_decl):
            need((*path, 8, i), f"oneof {prefix}{msg.name}.{oneof.name}")
        for i, nested in enumerate(msg.nested_type):
            message(nested, (*path, 3, i), f"{prefix}{msg.name}.")
        for i, enum in enumerate(msg.enum_type):
            enumeration(enum, (*path, 4, i))

    def enumeration(enum: descriptor_pb2.EnumDescriptorProto, path: tuple[int, ...]):
        need(path, f"enum {enum.name}")
        for i, value in enumerate(enum.value):
            need((*path, 2, i), f"enum value {value.name}")

    for i, msg in enumerate(file.message_type):
        message(msg, (4, i), "")
    for i, enum in enumerate(file.enum_type):
        enumeration(enum, (5, i))
    for i, svc in enumerate(file.service):
        need((6, i), f"service {svc.name}")
        for j, method in enumerate(svc.method):
            need((6, i, 2, j), f"rpc {svc.name}.{method.name}")
    return missing


def test_every_service_rpc_message_field_and_enum_value_is_commented(own_files):
    assert {f.name for f in own_files} >= {
        f"shop/{name}/v1/{name}.proto" for name in EXPECTED_SERVICES
    }
    missing = [m for f in own_files for m in _uncommented(f)]
    assert not missing, "\n".join(missing)


def test_buf_lint_and_format_are_clean():
    subprocess.run([BUF, "lint"], cwd=ROOT, check=True)
    subprocess.run([BUF, "format", "-d", "--exit-code", "proto"], cwd=ROOT, check=True)


def _project_copy(tmp_path: pathlib.Path) -> pathlib.Path:
    copy = tmp_path / "project"
    for name in ("proto", "gen", "third_party", "tools"):
        shutil.copytree(ROOT / name, copy / name)
    for name in ("buf.yaml", "buf.gen.yaml", "buf.gen.go.yaml"):
        shutil.copy(ROOT / name, copy / name)
    # The TypeScript generator is an npm package, the Go ones are .tools/bin's
    # (make tools): borrow the installed ones.
    (copy / "clients/node").mkdir(parents=True)
    (copy / "clients/node/node_modules").symlink_to(ROOT / "clients/node/node_modules")
    (copy / ".tools").symlink_to(ROOT / ".tools")
    return copy


def test_drift_check_fails_when_a_proto_changes_without_regenerating(tmp_path):
    copy = _project_copy(tmp_path)
    codegen = [sys.executable, "tools/codegen.py"]
    # (`make check-gen` shows the committed tree passes the same check.)
    proto = copy / "proto/shop/catalog/v1/catalog.proto"
    proto.write_text(
        proto.read_text().replace(
            "  string id = 1 [(google.api.field_behavior) = REQUIRED];\n}",
            "  string id = 1 [(google.api.field_behavior) = REQUIRED];\n"
            "  // Added without regenerating.\n  bool extra = 2;\n}",
            1,
        )
    )
    result = subprocess.run([*codegen, "check"], cwd=copy, capture_output=True, text=True)
    assert result.returncode == 1
    assert "stale" in result.stderr and "catalog_pb2.py" in result.stderr
    assert "catalog.pb.go" in result.stderr  # gen/go too


def _files(tree: pathlib.Path) -> dict[pathlib.Path, bytes]:
    return {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()}


def test_gen_on_a_broken_proto_fails_and_leaves_generated_code_untouched(tmp_path):
    copy = _project_copy(tmp_path)
    # A googleapis copy that differs from the wheel's: the failed run must not replace it.
    http = copy / "third_party/googleapis/google/api/http.proto"
    http.write_text(http.read_text() + "\n// edited\n")
    before = {**_files(copy / "gen"), **_files(copy / "third_party")}
    proto = copy / "proto/shop/order/v1/order.proto"
    proto.write_text(proto.read_text() + "\nmessage Broken { string = 1; }\n")
    result = subprocess.run(
        [sys.executable, "tools/codegen.py", "write"], cwd=copy, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "order.proto" in result.stderr  # buf's own error names the file
    assert {**_files(copy / "gen"), **_files(copy / "third_party")} == before


def test_gen_on_unchanged_protos_rewrites_the_same_tree_and_leaves_no_scratch(tmp_path):
    copy = _project_copy(tmp_path)
    before = _files(copy / "gen")
    result = subprocess.run(
        [sys.executable, "tools/codegen.py", "write"], cwd=copy, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert _files(copy / "gen") == before
    # No scratch left (.tools is the borrowed Go plugins).
    assert sorted(p.name for p in copy.iterdir() if p.name.startswith(".")) == [".tools"]
