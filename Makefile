# Thin wrapper over CMake. The two commands of the README:
#   make run   - install missing packages, build, create the demo tenant, start the daemon
#   make test  - install missing packages, build, run the whole suite (ctest)
BUILD ?= build
TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)

.PHONY: all deps build run test bench fuzz asan clean format

all: build

deps:
	@scripts/install-deps

$(BUILD)/Makefile:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(TYPE)

build: $(BUILD)/Makefile
	cmake --build $(BUILD) -j$(JOBS)

run: deps build
	mkdir -p var
	./$(BUILD)/callwright --config etc/callwright.lua --set demo=true

test: deps build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 600

bench: deps build
	bench/run

# Every libFuzzer target for FUZZ_SECONDS each (clang build in $(BUILD)/fuzz; the corpus stays
# there). The suite runs the same driver for a few seconds a target.
FUZZ_SECONDS ?= 300
fuzz: deps
	CW_BUILD_DIR=$(abspath $(BUILD)) CW_SOURCE_DIR=$(CURDIR) CW_FUZZ_SECONDS=$(FUZZ_SECONDS) \
		CW_FUZZ_JOBS=$(JOBS) python3 tests/fuzz/test_parsers.py

asan:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCW_SANITIZE=ON
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ctest --output-on-failure -j$(JOBS) --timeout 900

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) build-asan
