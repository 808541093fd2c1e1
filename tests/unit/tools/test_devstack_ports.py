"""The stack's servers listen on ports below the kernel's ephemeral range, which clients' connections take
their source ports from (a port picked there could be taken before the server binds it)."""

from __future__ import annotations

import socket
from pathlib import Path

from devstack import core


def test_the_listen_ports_end_where_the_ephemeral_range_starts(tmp_path: Path) -> None:
    ephemeral = tmp_path / "ip_local_port_range"
    ephemeral.write_text("32768\t60999\n", encoding="ascii")
    assert core.listen_ports(ephemeral) == range(20000, 32768)
    ephemeral.write_text("20500 60999\n", encoding="ascii")  # no room left below it: the kernel picks
    assert len(core.listen_ports(ephemeral)) == 0
    assert core.listen_ports(tmp_path / "missing") == range(20000, 32768)  # Linux's default range


def test_a_free_port_is_below_the_ephemeral_range_and_can_be_bound(tmp_path: Path) -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text(encoding="ascii").split()[0])
    for _attempt in range(20):
        port = core.free_port(reservations=tmp_path / "ports")
        assert 20000 <= port < low
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((core.LOOPBACK, port))


def test_a_port_in_use_is_never_given(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind((core.LOOPBACK, 0))
        held.listen()
        taken = held.getsockname()[1]
        port = core.free_port(candidates=range(taken, taken + 1), reservations=tmp_path / "ports")
        assert port != taken and port > 0


def test_a_port_given_out_is_not_given_again_to_another_caller(tmp_path: Path) -> None:
    """Two stacks starting at once (one per pytest worker) must not both pick a port before either binds it."""
    reservations = tmp_path / "ports"
    free = core.free_port(reservations=tmp_path / "elsewhere")
    candidates = range(free, free + 1)  # one port, free now
    first = core.free_port(candidates=candidates, reservations=reservations)
    second = core.free_port(candidates=candidates, reservations=reservations)  # nothing bound it yet
    assert first == candidates[0] and second != first
    assert reservations.read_text(encoding="ascii").split()[0] == str(first)
