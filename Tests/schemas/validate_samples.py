#!/usr/bin/env python3
"""Checks every schema in schemas/ against its golden samples (run by `make test`).

For each schemas/samples/<name>/manifest.json: the schema must be a valid JSON Schema 2020-12, samples
marked valid must validate, samples marked invalid must not (with date-time formats checked). The Swift
suite checks the same samples against the decoder. Prints 'N passed, M failed'.
"""
import json
import pathlib
import sys

from jsonschema import Draft202012Validator, FormatChecker

root = pathlib.Path(__file__).resolve().parents[2] / "schemas"
passed = failed = 0
for manifest_path in sorted(root.glob("samples/*/manifest.json")):
    manifest = json.loads(manifest_path.read_text())
    schema_path = (manifest_path.parent / manifest["schema"]).resolve()
    schema = json.loads(schema_path.read_text())
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    for sample in manifest["samples"]:
        instance = json.loads((manifest_path.parent / sample["file"]).read_text())
        errors = list(validator.iter_errors(instance))
        ok = (not errors) if sample["valid"] else bool(errors)
        label = f"{manifest_path.parent.name}/{sample['file']}"
        if ok:
            passed += 1
            print(f"ok   {label}")
        else:
            failed += 1
            detail = errors[0].message if errors else "validated but should not"
            print(f"FAIL {label}: {detail}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
