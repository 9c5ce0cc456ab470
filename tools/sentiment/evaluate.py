#!/usr/bin/env python3
"""Scores the dev sets with `crowdpulse sentiment` and reports accuracy and macro-F1 per language.

The `lang` field is withheld, so identification is part of what is measured (the issue's accuracy
targets apply with `lang` absent). Two columns: the full scorer and `--lexicon-only` (the same
lexicons without the rule layer), so the gain of the rules is visible.

Usage: tools/sentiment/evaluate.py [--binary .build/release/crowdpulse] [--markdown] [--min-macro-f1 X]
"""
import argparse
import json
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
LABELS = ["negative", "neutral", "positive"]
ORDER = ["en", "es", "pt", "fr", "de", "id", "vi", "lv", "zh-Hans", "zh-Hant", "ja", "ko", "mixed"]


def run(binary, items, extra):
    lines = "".join(json.dumps({"id": item["id"], "text": item["text"]}, ensure_ascii=False) + "\n" for item in items)
    out = subprocess.run([binary, "sentiment", *extra], input=lines.encode(), capture_output=True, check=True)
    results = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert len(results) == len(items), "one output line per input line"
    for item, result in zip(items, results):
        assert result.get("id") == item["id"], (item, result)
    return results


def metrics(gold, predicted):
    accuracy = sum(g == p for g, p in zip(gold, predicted)) / len(gold)
    f1s = []
    for label in LABELS:
        tp = sum(g == label and p == label for g, p in zip(gold, predicted))
        fp = sum(g != label and p == label for g, p in zip(gold, predicted))
        fn = sum(g == label and p != label for g, p in zip(gold, predicted))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return accuracy, sum(f1s) / len(f1s)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=".build/release/crowdpulse")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--min-macro-f1", type=float, default=None,
                        help="fail if any language's macro-F1 (full scorer) is below this")
    parser.add_argument("--min-langid", type=float, default=None,
                        help="fail if language identification on dev/langid.jsonl is below this")
    parser.add_argument("--show-errors", default=None, help="print misclassified items of this language")
    args = parser.parse_args()

    rows = []
    failures = []
    for code in ORDER:
        path = HERE / "dev" / f"{code}.jsonl"
        if not path.exists():
            continue
        items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        gold = [item["label"] for item in items]
        full = run(args.binary, items, [])
        plain = run(args.binary, items, ["--lexicon-only"])
        acc, f1 = metrics(gold, [r["label"] for r in full])
        acc0, f10 = metrics(gold, [r["label"] for r in plain])
        expected_lang = [item.get("lang", code) for item in items]
        lid = sum(r["lang"] == l for r, l in zip(full, expected_lang)) / len(items)
        rows.append((code, len(items), acc, f1, acc0, f10, lid))
        if args.min_macro_f1 is not None and f1 < args.min_macro_f1:
            failures.append(f"{code}: macro-F1 {f1:.3f} < {args.min_macro_f1}")
        if args.show_errors == code:
            for item, r in zip(items, full):
                if r["label"] != item["label"]:
                    print(f"  gold={item['label']:8} got={r['label']:8} {r['score']:+.3f} [{r['lang']}] {item['text']}")

    langid_path = HERE / "dev" / "langid.jsonl"
    langid = None
    if langid_path.exists():
        items = [json.loads(line) for line in langid_path.read_text(encoding="utf-8").splitlines() if line.strip()]
        results = run(args.binary, items, [])
        langid = (sum(r["lang"] == i["lang"] for r, i in zip(results, items)), len(items))
        if args.show_errors == "langid":
            for item, r in zip(items, results):
                if r["lang"] != item["lang"]:
                    print(f"  want={item['lang']:7} got={r['lang']:7} {item['text']}")

    if args.markdown:
        print("| dev set | items | accuracy | macro-F1 | lexicon-only accuracy | lexicon-only macro-F1 | language identified |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for code, n, acc, f1, acc0, f10, lid in rows:
            print(f"| {code} | {n} | {acc:.3f} | {f1:.3f} | {acc0:.3f} | {f10:.3f} | {lid:.3f} |")
    else:
        print(f"{'set':8} {'n':>4} {'acc':>6} {'F1':>6} | {'lex acc':>7} {'lex F1':>6} | {'lang':>5}")
        for code, n, acc, f1, acc0, f10, lid in rows:
            print(f"{code:8} {n:4d} {acc:6.3f} {f1:6.3f} | {acc0:7.3f} {f10:6.3f} | {lid:5.3f}")
    if rows:
        mean_f1 = sum(r[3] for r in rows) / len(rows)
        mean_f10 = sum(r[5] for r in rows) / len(rows)
        print(f"mean macro-F1: {mean_f1:.3f} (lexicon only {mean_f10:.3f})")
    if langid:
        print(f"language identification (dev/langid.jsonl): {langid[0]}/{langid[1]} = {langid[0] / langid[1]:.3f}")
    if langid and args.min_langid is not None and langid[0] / langid[1] < args.min_langid:
        failures.append(f"language identification {langid[0] / langid[1]:.3f} < {args.min_langid}")
    if failures:
        sys.exit("\n".join(failures))


if __name__ == "__main__":
    main()
