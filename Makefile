# Pretext — the two commands a newcomer needs:
#   make demo   runs the main job
#   make test   runs every test
# Both install the Debian packages Pretext needs when they are missing (as root, or
# through sudo), then build in release mode: the engine is numeric code and is always
# compiled optimized, tests included.

SWIFT ?= swift
APT_PACKAGES := libopenblas-dev libpng-dev zlib1g-dev
PRETEXT := .build/release/pretext

.PHONY: all deps build test demo bench lint format clean

all: build

# Installs missing apt packages; `apt-get update` runs once, only if something is missing.
deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@command -v $(SWIFT) >/dev/null || { echo "Swift 6 is needed (https://swift.org/install)"; exit 1; }

build: deps
	$(SWIFT) build -c release

test: deps
	$(SWIFT) build -c release --build-tests
	$(SWIFT) test -c release --skip-build --disable-swift-testing

demo: build
	$(PRETEXT) doctor
	@echo
	$(PRETEXT) doctor --training-check

bench: build
	$(PRETEXT) bench ops

lint:
	$(SWIFT) format lint --recursive Sources Tests

format:
	$(SWIFT) format --in-place --recursive Sources Tests

clean:
	rm -rf .build
