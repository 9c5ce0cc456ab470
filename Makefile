# CrowdPulse — the two commands: `make demo` and `make test`.
# Both install what is missing first (as root; otherwise they print the exact command and stop).

SHELL      := /bin/bash
.SHELLFLAGS := -o pipefail -c
SWIFT      ?= swift
PYTHON     ?= python3
VENV       := .venv-test
APT_PKGS   := librdkafka-dev kcat pkg-config
DEMO_ARGS  ?=
BENCH_MESSAGES   ?= 2000000
BENCH_PARTITIONS ?= 64
FUZZ_SECONDS     ?= 60
FUZZ_BIN         := .build-fuzz/event-decoder-fuzzer
## Floors for the sentiment dev sets (tools/sentiment/evaluate.py): a regression guard, not a target.
SENTIMENT_MIN_F1     ?= 0.60
SENTIMENT_MIN_LANGID ?= 0.95

.PHONY: all deps test-deps deploy-lint build test lint demo bench bench-peers bench-live crash-test fuzz fuzz-build clean

all: build

## deps: the system packages the build and the tests need (Debian).
deps:
	@missing=""; \
	pkg-config --exists rdkafka 2>/dev/null || missing="$$missing librdkafka-dev pkg-config"; \
	command -v kcat >/dev/null 2>&1 || missing="$$missing kcat"; \
	command -v cc >/dev/null 2>&1 || missing="$$missing gcc"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "Installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "Missing system packages. Run:"; \
	    echo "  sudo apt-get update && sudo apt-get install -y$$missing"; \
	    exit 1; \
	  fi; \
	fi

## test-deps: what only the tests need: headless Chromium (the dashboard test), promtool and amtool
## (the deploy/ lint).
test-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v amtool >/dev/null 2>&1 || missing="$$missing prometheus-alertmanager"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "Installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "Missing system packages for the tests. Run:"; \
	    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends$$missing"; \
	    exit 1; \
	  fi; \
	fi

## deploy-lint: the Prometheus rules (with their unit tests), the Prometheus and Alertmanager
## configurations, and every YAML/JSON file under deploy/.
deploy-lint: test-deps $(VENV)/.ready
	promtool check config deploy/prometheus/prometheus.yml
	promtool test rules deploy/prometheus/crowdpulse-rules.test.yml
	amtool check-config deploy/alertmanager/alertmanager.yml
	$(VENV)/bin/python -c 'import glob, json, sys, yaml; \
	  files = sorted(glob.glob("deploy/**/*.y*ml", recursive=True)); \
	  [list(yaml.safe_load_all(open(f))) for f in files]; \
	  [json.load(open(f)) for f in glob.glob("deploy/**/*.json", recursive=True)]; \
	  print(len(files), "YAML files parse")'

## A Python virtualenv with confluent-kafka, an independent client for the interop test.
$(VENV)/.ready: Makefile
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  if [ "$$(id -u)" = "0" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip >/dev/null && \
	    $(PYTHON) -m venv $(VENV); \
	  else \
	    echo "Python venv support is missing. Run: sudo apt-get install -y python3-venv python3-pip"; exit 1; \
	  fi; }
	$(VENV)/bin/pip install -q --disable-pip-version-check confluent-kafka jsonschema rfc3339-validator pyyaml
	@touch $@

build: deps
	$(SWIFT) build

## test: every test — Swift Testing suites against the embedded broker, then the Python interop check.
test: deps test-deps $(VENV)/.ready lint deploy-lint
	python3 tools/sentiment/build.py --check
	$(SWIFT) build --build-tests 2>&1 | tee .build-test.log
	@if grep -E "^/.*/(Sources|Tests)/.*warning:" .build-test.log; then \
	  echo "Compiler warnings in our code (see above): fix them."; exit 1; fi
	$(SWIFT) test
	$(VENV)/bin/python Tests/schemas/validate_samples.py
	$(PYTHON) schemas/samples/alert.v1/make_fixture.py | cmp - schemas/samples/alert.v1/fixture.ndjson
	$(VENV)/bin/python Tests/interop/confluent_kafka_interop.py "$$($(SWIFT) build --show-bin-path)/crowdpulse"
	$(VENV)/bin/python Tests/interop/metrics_end_to_end.py "$$($(SWIFT) build --show-bin-path)/crowdpulse"
	$(VENV)/bin/python Tests/interop/crash_recovery.py "$$($(SWIFT) build --show-bin-path)/crowdpulse" --cycles 3
	$(VENV)/bin/python Tests/interop/crash_recovery.py "$$($(SWIFT) build --show-bin-path)/crowdpulse" --cycles 2 \
	  --guarantee exactly_once
	$(VENV)/bin/python Tests/interop/crash_recovery.py "$$($(SWIFT) build --show-bin-path)/crowdpulse" --scenario scale
	python3 tools/sentiment/dev/validate.py
	python3 tools/sentiment/evaluate.py --binary "$$($(SWIFT) build --show-bin-path)/crowdpulse" \
	  --min-macro-f1 $(SENTIMENT_MIN_F1) --min-langid $(SENTIMENT_MIN_LANGID)
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=20

