# Pretext — the two commands a newcomer needs:
#   make demo   runs the main job
#   make test   runs every test
# Both install the Debian packages Pretext needs when they are missing (as root, or
# through sudo), then build in release mode: the engine is numeric code and is always
# compiled optimized, tests included.

SWIFT ?= swift
APT_PACKAGES := libopenblas-dev libpng-dev libjpeg62-turbo-dev zlib1g-dev libopenmpi-dev openmpi-bin
DEMO_PACKAGES := dataset-fashion-mnist
PRETEXT := .build/release/pretext

.PHONY: all deps apt build test demo report-check bench lint format clean

all: build

# Installs missing apt packages; `apt-get update` runs once, only if something is missing.
deps:
	@$(MAKE) --no-print-directory apt PACKAGES="$(APT_PACKAGES)"
	@command -v $(SWIFT) >/dev/null || { echo "Swift 6 is needed (https://swift.org/install)"; exit 1; }

apt:
	@missing=""; \
	for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build -c release

# The tests read the real Fashion-MNIST headers too, so they install it as the demo does.
test: deps
	@$(MAKE) --no-print-directory apt PACKAGES="$(DEMO_PACKAGES)"
	$(SWIFT) build -c release --build-tests
	$(SWIFT) test -c release --skip-build --disable-swift-testing

# The main job, short: check the machine, import Fashion-MNIST, then compare the three
# pretext tasks at fixed step counts (most of the time to SimCLR) with a linear probe and
# kNN on 100 labels per class. Prints the table; the report is runs/demo/report.html.
# Running it again reuses the finished runs.
demo: build
	@$(MAKE) --no-print-directory apt PACKAGES="$(DEMO_PACKAGES)"
	$(PRETEXT) doctor --training-check
	$(PRETEXT) data import fashion-mnist --out data/fashion-mnist
	$(PRETEXT) compare experiments/compare-demo.yaml

# Renders the demo's report in headless Chromium (installed when missing) and checks it.
report-check:
	benchmarks/check_report.sh runs/demo/report.html

bench: build
	$(PRETEXT) bench ops

lint:
	$(SWIFT) format lint --recursive Sources Tests

format:
	$(SWIFT) format --in-place --recursive Sources Tests

clean:
	rm -rf .build
