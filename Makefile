# Pretext — the two commands a newcomer needs:
#   make demo   runs the main job
#   make test   runs every test
# Both install the Debian packages Pretext needs when they are missing (as root, or
# through sudo), then build in release mode: the engine is numeric code and is always
# compiled optimized, tests included.

SWIFT ?= swift
APT_PACKAGES := libopenblas-dev libpng-dev zlib1g-dev libopenmpi-dev openmpi-bin
DEMO_PACKAGES := dataset-fashion-mnist
PRETEXT := .build/release/pretext

.PHONY: all deps apt build test demo bench lint format clean

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

test: deps
	$(SWIFT) build -c release --build-tests
	$(SWIFT) test -c release --skip-build --disable-swift-testing

# The main job, short: check the machine, import Fashion-MNIST, pretrain a ViT with MAE
# for a few minutes, then probe it with 100 labels per class beside its baselines.
demo: build
	@$(MAKE) --no-print-directory apt PACKAGES="$(DEMO_PACKAGES)"
	$(PRETEXT) doctor --training-check
	$(PRETEXT) data import fashion-mnist --out data/fashion-mnist
	$(PRETEXT) pretrain experiments/mae.yaml --set name=demo-mae --set train.steps=300 \
	  --set train.batch_size=128 --set train.base_lr=1e-3 --set train.log_every=25 --set train.artifacts_every=100 \
	  $$(ls runs/demo-mae/checkpoint-*.safetensors >/dev/null 2>&1 && echo --resume)
	$(PRETEXT) probe --weights runs/demo-mae/backbone.safetensors --train data/fashion-mnist/train \
	  --test data/fashion-mnist/test --labels-per-class 100
	@echo
	@echo "Run folder: runs/demo-mae (metrics.jsonl, backbone.safetensors, reconstruction-*.png, probe.json)"

bench: build
	$(PRETEXT) bench ops

lint:
	$(SWIFT) format lint --recursive Sources Tests

format:
	$(SWIFT) format --in-place --recursive Sources Tests

clean:
	rm -rf .build
