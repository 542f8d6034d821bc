"""envoy/ templates: placeholders are filled by value, and caller and template cannot drift."""

import pytest

from shopmesh.envoy import templates


@pytest.fixture
def template(tmp_path, monkeypatch):
    monkeypatch.setattr(templates, "FRAGMENTS_DIR", tmp_path)
    templates._load.cache_clear()
    yield tmp_path
    templates._load.cache_clear()


def test_whole_placeholders_take_any_value_and_none_drops_the_key(template):
    (template / "t.yaml").write_text(
        'port: "${port}"\nroutes: ${routes}\nretry: ${retry}\nname: out_${name}\n'
    )
    filled = templates.fill("t", port=8080, routes=[{"a": 1}], retry=None, name="x")
    assert filled == {"port": 8080, "routes": [{"a": 1}], "name": "out_x"}


def test_a_missing_value_is_an_error(template):
    (template / "t.yaml").write_text("a: ${a}\nb: ${b}\n")
    with pytest.raises(KeyError, match="b"):
        templates.fill("t", a=1)


def test_a_value_without_placeholder_is_an_error(template):
    (template / "t.yaml").write_text("a: ${a}\n")
    with pytest.raises(TypeError, match="typo"):
        templates.fill("t", a=1, typo=2)


def test_every_committed_template_parses():
    names = sorted(templates.FRAGMENTS_DIR.rglob("*.yaml"))
    assert names, "no templates found"
    for path in names:
        name = str(path.relative_to(templates.FRAGMENTS_DIR).with_suffix(""))
        assert templates._load(name) is not None, name
