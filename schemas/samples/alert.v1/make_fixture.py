#!/usr/bin/env python3
"""Writes fixture.ndjson: the stream behind the alert.v1 golden samples (deterministic; rerun to check).

Two brands over four hours of event time (2026-11-26 10:00–14:00 UTC):
- acme: ordinary comments (about 4 a minute, 15 % negative) all along; from 12:30 a real backlash on
  post acme-launch: 25 long-standing customers (who bought before) write 180 varied angry comments over
  15 minutes, then it stops. Expect NegativeSentimentSpike at subject and brand level, assessment organic,
  high verified-customer share, resolved 10 minutes after the wave leaves the detection window.
- globex: ordinary comments all along; from 13:00 a coordinated attack on post globex-ad: 120 accounts
  created two days earlier post near-identical text in synchronised bursts for 10 minutes. Expect
  CoordinatedNegativeCampaign (warning), assessment suspected_coordinated.
Usage: python3 make_fixture.py > fixture.ndjson
"""
import datetime
import json
import random

rng = random.Random(7)
START = 1_795_687_200_000  # 2026-11-26T10:00:00Z
MINUTE = 60_000
events = []


def iso(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def add(kind, at, subject, brand, user_id, **extra):
    event = {"event_id": f"e{len(events) + 1}", "type": kind, "occurred_at": iso(at), "subject_id": subject,
             "brand": brand, "user_id": user_id}
    event.update(extra)
    events.append((at, event))


NEGATIVE = ["the app keeps crashing", "support ignored me for a week", "my order arrived broken",
            "charged twice and no refund", "this update ruined it", "worst service ever"]
POSITIVE = ["love it", "works great for me", "fast delivery, thanks", "really good quality"]
NEUTRAL = ["does it ship to Norway?", "which size fits me?", "when is the next sale?"]

for brand in ("acme", "globex"):
    for minute in range(240):
        for _ in range(4):
            at = START + minute * MINUTE + rng.randrange(MINUTE)
            user = f"{brand}-fan-{rng.randrange(600)}"
            subject = f"{brand}-post-{rng.randrange(8)}"
            roll = rng.random()
            if roll < 0.15:
                add("comment", at, subject, brand, user, text=rng.choice(NEGATIVE), sentiment=-0.6)
            elif roll < 0.6:
                add("comment", at, subject, brand, user, text=rng.choice(POSITIVE), sentiment=0.6)
            else:
                add("comment", at, subject, brand, user, text=rng.choice(NEUTRAL), sentiment=0.0)
        if minute % 3 == 0:
            add("purchase", START + minute * MINUTE + rng.randrange(MINUTE), f"{brand}-sku-1", brand,
                f"{brand}-buyer-{rng.randrange(40)}", amount=25, currency="EUR")

# acme backlash by its own buyers (who bought during the first two hours above or here).
for buyer in range(25):
    add("purchase", START + 10 * MINUTE + buyer * 1000, "acme-sku-1", "acme", f"acme-buyer-{buyer}",
        amount=40, currency="EUR")
complaints = ["the new version deleted all my saved work", "three days without service and no answer",
              "I want my money back, the launch is a disaster", "the launch update bricked my device",
              "support closed my ticket without reading it", "the redesign is unusable, bring back the old one"]
for index in range(180):
    at = START + 150 * MINUTE + index * 5_000 + rng.randrange(4_000)
    buyer = f"acme-buyer-{index % 25}"
    text = f"{rng.choice(complaints)} ({rng.choice(['again', 'still', 'seriously', 'today'])} #{index})"
    add("comment", at, "acme-launch", "acme", buyer, text=text, sentiment=-0.8,
        user={"created_at": iso(START - 400 * 86_400_000)})

# globex attack: fresh accounts, one template, bursts every 20 s.
template = "globex scammed me, do not buy from globex, total fraud"
for burst in range(30):
    for member in range(8):
        account = f"globex-new-{(burst * 8 + member) % 120}"
        at = START + 180 * MINUTE + burst * 20_000 + member * 300
        add("comment", at, "globex-ad", "globex", account, text=template + ("!" * (member % 3)),
            sentiment=-0.9, user={"created_at": iso(START - 2 * 86_400_000)})

for _, event in sorted(events, key=lambda item: (item[0], item[1]["event_id"])):
    print(json.dumps(event, ensure_ascii=False, separators=(",", ":")))