## fuzz: libFuzzer + AddressSanitizer on the event decoder (Fuzz/), seeded with the schema samples.
fuzz-build:
	@mkdir -p .build-fuzz && rm -f $(FUZZ_BIN)
	swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name CrowdPulseFuzz \
	  $$(find Sources/PulseCore -name "*.swift" | sort) Fuzz/EventDecoderFuzzer.swift -o $(FUZZ_BIN) 2>&1 | grep -v "Cannot export local symbol" || true
	@test -x $(FUZZ_BIN)

fuzz: fuzz-build
	@rm -rf .build-fuzz/corpus && mkdir -p .build-fuzz/corpus
	@cp schemas/samples/event.v1/*.json .build-fuzz/corpus/ && rm -f .build-fuzz/corpus/manifest.json
	$(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1 .build-fuzz/corpus 2>&1 | tail -n 12

## lint: formatting, as CI style checks it.
lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift Fuzz

## demo: the daemon on its embedded broker with live synthetic traffic (Ctrl-C to stop).
demo: deps
	$(SWIFT) build --product crowdpulse
	"$$($(SWIFT) build --show-bin-path)/crowdpulse" demo $(DEMO_ARGS)

## bench: micro-benchmarks (decode, window update, sentiment, replay; package-benchmark in Benchmarks/),
## then the raw librdkafka C consumer (the limit), our consumer and the full pipeline on one pre-filled
## topic; the last line is the ratio pipeline ÷ limit.
bench: deps
	$(SWIFT) build -c release --product crowdpulse
	"$$($(SWIFT) build -c release --show-bin-path)/crowdpulse" bench-decode
	"$$($(SWIFT) build -c release --show-bin-path)/crowdpulse" bench-replay
	"$$($(SWIFT) build -c release --show-bin-path)/crowdpulse" bench-sentiment --corpus tools/sentiment/dev
	cd Benchmarks && $(SWIFT) package --disable-sandbox benchmark --no-progress --format text
	BENCH_MESSAGES=$(BENCH_MESSAGES) BENCH_PARTITIONS=$(BENCH_PARTITIONS) \
	  Benchmarks/run-pipeline-bench.sh "$$($(SWIFT) build -c release --show-bin-path)/crowdpulse"

## bench-live: a live stream at LIVE_RATE events/s for LIVE_SECONDS through `crowdpulse run` (broker,
## generator and daemon as three processes): resident memory and lag every 30 s, event→alert latency.
LIVE_RATE    ?= 50000
LIVE_SECONDS ?= 600
bench-live: deps
	$(SWIFT) build -c release --product crowdpulse
	LIVE_RATE=$(LIVE_RATE) LIVE_SECONDS=$(LIVE_SECONDS) \
	  Benchmarks/run-live-bench.sh "$$($(SWIFT) build -c release --show-bin-path)/crowdpulse"

## bench-peers: Quix Streams (tumbling 60 s count per key) vs CrowdPulse's full pipeline on one topic,
##   both timed from the first record processed to the last (and CrowdPulse to all offsets committed).
PEER_VENV := .venv-peers
$(PEER_VENV)/.ready:
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/pip install -q --disable-pip-version-check quixstreams confluent-kafka
	@touch $@

## crash-test: 20 kill -9 cycles of `crowdpulse run` (and the exactly_once variant), outputs against replay.
CRASH_CYCLES ?= 20
crash-test: deps $(VENV)/.ready
	$(SWIFT) build --product crowdpulse
	$(VENV)/bin/python Tests/interop/crash_recovery.py "$$($(SWIFT) build --show-bin-path)/crowdpulse" \
	  --cycles $(CRASH_CYCLES)
	$(VENV)/bin/python Tests/interop/crash_recovery.py "$$($(SWIFT) build --show-bin-path)/crowdpulse" \
	  --cycles $(CRASH_CYCLES) --guarantee exactly_once

bench-peers: deps $(PEER_VENV)/.ready
	$(SWIFT) build -c release --product crowdpulse
	PEER_MESSAGES=$${PEER_MESSAGES:-500000} Benchmarks/run-peers-bench.sh \
	  "$$($(SWIFT) build -c release --show-bin-path)/crowdpulse" $(PEER_VENV)/bin/python

clean:
	rm -rf .build $(VENV) .build-test.log Benchmarks/c/rawconsume
