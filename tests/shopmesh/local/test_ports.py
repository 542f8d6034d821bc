"""App ports come from outside the kernel's ephemeral range, never twice."""

import socket

import pytest

from shopmesh.local import ports


def test_ports_are_free_distinct_and_outside_the_ephemeral_range():
    allocator = ports.PortAllocator()
    taken = [allocator.take() for _ in range(50)]
    assert len(set(taken)) == 50
    ephemeral = ports.EPHEMERAL_RANGE.read_text().split()
    low, high = int(ephemeral[0]), int(ephemeral[1])
    assert not [p for p in taken if low <= p <= high]
    for port in taken[:5]:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))


def test_a_port_in_use_is_never_handed_out(monkeypatch):
    with socket.socket() as busy, socket.socket() as spare:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        spare.bind(("127.0.0.1", 0))
        busy_port, spare_port = busy.getsockname()[1], spare.getsockname()[1]
        spare.close()
        monkeypatch.setattr(ports, "_outside_ephemeral_range", lambda: [busy_port, spare_port])
        # Candidates come in random order: 20 allocators try the busy one first
        # all but surely (1 - 2**-20), so ignoring that it is busy would show.
        assert {ports.PortAllocator().take() for _ in range(20)} == {spare_port}


def test_when_every_candidate_is_busy_take_fails_instead_of_searching_forever(monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setattr(ports, "_outside_ephemeral_range", lambda: range(port, port + 1))
        allocator = ports.PortAllocator()
        with pytest.raises(ports.PortsExhausted, match=f"no free port left in {port}-{port}"):
            allocator.take()


def test_a_port_is_handed_out_once_even_when_it_is_free_again(monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(ports, "_outside_ephemeral_range", lambda: range(port, port + 1))
    allocator = ports.PortAllocator()
    assert allocator.take() == port
    with pytest.raises(ports.PortsExhausted):
        allocator.take()
