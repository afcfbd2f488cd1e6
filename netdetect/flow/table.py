"""The bidirectional flow table: lookup, creation, timeouts and a hard size cap."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from netdetect.model import TCP, Packet

FlowKey = tuple[int, bytes, int, bytes, int]  # (proto, src ip, src port, dst ip, dst port)


class Flow:
    """State of one bidirectional flow. `a` is the originator: the SYN sender, or for a flow
    first seen mid-stream, the source of its first packet. Direction 0 is a→b, 1 is b→a."""

    __slots__ = (
        "a_ip",
        "a_port",
        "b_ip",
        "b_port",
        "bytes",
        "closed",
        "first_ts",
        "inspection",
        "isn0",
        "isn1",
        "key",
        "last_ts",
        "midflow",
        "num",
        "pkts",
        "proto",
        "vlan",
    )

    def __init__(self, num: int, key: FlowKey, pkt: Packet, midflow: bool) -> None:
        self.num = num
        self.key = key
        self.proto = pkt.proto
        self.a_ip = pkt.src
        self.a_port = pkt.sport
        self.b_ip = pkt.dst
        self.b_port = pkt.dport
        self.first_ts = pkt.ts
        self.last_ts = pkt.ts
        self.pkts = [0, 0]
        self.bytes = [0, 0]
        self.midflow = midflow
        self.closed = 0  # bit 0: FIN a→b, bit 1: FIN b→a, bit 2: RST
        self.vlan = pkt.vlan
        self.isn0 = -1  # initial sequence numbers from the SYNs, -1 until seen
        self.isn1 = -1
        # Per-flow deep-inspection state; None once the flow needs no more looking at.
        self.inspection: Any = None


class FlowTable:
    """Flows keyed by 5-tuple in the direction of their first packet.

    Bounded: at `max_flows` the oldest flows are evicted (and counted) to make room. Idle
    flows expire after `tcp_idle` / `udp_idle` seconds of packet time, closed TCP flows after
    `closed_linger`; expiry runs every `sweep_every` seconds of packet time. A flow older
    than `active_timeout` leaves the table too (counted in `active_expired`): its next packet
    starts a fresh, mid-stream flow, so a long-lived connection is looked at again instead of
    being judged forever on its first minutes. `on_expire` is called for every flow that
    leaves the table, whatever the reason.
    """

    def __init__(
        self,
        *,
        max_flows: int = 150_000,
        tcp_idle: float = 600.0,
        udp_idle: float = 120.0,
        closed_linger: float = 10.0,
        active_timeout: float = 3600.0,
        sweep_every: float = 5.0,
        on_expire: Callable[[Flow, str], None] | None = None,
    ) -> None:
        self.flows: dict[FlowKey, Flow] = {}
        self.max_flows = max_flows
        self.tcp_idle = tcp_idle
        self.udp_idle = udp_idle
        self.closed_linger = closed_linger
        self.active_timeout = active_timeout
        self.sweep_every = sweep_every
        self.on_expire = on_expire
        # Packet time at or after which maybe_sweep does work; -inf until the first packet sets
        # the clock. Public so a batch loop can test it inline instead of calling per packet.
        self.next_sweep = -math.inf
        self._num = 0
        self.created = 0
        self.expired = 0
        self.active_expired = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self.flows)

    def __iter__(self) -> Iterator[Flow]:
        return iter(self.flows.values())

    def lookup(self, pkt: Packet) -> tuple[Flow, int]:
        """The flow of `pkt` and the packet's direction (0 a→b, 1 b→a); creates the flow."""
        flows = self.flows
        key = (pkt.proto, pkt.src, pkt.sport, pkt.dst, pkt.dport)
        flow = flows.get(key)
        if flow is not None:
            return flow, 0
        flow = flows.get((pkt.proto, pkt.dst, pkt.dport, pkt.src, pkt.sport))
        if flow is not None:
            return flow, 1
        if pkt.proto == TCP and pkt.flags & 0x12 == 0x12:
            # A SYN/ACK opens the flow from the server's side: store it in the client's
            # direction so the originator is the client.
            key = (pkt.proto, pkt.dst, pkt.dport, pkt.src, pkt.sport)
            flow = Flow(self._num, key, pkt, midflow=False)
            flow.a_ip, flow.a_port, flow.b_ip, flow.b_port = pkt.dst, pkt.dport, pkt.src, pkt.sport
            direction = 1
        else:
            midflow = pkt.proto == TCP and not pkt.flags & 0x02
            flow = Flow(self._num, key, pkt, midflow=midflow)
            direction = 0
        self._num += 1
        if len(flows) >= self.max_flows:
            self._evict()
        flows[key] = flow
        self.created += 1
        return flow, direction

    def _evict(self) -> None:
        # Dicts keep insertion order: the first flows are the oldest. Evict a batch so the
        # cost is amortised, preferring flows that are not under inspection for mining.
        target = max(1, self.max_flows // 100)
        victims: list[FlowKey] = []
        for key, flow in self.flows.items():
            ins = flow.inspection
            if ins is None or not getattr(ins, "keep", False):
                victims.append(key)
                if len(victims) >= target:
                    break
        if not victims:
            victims = [next(iter(self.flows))]
        for key in victims:
            flow = self.flows.pop(key)
            self.evicted += 1
            if self.on_expire is not None:
                self.on_expire(flow, "evicted")

    def maybe_sweep(self, now: float) -> None:
        """Expire idle and closed flows; cheap unless a sweep is due."""
        nxt = self.next_sweep
        if now < nxt:
            return
        self.next_sweep = now + self.sweep_every
        if nxt != -math.inf:
            self.sweep(now)

    def sweep(self, now: float) -> None:
        dead: list[FlowKey] = []
        aged: list[FlowKey] = []
        oldest = now - self.active_timeout
        for key, flow in self.flows.items():
            if flow.first_ts < oldest:
                aged.append(key)
                continue
            idle = now - flow.last_ts
            # Fully closed (both FINs) or reset: gone soon. Half-closed connections keep
            # talking in the other direction, so they get the ordinary idle timeout.
            closed = flow.closed & 4 or flow.closed & 3 == 3
            limit = self.tcp_idle if flow.proto == TCP else self.udp_idle
            if (closed and idle > self.closed_linger) or idle > limit:
                dead.append(key)
        for key in dead:
            flow = self.flows.pop(key)
            self.expired += 1
            if self.on_expire is not None:
                self.on_expire(flow, "timeout")
        for key in aged:
            flow = self.flows.pop(key)
            self.active_expired += 1
            if self.on_expire is not None:
                self.on_expire(flow, "active")

    def drain(self) -> None:
        """End of input: every remaining flow leaves the table."""
        flows, self.flows = self.flows, {}
        for flow in flows.values():
            if self.on_expire is not None:
                self.on_expire(flow, "end")

    def counters(self) -> dict[str, int]:
        return {
            "flows_active": len(self.flows),
            "flows_created": self.created,
            "flows_expired": self.expired,
            "flows_active_expired": self.active_expired,
            "flows_evicted": self.evicted,
        }
