"""`shopmesh load --target` is refused unless its host resolves to loopback addresses only."""

import argparse
import socket

import pytest

from shopmesh import cli
from shopmesh.commands import load


def resolving_to(*addresses):
    """A stand-in for socket.getaddrinfo that answers every name with `addresses`."""

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, 0, 0, 0) if ":" in a else (a, 0),
            )
            for a in addresses
        ]

    return getaddrinfo


def unresolvable(host, port, family=0, type=0, proto=0, flags=0):
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:8080",
        "127.0.0.1:8080",
        "http://localhost:8080",
        "localhost:8080",
        "http://[::1]:8080",
        "[::1]:8080",
    ],
)
def test_loopback_targets_are_accepted(target):
    assert load._loopback(target) == target


@pytest.mark.parametrize("target", ["http://10.0.0.1:8080", "10.0.0.1:8080", "http://0.0.0.0:8080"])
def test_a_non_loopback_address_is_refused(target):
    with pytest.raises(argparse.ArgumentTypeError, match="which is not loopback"):
        load._loopback(target)


def test_a_name_with_a_127_prefix_resolving_elsewhere_is_refused(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", resolving_to("203.0.113.7"))
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        load._loopback("http://127.example.com:8080")
    assert "'127.example.com' resolves to 203.0.113.7, which is not loopback" in str(refused.value)


def test_a_name_resolving_to_loopback_and_elsewhere_is_refused(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", resolving_to("127.0.0.1", "::1", "198.51.100.1"))
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        load._loopback("http://127.0.0.1.nip.io:8080")
    assert "resolves to 198.51.100.1, which is not loopback" in str(refused.value)


def test_a_name_resolving_to_loopback_only_is_accepted(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", resolving_to("127.0.0.1", "::1"))
    assert load._loopback("shop.test:8080") == "shop.test:8080"


def test_an_unresolvable_name_is_refused(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", unresolvable)
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        load._loopback("http://127.0.0.1.nowhere.invalid:8080")
    message = str(refused.value)
    assert "load is only sent to loopback addresses" in message
    assert "cannot resolve '127.0.0.1.nowhere.invalid'" in message


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1@10.0.0.1:8080",  # user info: the host is 10.0.0.1
        "http://:8080",
        "http://127.0.0.1:http",
    ],
)
def test_a_target_without_a_plain_host_is_refused(target):
    with pytest.raises(argparse.ArgumentTypeError, match="load is only sent to loopback addresses"):
        load._loopback(target)


def test_the_command_exits_2_naming_the_problem(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["load", "--target", "http://10.0.0.1:8080", "--duration", "0"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "argument --target" in error
    assert "'10.0.0.1' resolves to 10.0.0.1, which is not loopback" in error
