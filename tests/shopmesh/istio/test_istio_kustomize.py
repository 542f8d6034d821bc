"""The kustomize loader resolves what istio/ uses the way kustomize does, and nothing else."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from shopmesh.istio import kustomize

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "shopmesh:0.1.0",
                        "args": ["catalog"],
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    },
                    {"name": "helper", "image": "registry.example/helper:1"},
                ]
            }
        }
    },
}
VIRTUAL_SERVICE = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"hosts": ["web"], "http": [{"name": "a"}, {"name": "b"}]},
}


def _tree(root: pathlib.Path, files: dict[str, object]) -> pathlib.Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        documents = content if isinstance(content, list) else [content]
        path.write_text(yaml.safe_dump_all(documents))
    return root


def _overlay(tmp_path: pathlib.Path, kustomization: dict, **files: object) -> pathlib.Path:
    _tree(
        tmp_path,
        {
            "base/kustomization.yaml": {"resources": ["objects.yaml"]},
            "base/objects.yaml": [DEPLOYMENT, VIRTUAL_SERVICE],
            "overlay/kustomization.yaml": {"resources": ["../base"], **kustomization},
            **{f"overlay/{name.replace('_', '-')}.yaml": c for name, c in files.items()},
        },
    )
    return tmp_path / "overlay"


def _get(documents: list[dict], kind: str) -> dict:
    (found,) = [d for d in documents if d["kind"] == kind]
    return found


def test_patches_merge_named_lists_on_builtin_kinds(tmp_path) -> None:
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "replicas": 3,
            "template": {
                "spec": {"containers": [{"name": "web", "env": [{"name": "B", "value": "9"}]}]}
            },
        },
    }
    overlay = _overlay(tmp_path, {"patches": [{"path": "patch.yaml"}]}, patch=patch)
    deployment = _get(kustomize.build(overlay), "Deployment")
    web, helper = deployment["spec"]["template"]["spec"]["containers"]
    assert deployment["spec"]["replicas"] == 3
    assert web["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "9"}]
    assert web["image"] == "shopmesh:0.1.0" and helper["name"] == "helper"


def test_patches_replace_lists_and_delete_null_keys_on_istio_kinds(tmp_path) -> None:
    patch = {**VIRTUAL_SERVICE, "spec": {"http": [{"name": "c"}], "hosts": None}}
    overlay = _overlay(tmp_path, {"patches": [{"path": "patch.yaml"}]}, patch=patch)
    assert _get(kustomize.build(overlay), "VirtualService")["spec"] == {"http": [{"name": "c"}]}


def test_patches_replace_lists_of_other_custom_resources_too(tmp_path) -> None:
    cluster = {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "db", "namespace": "shop"},
        "spec": {"instances": 3, "managed": {"roles": [{"name": "a"}, {"name": "b"}]}},
    }
    patch = {**cluster, "spec": {"managed": {"roles": [{"name": "c"}]}}}
    _tree(tmp_path, {"base/cluster.yaml": cluster})
    overlay = _overlay(
        tmp_path,
        {"resources": ["../base", "../base/cluster.yaml"], "patches": [{"path": "patch.yaml"}]},
        patch=patch,
    )
    (built,) = [d for d in kustomize.build(overlay) if d["kind"] == "Cluster"]
    assert built["spec"] == {"instances": 3, "managed": {"roles": [{"name": "c"}]}}


def test_images_rewrite_matching_containers_only(tmp_path) -> None:
    images = {"images": [{"name": "shopmesh", "newName": "reg.example/shopmesh", "newTag": "2"}]}
    deployment = _get(kustomize.build(_overlay(tmp_path, images)), "Deployment")
    images_now = [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert images_now == ["reg.example/shopmesh:2", "registry.example/helper:1"]


@pytest.mark.parametrize(
    ("kustomization", "files", "error"),
    [
        ({"namePrefix": "x-"}, {}, "namePrefix"),
        ({"patches": [{"path": "p.yaml", "target": {"kind": "Deployment"}}]}, {}, "path"),
        (
            {"patches": [{"path": "patch.yaml"}]},
            {
                "patch": {
                    **DEPLOYMENT,
                    "spec": {"template": {"spec": {"volumes": None}}},
                    "$patch": "delete",
                }
            },
            r"\$patch",
        ),
        (
            {"patches": [{"path": "patch.yaml"}]},
            {"patch": {**DEPLOYMENT, "spec": {"template": {"spec": {"tolerations": [{}]}}}}},
            "tolerations",
        ),
    ],
    ids=["unknown field", "patch target", "patch directive", "list without merge key"],
)
def test_unsupported_features_are_refused(tmp_path, kustomization, files, error) -> None:
    overlay = _overlay(tmp_path, kustomization, **files)
    with pytest.raises(kustomize.UnsupportedKustomization, match=error):
        kustomize.build(overlay)


def test_a_patch_must_hit_exactly_one_resource(tmp_path) -> None:
    patch = {**VIRTUAL_SERVICE, "metadata": {"name": "nowhere", "namespace": "shop"}}
    overlay = _overlay(tmp_path, {"patches": [{"path": "patch.yaml"}]}, patch=patch)
    with pytest.raises(ValueError, match="matches 0 resources"):
        kustomize.build(overlay)


def test_a_resource_defined_twice_is_an_error(tmp_path) -> None:
    overlay = _overlay(tmp_path, {"resources": ["../base", "again.yaml"]}, again=VIRTUAL_SERVICE)
    with pytest.raises(ValueError, match="defined twice"):
        kustomize.build(overlay)
