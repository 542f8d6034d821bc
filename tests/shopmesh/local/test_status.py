"""`shopmesh status` reads the running mesh: replica health and each proxy's view."""

from shopmesh import cli


def test_status_shows_every_replica_serving_and_every_proxy_healthy(mesh, capsys):
    assert cli.main(["status", "--run-dir", str(mesh.layout.root)]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("all healthy")
    for replicas in mesh.replicas.values():
        for replica in replicas:
            assert f"{replica.name}" in out
            line = next(line for line in out.splitlines() if line.startswith(replica.name))
            assert "SERVING" in line and replica.app_address in line
    assert out.count("-> catalog") == 2 + 2 * 2  # the edge's view + each order replica's
    assert "UNHEALTHY" not in out


def test_status_without_a_mesh_says_so(tmp_path, capsys):
    assert cli.main(["status", "--run-dir", str(tmp_path)]) == 1
    assert "no local mesh running" in capsys.readouterr().out
