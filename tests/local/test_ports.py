"""App ports come from outside the kernel's ephemeral range, never twice."""

import socket

from mesh.local import ports


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
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setattr(ports, "_outside_ephemeral_range", lambda: range(port, port + 2))
        assert ports.PortAllocator().take() == port + 1
