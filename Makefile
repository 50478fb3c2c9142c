# PointLedger: `make run`, `make test`, `make bench`, `make asan`, `make fuzz`, `make tsan`.
# On Debian 12 as root, missing packages are installed first (`make deps`).

SHELL := /bin/bash

# Everything the build and the tests need (Debian 12 package names).
PKGS := build-essential cmake ninja-build pkg-config \
	liblmdb-dev lmdb-utils libflatbuffers-dev flatbuffers-compiler \
	libabsl-dev libssl-dev libboost-dev libbenchmark-dev \
	libgtest-dev libgmock-dev nlohmann-json3-dev libcli11-dev libtomlplusplus-dev \
	libjemalloc-dev zlib1g-dev
# Only for the fuzz targets (clang + libFuzzer): `make fuzz-deps`.
FUZZ_PKGS := clang libclang-rt-14-dev

BUILD_DIR := build
ASAN_DIR := build-asan
FUZZ_DIR := build-fuzz
TSAN_DIR := build-tsan
JOBS := $(shell nproc)
# BM_LedgerFill (10M transactions) is skipped unless asked for: BENCH_ARGS=...
BENCH_ARGS ?= --benchmark_filter=-BM_LedgerFill

CMAKE_FLAGS := -G Ninja -DCMAKE_BUILD_TYPE=Release -DPL_WERROR=ON -DPL_UNITY_TESTS=ON
# No -Werror here: GCC's warnings change under -fsanitize (false positives);
# the Release build enforces them.
# -O1 -g1: line numbers in reports, and a build that fits CI's time budget.
# Unity builds (several sources compiled as one) take a third off the
# sanitizer builds' compile time, most of CI's run; the Release build
# unifies only the test suites (PL_UNITY_TESTS), so each library and
# program file is still compiled alone and must include what it uses.
ASAN_CMAKE_FLAGS := -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPL_SANITIZE=ON \
	-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_UNITY_BUILD=ON
# What the suites run: every test binary and the two programs they start
# (not pointledger-bench, which no test runs).
ASAN_TARGETS := pointledgerd pointledger pl_ledger_tests pl_net_tests pl_tools_tests \
	pl_sim_tests pl_crash_tests
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	PL_SIM_SCALE=small
# libFuzzer targets (tests/fuzz/*_fuzz.cc), run concurrently for FUZZ_SECONDS each.
FUZZ_SECONDS ?= 60
# Where `make run` serves (make run LISTEN=127.0.0.1:7601 when 7600 is taken).
LISTEN ?= 127.0.0.1:7600
FUZZ_TARGETS := frame post_line config csv wal state
FUZZ_CMAKE_FLAGS := -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPL_FUZZ=ON \
	-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1"
# ThreadSanitizer: only the server and committer tests (tests/net, which run
# pointledgerd). Every process writes its reports to $(TSAN_DIR)/tsan-logs:
# a report from the server child process fails the run too.
TSAN_CMAKE_FLAGS := -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPL_TSAN=ON \
	-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_UNITY_BUILD=ON
TSAN_ENV := TSAN_OPTIONS="log_path=$(CURDIR)/$(TSAN_DIR)/tsan-logs/report second_deadlock_stack=1"

.PHONY: all deps fuzz-deps configure build programs test asan fuzz tsan bench run clean

all: build

# Installs the packages in $(1) that dpkg does not report as installed.
define install_missing
	@missing=(); \
	for p in $(1); do \
	  if [[ "$$(dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null)" != "install ok installed" ]]; then \
	    missing+=("$$p"); \
	  fi; \
	done; \
	if (( $${#missing[@]} == 0 )); then exit 0; fi; \
	if (( EUID != 0 )); then \
	  echo "Missing Debian packages: $${missing[*]}" >&2; \
	  echo "Install them as root with:" >&2; \
	  echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $${missing[*]}" >&2; \
	  exit 1; \
	fi; \
	echo "Installing: $${missing[*]}"; \
	apt-get update && \
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$${missing[@]}"
endef

deps:
	$(call install_missing,$(PKGS))

fuzz-deps:
	$(call install_missing,$(FUZZ_PKGS))

configure: deps
	@if [[ ! -f $(BUILD_DIR)/build.ninja ]]; then \
	  cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS); \
	fi

build: configure
	cmake --build $(BUILD_DIR) -j$(JOBS)

# What `make run` needs, without compiling the test suite (which made a
# newcomer's first start on 2 cores take ~9 minutes).
programs: configure
	cmake --build $(BUILD_DIR) -j$(JOBS) --target pointledgerd pointledger

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j2 --timeout 300

asan: deps
	@if [[ ! -f $(ASAN_DIR)/build.ninja ]]; then \
	  cmake -S . -B $(ASAN_DIR) $(ASAN_CMAKE_FLAGS); \
	fi
	cmake --build $(ASAN_DIR) -j$(JOBS) --target $(ASAN_TARGETS)
	cd $(ASAN_DIR) && $(ASAN_ENV) ctest --output-on-failure -j2 --timeout 300

fuzz: deps fuzz-deps
	@if [[ ! -f $(FUZZ_DIR)/build.ninja ]]; then \
	  CC=clang CXX=clang++ cmake -S . -B $(FUZZ_DIR) $(FUZZ_CMAKE_FLAGS); \
	fi
	cmake --build $(FUZZ_DIR) -j$(JOBS) --target pl_fuzz
	tests/fuzz/run $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

tsan: deps
	@if [[ ! -f $(TSAN_DIR)/build.ninja ]]; then \
	  cmake -S . -B $(TSAN_DIR) $(TSAN_CMAKE_FLAGS); \
	fi
	cmake --build $(TSAN_DIR) -j$(JOBS) --target pl_net_tests
	@rm -rf $(TSAN_DIR)/tsan-logs && mkdir -p $(TSAN_DIR)/tsan-logs
	@rc=0; cd $(TSAN_DIR) && $(TSAN_ENV) ctest -L '^net$$' --output-on-failure -j2 --timeout 300 || rc=$$?; \
	cd $(CURDIR); if compgen -G "$(TSAN_DIR)/tsan-logs/report*" > /dev/null; then \
	  cat $(TSAN_DIR)/tsan-logs/report*; echo "ThreadSanitizer: reports above"; rc=1; \
	fi; exit $$rc

bench: build
	$(BUILD_DIR)/bin/pointledger-bench --benchmark_counters_tabular=true $(BENCH_ARGS)

run: programs
	@if [[ -x $(BUILD_DIR)/bin/pointledgerd ]]; then \
	  mkdir -p var && exec $(BUILD_DIR)/bin/pointledgerd --data ./var --listen $(LISTEN); \
	elif [[ -x $(BUILD_DIR)/bin/pointledger-demo ]]; then \
	  exec $(BUILD_DIR)/bin/pointledger-demo; \
	else \
	  echo "Nothing to run yet: the server (pointledgerd) is not built in this version."; \
	  echo "Try 'make test' or 'make bench'."; \
	fi

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(FUZZ_DIR) $(TSAN_DIR)
