#!/usr/bin/env python3
"""Validate the CrowdPulse sentiment dev sets and print counts.

Usage: python3 tools/sentiment/dev/validate.py   (exit status 1 on any error)
"""
import collections, json, os, re, sys, unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
LANGS = "en es pt fr de id vi lv zh-Hans zh-Hant ja ko".split()
LABELS = ("negative", "neutral", "positive")
EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF]")
errors = []

def err(msg):
    errors.append(msg)

def load(name, required):
    path = os.path.join(HERE, name)
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                err(f"{name}:{n}: blank line"); continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                err(f"{name}:{n}: invalid JSON: {e}"); continue
            if not isinstance(d, dict):
                err(f"{name}:{n}: not an object"); continue
            for k in required:
                if not isinstance(d.get(k), str) or not d[k].strip():
                    err(f"{name}:{n}: missing/empty field {k!r}")
            t = d.get("text", "")
            if isinstance(t, str) and (t != t.strip() or "\n" in t):
                err(f"{name}:{n}: text has surrounding whitespace or newline")
            if isinstance(t, str) and unicodedata.normalize("NFC", t) != t:
                err(f"{name}:{n}: text is not NFC")
            if "label" in required and d.get("label") not in LABELS:
                err(f"{name}:{n}: bad label {d.get('label')!r}")
            if "lang" in d and d["lang"] not in LANGS:
                err(f"{name}:{n}: bad lang {d['lang']!r}")
            rows.append(d)
    return rows

all_ids = collections.Counter()
print(f"{'file':<16}{'n':>5}{'neg':>6}{'neu':>6}{'pos':>6}{'emoji%':>8}{'minlen':>8}{'maxlen':>8}")
def report(name, rows):
    c = collections.Counter(r.get("label") for r in rows)
    lens = [len(r.get("text", "")) for r in rows]
    emo = sum(1 for r in rows if EMOJI.search(r.get("text", ""))) / max(len(rows), 1) * 100
    print(f"{name:<16}{len(rows):>5}{c['negative']:>6}{c['neutral']:>6}{c['positive']:>6}{emo:>7.0f}%{min(lens):>8}{max(lens):>8}")
    return c

total = collections.Counter()
for lang in LANGS:
    name = f"{lang}.jsonl"
    rows = load(name, ("id", "text", "label", "source"))
    for i, r in enumerate(rows, 1):
        all_ids[r.get("id")] += 1
        if r.get("id") != f"{lang}-dev-{i:03d}":
            err(f"{name}: row {i} has id {r.get('id')!r}")
    if len({r.get('text') for r in rows}) != len(rows):
        err(f"{name}: duplicate texts")
    c = report(name, rows)
    if len(rows) != 150 or any(c[l] != 50 for l in LABELS):
        err(f"{name}: expected 150 rows, 50 per label, got {dict(c)}")
    total.update(c)

rows = load("mixed.jsonl", ("id", "text", "label", "source", "lang"))
for r in rows:
    all_ids[r.get("id")] += 1
c = report("mixed.jsonl", rows)
if len(rows) != 120 or any(c[l] != 40 for l in LABELS):
    err(f"mixed.jsonl: expected 120 rows, 40 per label, got {dict(c)}")
print("  mixed by lang:", dict(sorted(collections.Counter(r.get("lang") for r in rows).items())))
total.update(c)

rows = load("langid.jsonl", ("id", "text", "lang"))
for r in rows:
    all_ids[r.get("id")] += 1
per = collections.Counter(r.get("lang") for r in rows)
print(f"{'langid.jsonl':<16}{len(rows):>5}  per language: " + " ".join(f"{k}={per[k]}" for k in LANGS))
for lang in LANGS:
    if per[lang] != 20:
        err(f"langid.jsonl: {lang} has {per[lang]} items, expected 20")
    items = [r for r in rows if r.get("lang") == lang]
    short = [r for r in items if int(r["id"].rsplit("-", 1)[1]) <= 10]
    for r in short:
        words = [w for w in r["text"].split() if any(ch.isalnum() for ch in w)]
        if lang not in ("zh-Hans", "zh-Hant", "ja") and len(words) > 4:
            err(f"langid.jsonl: short item {r['id']} has more than 4 words")

dups = [k for k, v in all_ids.items() if v > 1]
if dups:
    err(f"duplicate ids: {dups[:10]}")
print(f"sentiment items total: {sum(total.values())}  ({dict(total)})")
if errors:
    print(f"\n{len(errors)} ERROR(S):")
    for e in errors:
        print("  " + e)
    sys.exit(1)
print("OK: all files valid, ids unique, labels balanced")
