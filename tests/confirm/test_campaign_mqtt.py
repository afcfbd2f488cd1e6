"""Campaign updates over MQTT, through a real Mosquitto with the deployed ACL: the sensor
publishes them on netdetect/v1/campaigns, a SIEM forwarder reads them, a host cannot."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from netdetect.campaign import CampaignBook
from netdetect.intel import Intel
from netdetect.service import replay
from netdetect.sinks.campaigns import CAMPAIGN_TOPIC, CampaignMqtt, CampaignPublisher
from netdetect.sinks.mqtt import MqttAlertSink

from .conftest import Broker, mqtt_as, next_message

REPO = Path(__file__).resolve().parents[2]


def test_campaign_updates_reach_the_siem_forwarder(broker: Broker, intel: Intel) -> None:
    alerts = replay([str(REPO / "pcaps" / "proxy_stratum.pcap")], intel=intel,
                    sinks=[]).alerts

    async def run() -> list[dict[str, object]]:
        async with (
            mqtt_as(broker, "siem-forwarder", "siem") as siem,
            mqtt_as(broker, "web-01", "web-01") as web,
        ):
            await siem.subscribe(CAMPAIGN_TOPIC, qos=1)
            await web.subscribe(CAMPAIGN_TOPIC, qos=1)
            publisher = CampaignPublisher(context={"host": "sensor-1"})
            book = CampaignBook(on_update=publisher.update)
            async with MqttAlertSink(broker.settings("sensor-1"), client_id="sensor-1-camp",
                                     topic=CAMPAIGN_TOPIC) as sink:
                publisher.sinks.append(CampaignMqtt(sink))
                for a in alerts:
                    book.tag(a)
                while sink.published < publisher.published:
                    await asyncio.sleep(0.02)
            got = []
            while (msg := await next_message(siem, 3)) is not None:
                assert isinstance(msg.payload, bytes)
                got.append(json.loads(msg.payload))
            assert await next_message(web, 0.5) is None  # a host reads no campaigns
            assert len(got) == publisher.published
            return got

    got = asyncio.run(run())
    assert got[0]["change"] == "new"
    last = got[-1]["campaign"]
    assert isinstance(last, dict)
    assert last["host_count"] == 21
    assert last["alerts"] == 21
    assert last["proxies"] == [{"hub": "10.30.0.10", "members": 20,
                                "upstream": {"pool.supportxmr.com": 1}}]
    assert {u["campaign"]["id"] for u in got} == {last["id"]}  # type: ignore[index]
